import { useEffect, useState } from 'react';
import { api, errorMessage, type NodeOut } from '../api/client';
import { formatPrefix } from '../ipv6';
import { formatTokens, TIERS } from '../format';
import { useShared } from '../state';

interface Filters {
  status: '' | 'active' | 'paused' | 'retired';
  min_memory_mib: string;
}

/** The node list, from the chain through the backend's indexer; refreshed every two seconds. */
export function NodeList() {
  const { chainVersion, devices, nameOf } = useShared();
  const deviceName = (code: number) => devices.find((d) => d.code === code)?.name ?? `model ${code}`;
  const [nodes, setNodes] = useState<NodeOut[]>([]);
  const [total, setTotal] = useState(0);
  const [filters, setFilters] = useState<Filters>({ status: '', min_memory_mib: '' });
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    const load = async () => {
      const query: Record<string, string> = {};
      if (filters.status) query.status = filters.status;
      if (filters.min_memory_mib) query.min_memory_mib = filters.min_memory_mib;
      const { data, error: err } = await api.GET('/api/nodes', { params: { query: query as never } });
      if (stopped) return;
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

