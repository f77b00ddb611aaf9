// An order's sealed job and result (docs/content.md, "Privacy"). The buyer fetches them with signed requests
// and opens them here with its result key: the command it sealed, what the job was given (the scheduler's
// allocation) and used (its accounting), and its output as a download. Anyone else is told they are sealed.
import { useState } from 'react';
import type { OrderOut } from '../api/client';
import { describeError } from '../chain';
import { formatBytes, formatSeconds } from '../format';
import { openOrder, openOutput, type OpenedOrder, type ResultDocument } from '../sealed';
import { useShared } from '../state';

export function SealedJob({ order: o }: { order: OrderOut }) {
  const { wallet, deployment } = useShared();
  const [opened, setOpened] = useState<{ resultCid: string | null; value: OpenedOrder } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const resultCid = o.deal?.result_cid ?? o.job?.result_cid ?? null;

  if (!wallet || wallet.address.toLowerCase() !== o.buyer.toLowerCase()) {
    return (
      <p className="hint sealed" data-testid="sealed-job">
        Job specification and result: sealed to the buyer{o.node_id != null ? ` (and the node that runs it)` : ''}.
      </p>
    );
  }

  async function open() {
    if (!wallet) return;
    setError(null);
    setBusy('Sign to fetch and open the sealed job' + (resultCid ? ' and its result…' : '…'));
    try {
      setOpened({ resultCid, value: await openOrder(wallet, deployment.chain_id, o.spec_cid, resultCid) });
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  }

  async function download(result: ResultDocument) {
    if (!wallet || !result.output) return;
    setError(null);
    setBusy('Sign to fetch the output; it is opened here…');
    try {
      const data = await openOutput(wallet, deployment.chain_id, result.output);
      const url = URL.createObjectURL(new Blob([data.slice().buffer as ArrayBuffer], { type: 'application/octet-stream' }));
      const link = document.createElement('a');
      link.href = url;
      link.download = `output-${o.id.slice(2, 12)}.bin`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  }

  const fresh = opened && opened.resultCid === resultCid ? opened.value : null;
  const shown = fresh ?? opened?.value ?? null;
  return (
    <div className="sealed" data-testid="sealed-job">
      {shown?.command && (
        <p>
          <strong>Job</strong> <code data-testid="sealed-command">{commandLine(shown.command)}</code>{' '}
          <span className="hint">sealed to the quoted nodes and to you</span>
        </p>
      )}
      {shown?.result && <ResultView result={shown.result} onDownload={() => void download(shown.result as ResultDocument)} busy={busy !== null} />}
      {!fresh && (
        <div className="actions">
          <button type="button" className="secondary" disabled={busy !== null} onClick={() => void open()}>
            {resultCid ? 'Open the sealed result' : 'Show the sealed job'}
          </button>
          <span className="hint">{resultCid ? 'fetched with your signature, opened in this browser with your result key' : 'only you and the quoted nodes can read it'}</span>
        </div>
      )}
      {busy && <p className="hint" role="status">{busy}</p>}
      {error && <p className="error" role="alert" data-testid="sealed-error">{error}</p>}
    </div>
  );
}

/** argv as the command line it came from: parts with spaces or quotes in double quotes. */
function commandLine(argv: string[]): string {
  return argv.map((part) => (part === '' || /[\s"']/.test(part) ? `"${part.replace(/(["\\])/g, '\\$1')}"` : part)).join(' ');
}

/** The result document, whatever of it is present. */
function ResultView({ result: r, onDownload, busy }: { result: ResultDocument; onDownload: () => void; busy: boolean }) {
  const given = r.given ?? null;
  const used = r.accounting ?? null;
  const exitCode = r.exit_code ?? used?.exit_code;
  const fact = (label: string, value: string | null | undefined, testId: string) =>
    value == null ? null : (
      <>
        <dt>{label}</dt>
        <dd data-testid={testId}>{value}</dd>
      </>
    );
  const num = (v: number | null | undefined, show: (x: number) => string) => (typeof v === 'number' ? show(v) : null);
  const gpus = given && (given.gpus || given.shards)
    ? [given.gpus ? `${given.gpus}${given.gpu_type ? ` × ${given.gpu_type}` : ''}` : '', given.shards ? `${given.shards} shard(s)` : ''].filter(Boolean).join(' + ')
    : given ? 'none' : null;
  return (
    <div className="result" data-testid="result-document">
      <div className="grid2">
        <div>
          <h3 className="facts-title">Given</h3>
          <dl className="facts" aria-label="what the job was given">
            {given ? (
              <>
                {fact('CPUs', num(given.cpus, String), 'given-cpus')}
                {fact('Memory', num(given.memory_mib, (m) => formatBytes(m * 1024 * 1024)), 'given-memory')}
                {fact('GPUs', gpus, 'given-gpus')}
              </>
            ) : (
              <><dt>—</dt><dd className="muted">the executor kept no record</dd></>
            )}
          </dl>
        </div>
        <div>
          <h3 className="facts-title">Used</h3>
          <dl className="facts" aria-label="what the job used">
            {fact('Exit code', exitCode == null ? null : String(exitCode), 'used-exit-code')}
            {fact('Elapsed', num(used?.elapsed_s, formatSeconds), 'used-elapsed')}
            {fact('CPU time', num(used?.cpu_time_s, formatSeconds), 'used-cpu-time')}
            {fact('Max memory', num(used?.max_rss_bytes, formatBytes), 'used-max-memory')}
            {fact('State', used?.state, 'used-state')}
            {fact('Ran on', used?.node, 'used-node')}
            {fact('Reason', r.reason, 'used-reason')}
          </dl>
        </div>
      </div>
      {r.stdout_tail ? <><p className="hint">Standard output (its end)</p><pre data-testid="stdout-tail">{r.stdout_tail}</pre></> : null}
      {r.stderr_tail ? <><p className="hint">Standard error (its end)</p><pre data-testid="stderr-tail">{r.stderr_tail}</pre></> : null}
      {r.output && (
        <div className="actions">
          <button type="button" onClick={onDownload} disabled={busy}>
            Download the output{typeof r.output_bytes === 'number' ? ` (${formatBytes(r.output_bytes)})` : ''}
          </button>
          {r.output_truncated && <span className="hint">cut at the content store's limit</span>}
        </div>
      )}
    </div>
  );
}
