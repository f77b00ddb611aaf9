import { useEffect, useState } from 'react';
import { api, errorMessage, type NodeMetricsOut, type NodeOut, type SellerReliabilityOut } from '../api/client';
import { formatPrefix } from '../ipv6';
import { formatBytes, formatSeconds, formatTokens, TIERS } from '../format';
import { useShared } from '../state';

interface Filters {
  status: '' | 'active' | 'paused' | 'retired';
  min_memory_mib: string;
}

/** The node list, from the chain through the backend's indexer, with each node's newest live metrics as its
 *  provider's agent signed them (GET /api/nodes/metrics); refreshed every two seconds. */
export function NodeList() {
  const { chainVersion, devices, nameOf } = useShared();
  const deviceName = (code: number) => devices.find((d) => d.code === code)?.name ?? `model ${code}`;
  const [nodes, setNodes] = useState<NodeOut[]>([]);
  const [total, setTotal] = useState(0);
  const [metrics, setMetrics] = useState<Map<number, NodeMetricsOut>>(new Map());
  const [records, setRecords] = useState<Map<string, SellerReliabilityOut>>(new Map());
  const [filters, setFilters] = useState<Filters>({ status: '', min_memory_mib: '' });
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    const load = async () => {
      const query: Record<string, string> = {};
      if (filters.status) query.status = filters.status;
      if (filters.min_memory_mib) query.min_memory_mib = filters.min_memory_mib;
      const [{ data, error: err }, live, reliability] = await Promise.all([
        api.GET('/api/nodes', { params: { query: query as never } }),
        api.GET('/api/nodes/metrics'),
        api.GET('/api/nodes/reliability'),
      ]);
      if (stopped) return;
      if (live.data) setMetrics(new Map(live.data.map((m) => [m.node_id, m])));
      if (reliability.data) setRecords(new Map(reliability.data.map((r) => [r.seller.toLowerCase(), r])));
      if (err) setError(errorMessage(err));
      else if (data) {
        setError(null);
        setNodes(data.items);
        setTotal(data.total);
      }
    };
    void load();
    const timer = window.setInterval(load, 2000);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
  }, [filters, chainVersion]);

  return (
    <section className="card" aria-labelledby="nodes-heading">
      <div className="card-head">
        <h2 id="nodes-heading">Compute nodes <span className="count" data-testid="node-total">{total}</span></h2>
        <div className="filters">
          <label>
            Status
            <select value={filters.status} onChange={(e) => setFilters({ ...filters, status: e.target.value as Filters['status'] })}>
              <option value="">any</option>
              <option value="active">active</option>
              <option value="paused">paused</option>
              <option value="retired">retired</option>
            </select>
          </label>
          <label>
            Min memory (MiB)
            <input inputMode="numeric" value={filters.min_memory_mib} onChange={(e) => setFilters({ ...filters, min_memory_mib: e.target.value })} />
          </label>
        </div>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      {nodes.length === 0 && !error ? (
        <p className="muted">No nodes yet. Register one, or pick a looser filter.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Status</th>
                <th scope="col">Tier</th>
                <th scope="col">Compute (CU: logic / parallel / neural)</th>
                <th scope="col">Memory</th>
                <th scope="col">GPU</th>
                <th scope="col">Price / CU-h</th>
                <th scope="col">Live (agent's report)</th>
                <th scope="col" title="the provider's deals as the chain ended them: (good + 1) / (good + bad + 2)">Reliability</th>
                <th scope="col">Locator</th>
                <th scope="col">Owner</th>
              </tr>
            </thead>
            <tbody>
              {nodes.map((n) => (
                <tr key={n.node_id} data-testid={`node-row-${n.node_id}`}>
                  <td>{n.node_id}</td>
                  <td><span className={`pill ${n.status}`}>{n.status}</span></td>
                  <td>{TIERS[n.tier] ?? n.tier}</td>
                  <td>{[n.logic_mcu, n.parallel_mcu, n.neural_mcu].map((m) => (m / 1000).toLocaleString()).join(' / ')}</td>
                  <td>{(n.memory_mib / 1024).toLocaleString()} GiB</td>
                  <td>{n.gpu_count > 0 ? `${n.gpu_count} × ${deviceName(n.gpu_model)}` : '—'}</td>
                  <td className="num">{formatTokens(n.price_per_cu_hour)}</td>
                  <td data-testid={`node-metrics-${n.node_id}`}><LiveMetrics m={metrics.get(n.node_id)} /></td>
                  <td data-testid={`node-reliability-${n.node_id}`}><Reliability r={records.get(n.owner.toLowerCase())} /></td>
                  <td><code>{formatPrefix(n.locator)}</code></td>
                  <td title={n.owner}>{nameOf(n.owner)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}


const MIB = 1024 * 1024;

/** The provider's reliability as the matcher scores it, from on-chain outcomes alone (never exit codes). */
function Reliability({ r }: { r: SellerReliabilityOut | undefined }) {
  if (!r) return <span className="muted" title="no deal of this provider has ended yet: the prior, 0.50">0.50 · no record</span>;
  return (
    <span title={`${r.good} delivered, ${r.bad} declined, timed out or lost`}>
      {r.score.toFixed(2)} · {r.good} good / {r.bad} bad
    </span>
  );
}

/** A node's live report: up or down and whether the matcher still counts it (heard from lately), its free
 *  CPUs, memory and GPUs, its load, and the CATS normalised levels (0..10, 10 = idle) the service derives. */
function LiveMetrics({ m }: { m: NodeMetricsOut | undefined }) {
  if (!m) return <span className="muted" title="its provider's agent has not reported this node">no report</span>;
  const state = !m.up ? 'down' : m.live ? 'up' : 'silent';
  const cats = `cpu ${m.cats.cpu} · mem ${m.cats.memory}${m.cats.gpu != null ? ` · gpu ${m.cats.gpu}` : ''}`;
  return (
    <div className="live-metrics">
      <span className={`pill ${state === 'up' ? 'active' : 'retired'}`} data-testid="live-state" title={m.live ? 'the matcher considers it' : 'the matcher skips it: down, or not heard from within two report intervals'}>
        {state}
      </span>{' '}
      <span className="hint" data-testid="report-age">reported {formatSeconds(m.seconds_since)} ago</span>
      <div data-testid="free">
        {m.free_cpus}/{m.cpus} CPUs · {formatBytes(m.free_memory_mib * MIB)}/{formatBytes(m.memory_mib * MIB)} · {m.free_gpus}/{m.gpus} GPUs free
      </div>
      <div>
        load <span data-testid="load">{m.load_1m.toFixed(2)}</span> · CATS level <strong data-testid="cats-level">{m.cats.level2}</strong>{' '}
        <span className="hint">({cats})</span>
      </div>
    </div>
  );
}
