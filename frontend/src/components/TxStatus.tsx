import type { TxState } from '../state';

/** The live region that says where a transaction is: pending, confirmed, or why it was refused. */
export function TxStatus({ state, testId }: { state: TxState; testId?: string }) {
  return (
    <p role="status" aria-live="polite" className={`status ${state.kind}`} data-testid={testId}>
      {state.kind === 'pending' && <span className="spinner" aria-hidden="true" />}
      {state.text}
    </p>
  );
}
