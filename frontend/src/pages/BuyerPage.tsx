import { useState, type FormEvent } from 'react';
import { parseUnits } from 'viem';
import { api, errorMessage, fieldErrors, type OrderOut, type QuoteOut, type QuoteRequest } from '../api/client';
import { describeError, signTypedOrder, typedOrderId } from '../chain';
import { rememberSignedOrder } from '../deals';
import { sealForQuote } from '../sealed';
import { DealActions } from '../components/DealActions';
import { SealedJob } from '../components/SealedJob';
import { Field } from '../components/Field';
import { FundsCard } from '../components/FundsCard';
import { NetworkMap } from '../components/NetworkMap';
import { TxStatus } from '../components/TxStatus';
import { formatTokens, shortAddress, TIERS, TOKEN } from '../format';
import { usePoll, useShared, useTx, type TxState } from '../state';

interface Form {
  logic: string;
  parallel: string;
  neural: string;
  min_tier: string;
  gpu_model: string;
  gpu_count: string;
  memory: string;
  duration: string;
  access_point: string;
  max_latency_ms: string;
  min_bandwidth_mbps: string;
  max_price: string;
  max_total: string;
  max_transit: string;
  min_run: string;
  gpu_milli: string;
  auto_accept: boolean;
  command: string;
}

const INITIAL: Form = {
  logic: '4',
  parallel: '1',
  neural: '0',
  min_tier: '0',
  gpu_model: '0',
  gpu_count: '0',
  memory: '1',
  duration: '10',
  access_point: '',
  max_latency_ms: '50',
  min_bandwidth_mbps: '100',
  max_price: '2',
  max_total: '20',
  max_transit: '1',
  min_run: '0',
  gpu_milli: '0',
  auto_accept: true,
  command: 'sh -c "echo hello from suanwang"',
};

/** Errors keyed by the API's field names, so the server's own messages land beside the same fields. */
type Errors = Partial<Record<keyof QuoteRequest | 'command', string>>;

const MILLI = /^\d+(\.\d{1,3})?$/;
const WHOLE = /^\d+$/;

