import { useState } from 'react';
import { api, type ProviderOut, type RoleName } from '../api/client';
import { FundsCard } from '../components/FundsCard';
import { NetworkMap } from '../components/NetworkMap';
import { NodeList } from '../components/NodeList';
import { RegisterNodeForm } from '../components/RegisterNodeForm';
import { formatCu, formatTokens, TOKEN } from '../format';
import { usePoll, useShared } from '../state';

const SELLER_ROLES: readonly RoleName[] = ['cloud', 'provider', 'operator'];

/** A seller's desk: funds and stake, register a node, its load and earnings, why it was passed over. */
export function ProviderPage() {
  const { wallet, topology, members, chainVersion } = useShared();
  const [router, setRouter] = useState<string | undefined>(undefined);
  const me = members.find((m) => wallet && m.address.toLowerCase() === wallet.address.toLowerCase());
  const view = usePoll<ProviderOut>(
    async () => {
      if (!wallet) return undefined;
      const { data } = await api.GET('/api/views/providers/{address}', { params: { path: { address: wallet.address } } });
      return data;
    },
    2500,
    [wallet?.address, chainVersion],
  );
  const nodeRouters = new Set(view?.nodes.map((n) => n.node.router) ?? []);
  const marked = topology?.routers.filter((r) => nodeRouters.has(r.router_id)).map((r) => r.name) ?? [];

  return (
    <div className="page">
      {me && !me.role_names.some((r) => SELLER_ROLES.includes(r)) && (
        <p className="banner info">{me.name} holds no seller role ({me.role_names.join(', ')}): the chain will refuse its registrations.</p>
      )}
      <div className="two-col">
        <FundsCard seller title="Funds and stake" />
        <section className="card" aria-labelledby="earnings-heading">
          <h2 id="earnings-heading">Earnings</h2>
          <div className="stats">
            <div className="stat">
              <span className="stat-label">Settled compute fees</span>
              <span className="stat-value" data-testid="earnings">{view ? `${formatTokens(view.earnings)} ${TOKEN}` : '…'}</span>
              <span className="hint">paid into your escrow balance; withdraw them above</span>
            </div>
            <div className="stat">
              <span className="stat-label">Deals</span>
              <span className="stat-value">{view?.deals.length ?? '…'}</span>
              <span className="hint">{view ? `${view.deals.filter((d) => d.status === 'settled').length} settled` : ''}</span>
            </div>
          </div>
          {view && view.deals.length > 0 && (
            <div className="table-wrap">
              <table>
                <caption className="sr-only">Your deals</caption>
                <thead>
                  <tr><th scope="col">Deal</th><th scope="col">Node</th><th scope="col">Status</th><th scope="col">Compute fee</th><th scope="col">Result</th></tr>
                </thead>
                <tbody>
                  {view.deals.slice(0, 8).map((d) => (
                    <tr key={d.id}>
                      <td><code>{d.id.slice(0, 10)}…</code></td>
                      <td>#{d.node_id}</td>
                      <td><span className={`pill ${d.status}`}>{d.status}</span></td>
                      <td className="num">{formatTokens(d.compute_fee)}</td>
                      <td>{d.result_cid ? <code title={d.result_cid}>{d.result_cid.slice(0, 14)}…</code> : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
      <div className="two-col wide-left">
        <RegisterNodeForm router={router} />
        {topology && (
          <section className="card" aria-labelledby="attach-heading">
            <h2 id="attach-heading">Attachment</h2>
            <NetworkMap topology={topology} selected={router} onPick={setRouter} marked={marked} title="Routers to attach a node to" />
          </section>
        )}
      </div>
      <section className="card" aria-labelledby="mynodes-heading">
        <h2 id="mynodes-heading">Your nodes</h2>
        {!view || view.nodes.length === 0 ? (
          <p className="muted">No nodes registered by this account yet.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">#</th><th scope="col">Status</th><th scope="col">Capacity (CU)</th>
                  <th scope="col">Reserved now</th><th scope="col">Live deals</th><th scope="col">Settled</th><th scope="col">Earned</th>
                </tr>
              </thead>
              <tbody>
                {view.nodes.map((n) => (
                  <tr key={n.node.node_id} data-testid={`my-node-${n.node.node_id}`}>
                    <td>{n.node.node_id}</td>
                    <td><span className={`pill ${n.node.status}`}>{n.node.status}</span></td>
                    <td>{formatCu(n.capacity_mcu)}</td>
                    <td>
                      <span className="meter" role="meter" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(n.utilisation * 100)} aria-label={`node ${n.node.node_id} utilisation`}>
                        <span style={{ width: `${Math.round(n.utilisation * 100)}%` }} />
                      </span>{' '}
                      {Math.round(n.utilisation * 100)}% ({formatCu(n.reserved_mcu)} CU)
                    </td>
                    <td>{n.live_deals}</td>
                    <td>{n.settled_deals}</td>
                    <td className="num">{formatTokens(n.earned)} {TOKEN}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="notchosen-heading">
        <h2 id="notchosen-heading">Why your nodes were not chosen</h2>
        {!view || view.not_chosen.length === 0 ? (
          <p className="muted">Every recent order found a node.</p>
        ) : (
          <ul className="explanations" data-testid="not-chosen">
            {view.not_chosen.map((o) => (
              <li key={o.order_id}>
                <span className="muted">Order <code>{o.order_id.slice(0, 10)}…</code> from {o.access_point}:</span>
                <ul>{o.explanation.map((s, i) => <li key={i}>{s}</li>)}</ul>
              </li>
            ))}
          </ul>
        )}
      </section>
      <NodeList />
    </div>
  );
}
