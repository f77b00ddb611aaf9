import type { ReactNode } from 'react';

/** A labelled input with its hint or its error beside it (aria-invalid, aria-describedby). */
export function Field({
  id,
  label,
  value,
  onChange,
  error,
  hint,
  inputMode = 'decimal',
  children,
}: {
  id: string;
  label: string;
  value?: string;
  onChange?: (value: string) => void;
  error?: string;
  hint?: string;
  inputMode?: 'decimal' | 'numeric' | 'text';
  children?: ReactNode;
}) {
  const described = error ? `${id}-error` : hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children ?? (
        <input
          id={id}
          name={id}
          inputMode={inputMode}
          value={value}
          onChange={(e) => onChange?.(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={described}
        />
      )}
      {error ? (
        <span id={`${id}-error`} className="field-error" role="alert">{error}</span>
      ) : hint ? (
        <span id={`${id}-hint`} className="hint">{hint}</span>
      ) : null}
    </div>
  );
}