/** Splits a command line into argv: spaces separate, double or single quotes group. */
export function splitCommand(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** Checks the form before anything is asked or signed; returns the quote request or the errors. */
export function validateOrder(f: Form, buyer: string): { request?: QuoteRequest; command?: string[]; errors: Errors } {
  const errors: Errors = {};
  const milli = (text: string, key: keyof Errors) => {
    if (!MILLI.test(text.trim())) {
      errors[key] = 'a non-negative number, at most 3 decimals';
      return 0;
    }
    return Number(parseUnits(text.trim(), 3));
  };
  const whole = (text: string, key: keyof Errors, what = 'a whole number') => {
    if (!WHOLE.test(text.trim())) {
      errors[key] = what;
      return 0;
    }
    return Number(text.trim());
  };
  const tokens = (text: string, key: keyof Errors) => {
    if (!/^\d+(\.\d{1,18})?$/.test(text.trim())) {
      errors[key] = `a ${TOKEN} amount such as 2.5`;
      return '0';
    }
    const v = parseUnits(text.trim(), 18);
    if (v === 0n) errors[key] = 'more than zero';
    return v.toString();
  };
  const logic_mcu = milli(f.logic, 'logic_mcu');
  const parallel_mcu = milli(f.parallel, 'parallel_mcu');
  const neural_mcu = milli(f.neural, 'neural_mcu');
  if (!errors.logic_mcu && !errors.parallel_mcu && !errors.neural_mcu && logic_mcu + parallel_mcu + neural_mcu === 0) {
    errors.logic_mcu = 'ask for some compute in at least one class';
  }
  const memory_mib = Math.round(milli(f.memory, 'memory_mib') * 1.024);
  const gpu_model = whole(f.gpu_model, 'gpu_model');
  const gpu_count = whole(f.gpu_count, 'gpu_count');
  const gpu_milli = whole(f.gpu_milli, 'gpu_milli', 'whole milli-GPU, 0 to 1000');
  if (!errors.gpu_milli && gpu_milli > 1000) errors.gpu_milli = 'whole milli-GPU, 0 to 1000';
  if (!errors.gpu_count && gpu_model !== 0 && gpu_count === 0 && gpu_milli === 0) errors.gpu_count = 'how many of that GPU (at least 1, or a share)';
  const minutes = whole(f.duration, 'duration_s', 'whole minutes, at least 1');
  if (!errors.duration_s && minutes < 1) errors.duration_s = 'whole minutes, at least 1';
  const min_run_s = whole(f.min_run, 'min_run_s', 'whole seconds (0 = none)');
  if (!errors.min_run_s && !errors.duration_s && min_run_s > minutes * 60) errors.min_run_s = 'at most the duration';
  if (!f.access_point) errors.access_point = 'choose where your traffic enters the network';
  const max_latency_ms = whole(f.max_latency_ms, 'max_latency_ms', 'whole milliseconds (0 = no bound)');
  const min_bandwidth_mbps = whole(f.min_bandwidth_mbps, 'min_bandwidth_mbps', 'whole Mbps (0 = none)');
  const max_price_per_cu_hour = tokens(f.max_price, 'max_price_per_cu_hour');
  const max_total = tokens(f.max_total, 'max_total');
  const max_transit = tokens(f.max_transit, 'max_transit');
  const command = splitCommand(f.command);
  if (command.length === 0) errors.command = 'the command the node runs, e.g. python train.py';
  if (Object.keys(errors).length > 0) return { errors };
  return {
    errors,
    command,
    request: {
      buyer,
      logic_mcu,
      parallel_mcu,
      neural_mcu,
      memory_mib,
      gpu_model,
      gpu_count,
      gpu_milli,
      min_tier: Number(f.min_tier),
      duration_s: minutes * 60,
      min_run_s,
      max_price_per_cu_hour,
      max_total,
      max_transit,
      access_point: f.access_point,
      max_latency_ms,
      min_bandwidth_mbps,
      auto_accept: f.auto_accept,
      valid_for_s: 3600,
      // Any matcher, no CFN service id, no APN6 attribute.
      matcher: `0x${'00'.repeat(20)}`,
      service_id: `0x${'00'.repeat(32)}`,
      apn_id: 0,
      apn_sla_class: 0,
    },
  };
}

/** The order exactly as signed. The quote's `order` carries the 63-bit nonce as a JSON number, which
 *  JavaScript rounds; the typed data's message carries such numbers as decimal strings. */
function exactOrder(q: QuoteOut): QuoteOut['order'] {
  const message = (q.typed_data as { message: Record<string, unknown> }).message;
  const out: Record<string, unknown> = { ...q.order };
  for (const [k, v] of Object.entries(message)) if (typeof out[k] !== 'string') out[k] = v;
  return out as QuoteOut['order'];
}

/** The quoted typed data with the sealed specification's digest in place of the quote's zero specDigest. */
function withSpecDigest(typed: QuoteOut['typed_data'], specDigest: string): Record<string, unknown> {
  const t = typed as { message: Record<string, unknown> };
  return { ...t, message: { ...t.message, specDigest } };
}

export function BuyerPage() {
  const { wallet, topology, devices, chainVersion, deployment } = useShared();
  const [form, setForm] = useState<Form>(INITIAL);
  const [errors, setErrors] = useState<Errors>({});
  const [quote, setQuote] = useState<{ quote: QuoteOut; command: string[]; accessPoint: string } | null>(null);
  const [chosen, setChosen] = useState(0);
  const [status, setStatus] = useState<TxState>({ kind: 'idle', text: '' });
  const accessPoint = form.access_point || topology?.routers[0]?.name || '';
  const set = (key: keyof Form) => (value: string | boolean) => {
    setForm({ ...form, [key]: value });
    setQuote(null);
  };

  const orders = usePoll<OrderOut[]>(
    async () => {
      if (!wallet) return undefined;
      const { data } = await api.GET('/api/orders', { params: { query: { buyer: wallet.address, limit: 10 } } });
      return data?.items;
    },
    1500,
    [wallet?.address, chainVersion],
  );

  async function getQuote(e: FormEvent) {
    e.preventDefault();
    if (!wallet) {
      setStatus({ kind: 'error', text: 'Choose an account first.' });
      return;
    }
    const { request, command, errors: found } = validateOrder({ ...form, access_point: accessPoint }, wallet.address);
    setErrors(found);
    setQuote(null);
    if (!request || !command) {
      setStatus({ kind: 'error', text: 'Fix the marked fields; nothing was asked or signed.' });
      return;
    }
    setStatus({ kind: 'pending', text: 'Asking the market…' });
    const { data, error } = await api.POST('/api/orders/quote', { body: request });
    if (error || !data) {
      setErrors(fieldErrors(error));
      setStatus({ kind: 'error', text: `The market refused the request: ${errorMessage(error)}` });
      return;
    }
    setQuote({ quote: data, command, accessPoint: request.access_point });
    setChosen(0);
    setStatus(
      data.candidates.length
        ? { kind: 'done', text: `${data.candidates.length} node(s) would take this order. Nothing is signed yet.` }
        : { kind: 'error', text: 'No node would take this order now: see why below.' },
    );
  }

  async function place() {
    if (!wallet || !quote) return;
    try {
      // The job, sealed to every quoted node with a key and to the buyer's own result key (one signature
      // derives it); the order then signs the envelope's digest as its specDigest.
      setStatus({ kind: 'pending', text: 'Sign the text that derives your result key, then the job is sealed…' });
      const sealed = await sealForQuote(wallet, deployment.chain_id, quote.command, quote.quote.candidates);
      const typed = withSpecDigest(quote.quote.typed_data, sealed.specDigest);
      const order = exactOrder({ ...quote.quote, order: { ...quote.quote.order, specDigest: sealed.specDigest }, typed_data: typed });
      setStatus({ kind: 'pending', text: `Job sealed to node(s) ${sealed.nodes.map((n) => `#${n}`).join(', ')} and to you. Sign the order (EIP-712) in your wallet…` });
      const signature = await signTypedOrder(wallet, typed);
      setStatus({ kind: 'pending', text: 'Sending the signed order…' });
      const { data, error } = await api.POST('/api/orders', {
        body: { order, signature, access_point: quote.accessPoint, job: { envelope: sealed.envelope } },
        headers: { 'Idempotency-Key': typedOrderId(typed) },
      });
      if (error || !data) throw new Error(errorMessage(error));
      rememberSignedOrder(data.id, order);
      setStatus({ kind: 'done', text: `Order ${data.id.slice(0, 10)}… placed, its job sealed to node(s) ${sealed.nodes.map((n) => `#${n}`).join(', ')} and to you; follow it below.` });
      setQuote(null);
    } catch (e) {
      setStatus({ kind: 'error', text: `Not placed: ${describeError(e)}` });
    }
  }

  const candidate = quote?.quote.candidates[chosen];
  // The quoted candidate's path, else the latest order's programmed path.
  const latestRoute = orders?.find((o) => o.route)?.route as { path?: string[] } | undefined;
  const routePath = (candidate?.route as { path?: string[] } | undefined)?.path ?? latestRoute?.path ?? [];
  const nodeRouters = quote?.quote.candidates.map((c) => ((c.route as { path?: string[] }).path ?? []).slice(-1)[0]).filter(Boolean) ?? [];
  const text = (key: keyof Form, label: string, err: keyof Errors, hint?: string) => (
    <Field id={`o-${key}`} label={label} value={form[key] as string} onChange={set(key)} error={errors[err]} hint={hint} />
  );

  return (
    <div className="page">
      <div className="two-col wide-left">
        <section className="card" aria-labelledby="order-heading">
          <h2 id="order-heading">Order compute with its network path</h2>
          <form onSubmit={getQuote} noValidate>
            <fieldset>
              <legend>Compute (CU by class of work) or a minimum tier</legend>
              <div className="grid4">
                {text('logic', 'Logic (CU)', 'logic_mcu')}
                {text('parallel', 'Parallel (CU)', 'parallel_mcu')}
                {text('neural', 'Neural (CU)', 'neural_mcu')}
                <Field id="o-tier" label="Minimum tier" error={errors.min_tier}>
                  <select id="o-tier" value={form.min_tier} onChange={(e) => set('min_tier')(e.target.value)}>
                    {TIERS.map((t, i) => <option key={t} value={i}>{t}</option>)}
                  </select>
                </Field>
              </div>
            </fieldset>
            <div className="grid4">
              <Field id="o-gpu" label="GPU type" error={errors.gpu_model}>
                <select id="o-gpu" value={form.gpu_model} onChange={(e) => set('gpu_model')(e.target.value)}>
                  <option value="0">any / none</option>
                  {devices.filter((d) => d.kind !== 'cpu').map((d) => (
                    <option key={d.code} value={d.code}>{d.name}</option>
                  ))}
                </select>
              </Field>
              {text('gpu_count', 'GPU count', 'gpu_count')}
              {text('gpu_milli', 'GPU share (milli-GPU)', 'gpu_milli', 'a share of one GPU, 0 to 1000')}
              {text('memory', 'Memory (GiB)', 'memory_mib')}
            </div>
            <div className="grid4">
              {text('duration', 'Duration (minutes)', 'duration_s')}
              {text('min_run', 'Minimum run (seconds)', 'min_run_s', 'billed at least this long; 0 = none')}
            </div>
            <fieldset>
              <legend>Network SLA from your access point</legend>
              <div className="grid3">
                <Field id="o-access" label="Access point" error={errors.access_point} hint="or click a router on the map">
                  <select id="o-access" value={accessPoint} onChange={(e) => set('access_point')(e.target.value)} aria-invalid={errors.access_point ? true : undefined}>
                    {topology?.routers.map((r) => <option key={r.name} value={r.name}>{r.label} ({r.operator})</option>)}
                  </select>
                </Field>
                {text('max_latency_ms', 'Max latency (ms)', 'max_latency_ms', '0 = no bound')}
                {text('min_bandwidth_mbps', 'Min bandwidth (Mbps)', 'min_bandwidth_mbps')}
              </div>
            </fieldset>
            <div className="grid4">
              {text('max_price', `Max price per CU-hour (${TOKEN})`, 'max_price_per_cu_hour')}
              {text('max_total', `Max total (${TOKEN})`, 'max_total', 'compute + transit + platform fee')}
              {text('max_transit', `Max transit (${TOKEN})`, 'max_transit', "the operators' published tariffs for your bandwidth")}
              <div className="field checkbox">
                <label>
                  <input type="checkbox" checked={form.auto_accept} onChange={(e) => set('auto_accept')(e.target.checked)} /> Accept the bill automatically
                </label>
                <span className="hint">otherwise you accept or reject the proposed bill</span>
              </div>
            </div>
            <Field id="o-command" label="Job command" value={form.command} onChange={set('command')} error={errors.command} inputMode="text" hint="what the node runs; sealed here to the quoted nodes and to you, so the service never reads it" />
            <div className="actions">
              <button type="submit" disabled={status.kind === 'pending'}>Get quote</button>
              {quote && quote.quote.candidates.length > 0 && (
                <button type="button" className="go" onClick={() => void place()} disabled={status.kind === 'pending'}>Sign and place order</button>
              )}
              <TxStatus state={status} testId="order-status" />
            </div>
          </form>
        </section>
        <div className="stack">
          {topology && (
            <section className="card" aria-labelledby="buyer-map-heading">
              <h2 id="buyer-map-heading">Network</h2>
              <NetworkMap topology={topology} selected={accessPoint} onPick={(n) => set('access_point')(n)} path={routePath} marked={nodeRouters} title="Network map: click a router to choose your entry point; the chosen path is drawn" />
            </section>
          )}
          <FundsCard seller={false} title="Your escrow" />
        </div>
      </div>
      {quote && <QuoteView quote={quote.quote} chosen={chosen} onChoose={setChosen} />}
      <section className="card" aria-labelledby="orders-heading">
        <div className="card-head">
          <h2 id="orders-heading">Your orders</h2>
          <VoidUnsentOrders />
        </div>
        {!orders || orders.length === 0 ? (
          <p className="muted">No orders yet.</p>
        ) : (
          <div className="orders">{orders.map((o) => <OrderCard key={o.id} order={o} />)}</div>
        )}
      </section>
      <OrderLookup />
    </div>
  );
}

/** Any order by its id: its public progress for anyone, its sealed job and result for its buyer alone. */
function OrderLookup() {
  const [id, setId] = useState('');
  const [found, setFound] = useState<OrderOut | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { chainVersion } = useShared();
  const shown = usePoll<OrderOut>(
    async () => (found ? (await api.GET('/api/orders/{order_id}', { params: { path: { order_id: found.id } } })).data : undefined),
    3000,
    [found?.id, chainVersion],
  );

  async function lookUp(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setFound(null);
    if (!/^0x[0-9a-fA-F]{64}$/.test(id.trim())) {
      setError('an order id: 0x and 64 hex digits');
      return;
    }
    const { data, error: err } = await api.GET('/api/orders/{order_id}', { params: { path: { order_id: id.trim() } } });
    if (err || !data) setError(errorMessage(err));
    else setFound(data);
  }

  return (
    <section className="card" aria-labelledby="lookup-heading">
      <h2 id="lookup-heading">Look up an order</h2>
      <form onSubmit={lookUp} noValidate className="actions">
        <Field id="lookup-id" label="Order id" value={id} onChange={setId} error={error ?? undefined} inputMode="text" />
        <button type="submit">Look up</button>
      </form>
      {found && <OrderCard order={shown?.id === found.id ? shown : found} />}
    </section>
  );
}

/** IMarket.cancelAllOrders: raises the buyer's nonce floor, so no order it signed before can be matched
 *  (what a buyer does when it fears a signed order leaked, or changed its mind about all of them). */
function VoidUnsentOrders() {
  const { wallet } = useShared();
  const tx = useTx();
  if (!wallet) return null;
  return (
    <div className="actions">
      <button
        type="button"
        className="secondary"
        disabled={tx.state.kind === 'pending'}
        onClick={() => void tx.send([{ contract: 'Market', fn: 'cancelAllOrders', args: [], label: 'Void orders' }], 'Every order you signed until now is void; deals already matched go on.')}
      >
        Void all signed orders not yet matched
      </button>
      <TxStatus state={tx.state} testId="void-status" />
    </div>
  );
}

function QuoteView({ quote, chosen, onChoose }: { quote: QuoteOut; chosen: number; onChoose: (i: number) => void }) {
  const { nameOf } = useShared();
  if (quote.candidates.length === 0) {
    return (
      <section className="card explain" aria-labelledby="quote-heading" data-testid="quote-explanation">
        <h2 id="quote-heading">No node would take this order</h2>
        <ul role="alert">
          {(quote.explanation.length ? quote.explanation : ['The engine gave no reason (this is a bug: please report it).']).map((s, i) => <li key={i}>{s}</li>)}
        </ul>
      </section>
    );
  }
  return (
    <section className="card" aria-labelledby="quote-heading">
      <h2 id="quote-heading">Quote: nodes that would take it</h2>
      <p className="hint">The market matches the best bill; choose a row to see its path on the map.</p>
      <div className="table-wrap">
        <table data-testid="quote-table">
          <thead>
            <tr>
              <th scope="col">Show</th><th scope="col">Node</th><th scope="col">Seller</th><th scope="col">Price / CU-h</th>
              <th scope="col">Compute fee</th><th scope="col">Transit (per operator)</th><th scope="col">Platform fee</th>
              <th scope="col">Total</th><th scope="col">Latency</th><th scope="col">Path</th>
            </tr>
          </thead>
          <tbody>
            {quote.candidates.map((c, i) => {
              const bill = c.bill as { compute_fee: string; platform_fee: string; total: string; transit: { operator: string; fee: string }[] };
              const route = c.route as { latency_ms: number; path: string[]; segments: string[] };
              return (
                <tr key={c.node_id} className={i === chosen ? 'chosen' : undefined} data-testid={`candidate-${c.node_id}`}>
                  <td><input type="radio" name="candidate" aria-label={`show node ${c.node_id}'s path`} checked={i === chosen} onChange={() => onChoose(i)} /></td>
                  <td>#{c.node_id}</td>
                  <td>{nameOf(c.owner)}</td>
                  <td className="num">{formatTokens(c.price_per_cu_hour)}</td>
                  <td className="num">{formatTokens(bill.compute_fee)}</td>
                  <td>{bill.transit.length ? bill.transit.map((t) => <div key={t.operator}>{nameOf(t.operator)}: {formatTokens(t.fee, 6)}</div>) : '—'}</td>
                  <td className="num">{formatTokens(bill.platform_fee, 6)}</td>
                  <td className="num strong">{formatTokens(bill.total)} {TOKEN}</td>
                  <td>{route.latency_ms.toFixed(1)} ms</td>
                  <td className="path-cell" title={route.segments.join(', ')}>{route.path.map((p) => p.split('/').pop()).join(' → ')}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

const STEPS = ['signed', 'matched', 'accepted', 'running', 'completed', 'settled'] as const;

function stepOf(o: OrderOut): number {
  const deal = o.deal?.status;
  if (o.settlement?.outcome === 'settled' || deal === 'settled') return 5;
  if (deal === 'completed' || deal === 'disputed') return 4;
  if (deal === 'started') return 3;
  if (deal === 'accepted') return 2;
  if (deal === 'proposed' || o.state === 'on_chain') return 1;
  return 0;
}

function OrderCard({ order: o }: { order: OrderOut }) {
  const { nameOf } = useShared();
  const step = stepOf(o);
  const failed = o.state === 'unmatched' || o.deal?.status === 'refunded' || o.settlement?.outcome === 'refunded';
  const bill = o.bill as { compute_fee: string; platform_fee: string; total: string; transit: { operator: string; fee: string }[] } | null;
  const route = o.route as { path: string[]; latency_ms: number } | null;
  const label = failed
    ? o.state === 'unmatched' ? 'not matched' : 'refunded'
    : o.state === 'new' || o.state === 'submitting' ? 'matching…'
    : o.deal?.status === 'proposed' ? 'bill proposed: accept or reject'
    : o.deal?.status === 'disputed' ? 'in dispute'
    : o.deal?.status === 'cancelled' ? 'cancelled' : STEPS[step];

  return (
    <article className={`order ${failed ? 'failed' : ''}`} data-testid={`order-${o.id}`} aria-label={`order ${o.id.slice(0, 10)}`}>
      <header className="order-head">
        <code>{o.id.slice(0, 10)}…</code>
        <span className="muted">from {o.access_point.split('/').pop()}</span>
        <span className={`pill ${failed ? 'refunded' : STEPS[step]}`} data-testid="order-state">{label}</span>
      </header>
      {!failed && (
        <ol className="steps" aria-label="progress">
          {STEPS.map((s, i) => (
            <li key={s} className={i < step ? 'done' : i === step ? 'current' : ''} aria-current={i === step ? 'step' : undefined}>{s}</li>
          ))}
        </ol>
      )}
      {o.state === 'unmatched' && (
        <div className="explain" role="alert" data-testid="order-explanation">
          <strong>Why not matched:</strong>
          <ul>{(o.explanation?.length ? o.explanation : [o.reason ?? 'no reason recorded']).map((s, i) => <li key={i}>{s}</li>)}</ul>
        </div>
      )}
      <dl className="facts">
        {o.node_id != null && <><dt>Node</dt><dd>#{o.node_id}{o.deal ? ` of ${nameOf(o.deal.seller)}` : ''}</dd></>}
        {o.deal?.used_seconds != null && <><dt>Time billed</dt><dd data-testid="used-seconds">{o.deal.used_seconds} s</dd></>}
        {route && <><dt>Path</dt><dd>{route.path.map((p) => p.split('/').pop()).join(' → ')} ({route.latency_ms.toFixed(1)} ms)</dd></>}
        {o.job && <><dt>Job</dt><dd>{o.job.state} on {o.job.executor_node ?? `the ${o.job.executor.replace(/Executor$/, '').toLowerCase()} executor`}{o.job.exit_code != null ? `, exit ${o.job.exit_code}` : ''}</dd></>}
        {(o.deal?.result_cid || o.job?.result_cid) && <><dt>Result</dt><dd><code data-testid="result-cid" title="sealed to the buyer: open it below">{o.deal?.result_cid ?? o.job?.result_cid}</code></dd></>}
      </dl>
      <SealedJob order={o} />
      <DealActions order={o} />
      {bill && (
        <table className="receipt" data-testid="receipt">
          <caption>{o.settlement?.outcome === 'settled' ? 'Receipt: who was paid what' : 'Bill'}{o.deal?.valueless ? ' (stage 1: recorded, no tokens move)' : ''}</caption>
          <tbody>
            <tr><th scope="row">Compute → {o.deal ? nameOf(o.deal.seller) : `node #${o.node_id}`}</th><td className="num">{formatTokens(o.settlement?.compute_fee ?? bill.compute_fee, 6)}</td></tr>
            {bill.transit.map((t) => (
              <tr key={t.operator}><th scope="row">Transit → {nameOf(t.operator)}</th><td className="num">{formatTokens(t.fee, 6)}</td></tr>
            ))}
            <tr><th scope="row">Platform fee</th><td className="num">{formatTokens(o.settlement?.platform_fee ?? bill.platform_fee, 6)}</td></tr>
            {o.settlement && BigInt(o.settlement.refunded) > 0n && <tr><th scope="row">Refunded to you</th><td className="num">{formatTokens(o.settlement.refunded, 6)}</td></tr>}
            <tr className="total"><th scope="row">Total</th><td className="num">{formatTokens(bill.total, 6)} {TOKEN}</td></tr>
          </tbody>
        </table>
      )}
      <p className="hint" data-testid="order-times">
        Buyer {shortAddress(o.buyer)} · placed {new Date(o.created_at).toLocaleTimeString()}
        {afterPlacing(o.created_at, o.matched_at, 'on chain')}
        {afterPlacing(o.created_at, o.job?.running_at, 'running')}
      </p>
    </article>
  );
}

/** " · <what> +N.N s" after the order was placed, from the service's own stamps (empty until there is one). */
function afterPlacing(placed: string, at: string | null | undefined, what: string): string {
  if (!at) return '';
  const seconds = (Date.parse(at) - Date.parse(placed)) / 1000;
  return ` · ${what} +${seconds.toFixed(1)} s`;
}
