import { useState, type FormEvent } from 'react';
import { api, type OperatorViewOut } from '../api/client';
import { Field } from '../components/Field';
import { NetworkMap, loadColour } from '../components/NetworkMap';
import { TxStatus } from '../components/TxStatus';
import { formatTokens, parseTokens, shortAddress, TOKEN } from '../format';
import { usePoll, useShared, useTx } from '../state';

const STAGES = ['', 'single operator (allocations recorded, nothing paid)', 'one operator + one cloud (trading and settlement)', 'many operators and clouds (operators admitted by vote)'];

/** The operators' desk: stage and members, stage-3 votes, transit revenue and link load. */
export function OperatorPage() {
  const { wallet, topology, chainVersion, nameOf } = useShared();
  const view = usePoll<OperatorViewOut>(
    async () => (await api.GET('/api/views/operators')).data,
    2500,
    [chainVersion],
  );
  const nodes = usePoll(async () => (await api.GET('/api/nodes', { params: { query: { status: 'active' } } })).data, 5000, [chainVersion]);
  const nodeRouters = new Set(nodes?.items.map((n) => n.router) ?? []);
  const marked = topology?.routers.filter((r) => nodeRouters.has(r.router_id)).map((r) => r.name) ?? [];
  const isOperator = !!view?.members.find((m) => wallet && m.address.toLowerCase() === wallet.address.toLowerCase() && m.active && m.role_names.includes('operator'));

  return (
    <div className="page">
      <section className="card" aria-labelledby="fed-heading">
        <h2 id="fed-heading">Federation</h2>
        <div className="stats">
          <div className="stat"><span className="stat-label">Stage</span><span className="stat-value" data-testid="stage">{view?.stage ?? '…'}</span><span className="hint">{view ? STAGES[view.stage] : ''}</span></div>
          <div className="stat"><span className="stat-label">Operators</span><span className="stat-value" data-testid="operator-count">{view?.operator_count ?? '…'}</span></div>
          <div className="stat"><span className="stat-label">Platform fee</span><span className="stat-value">{view ? `${view.platform_fee_bps / 100}%` : '…'}</span><span className="hint">of the compute fee</span></div>
          <div className="stat"><span className="stat-label">Platform fees settled</span><span className="stat-value">{view ? `${formatTokens(view.platform_fees)} ${TOKEN}` : '…'}</span></div>
        </div>
      </section>
      <div className="two-col">
        <section className="card" aria-labelledby="members-heading">
          <h2 id="members-heading">Members</h2>
          <div className="table-wrap">
            <table data-testid="members">
              <thead><tr><th scope="col">Name</th><th scope="col">Roles</th><th scope="col">Address</th><th scope="col">Status</th></tr></thead>
              <tbody>
                {view?.members.map((m) => (
                  <tr key={m.address}>
                    <td>{m.name}</td>
                    <td>{m.role_names.join(', ')}</td>
                    <td><code title={m.address}>{shortAddress(m.address)}</code></td>
                    <td><span className={`pill ${m.active ? 'active' : 'retired'}`}>{m.active ? 'active' : 'removed'}</span></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
        <section className="card" aria-labelledby="revenue-heading">
          <h2 id="revenue-heading">Transit revenue</h2>
          {!view || view.transit_revenue.length === 0 ? (
            <p className="muted">No settled deal has paid transit yet.</p>
          ) : (
            <div className="table-wrap"><table data-testid="transit-revenue">
              <thead><tr><th scope="col">Operator account</th><th scope="col">Deals</th><th scope="col">Earned</th></tr></thead>
              <tbody>
                {view.transit_revenue.map((r) => (
                  <tr key={r.operator}><td>{r.name ?? shortAddress(r.operator)}</td><td>{r.deals}</td><td className="num">{formatTokens(r.earned, 6)} {TOKEN}</td></tr>
                ))}
              </tbody>
            </table></div>
          )}
          <h3>Network load by domain</h3>
          <table>
            <thead><tr><th scope="col">Domain</th><th scope="col">Links</th><th scope="col">Reserved</th><th scope="col">Load</th></tr></thead>
            <tbody>
              {view?.network_load.map((l) => (
                <tr key={l.operator}>
                  <td>{l.operator}</td><td>{l.links}</td>
                  <td>{l.used_gbps.toFixed(2)} / {l.capacity_gbps.toFixed(1)} Gbps</td>
                  <td><span className="meter" role="meter" aria-label={`${l.operator} load`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(l.utilisation * 100)}><span style={{ width: `${Math.max(1, l.utilisation * 100)}%`, background: loadColour(l.utilisation) }} /></span> {(l.utilisation * 100).toFixed(2)}%</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>
      {view && <Tariffs view={view} isOperator={isOperator} />}
      {view && <Governance view={view} isOperator={isOperator} nameOf={nameOf} />}
      {topology && (
        <section className="card" aria-labelledby="load-map-heading">
          <h2 id="load-map-heading">Link utilisation</h2>
          <NetworkMap topology={topology} marked={marked} title="Links coloured by reserved bandwidth" />
        </section>
      )}
    </div>
  );
}

/** Each operator's published transit tariff; an operator publishes its own (bills charge exactly it). */
function Tariffs({ view, isOperator }: { view: OperatorViewOut; isOperator: boolean }) {
  const { wallet } = useShared();
  const tx = useTx();
  const [tariff, setTariff] = useState('0.002');
  const [error, setError] = useState<string | undefined>();
  const mine = view.transit_tariffs.find((t) => wallet && t.operator.toLowerCase() === wallet.address.toLowerCase());

  async function publish(e: FormEvent) {
    e.preventDefault();
    let value: bigint;
    try {
      value = parseTokens(tariff);
    } catch (err) {
      setError((err as Error).message);
      tx.setState({ kind: 'error', text: 'Fix the tariff; nothing was signed.' });
      return;
    }
    if (value >= 2n ** 96n) {
      setError('at most 2^96 - 1 base units');
      return;
    }
    setError(undefined);
    await tx.send([{ contract: 'Market', fn: 'setTransitTariff', args: [value], label: 'Publish tariff' }]);
  }

  return (
    <section className="card" aria-labelledby="tariffs-heading">
      <h2 id="tariffs-heading">Transit tariffs</h2>
      <p className="hint">
        Per Gbps-hour of reserved bandwidth. A bill pays each operator on the path, and the node's own operator,
        exactly its tariff × the order's bandwidth × its duration.
      </p>
      <div className="table-wrap"><table data-testid="transit-tariffs">
        <thead><tr><th scope="col">Operator</th><th scope="col">Tariff per Gbps-hour</th></tr></thead>
        <tbody>
          {view.transit_tariffs.map((t) => (
            <tr key={t.operator}><td>{t.name ?? shortAddress(t.operator)}</td><td className="num">{formatTokens(t.per_gbps_hour, 6)} {TOKEN}</td></tr>
          ))}
        </tbody>
      </table></div>
      {isOperator && (
        <form onSubmit={publish} noValidate className="propose">
          <h3>Publish your tariff</h3>
          <p className="hint">Yours now: {mine ? `${formatTokens(mine.per_gbps_hour, 6)} ${TOKEN}` : 'none'}; a new one applies to the bills matched after it.</p>
          <div className="grid3">
            <Field id="t-tariff" label={`Tariff (${TOKEN} per Gbps-hour)`} value={tariff} onChange={setTariff} error={error} inputMode="decimal" />
          </div>
          <div className="actions">
            <button type="submit" disabled={tx.state.kind === 'pending'}>Publish tariff</button>
            <TxStatus state={tx.state} testId="tariff-status" />
          </div>
        </form>
      )}
    </section>
  );
}

function Governance({ view, isOperator, nameOf }: { view: OperatorViewOut; isOperator: boolean; nameOf: (a: string) => string }) {
  const { wallet } = useShared();
  const voteTx = useTx();
  const proposeTx = useTx();
  const [address, setAddress] = useState('');
  const [name, setName] = useState('');
  const [errors, setErrors] = useState<{ address?: string; name?: string }>({});

  async function propose(e: FormEvent) {
    e.preventDefault();
    const found: typeof errors = {};
    if (!/^0x[0-9a-fA-F]{40}$/.test(address.trim())) found.address = 'an address: 0x and 40 hex digits';
    if (!name.trim()) found.name = 'the name members will see';
    setErrors(found);
    if (Object.keys(found).length) {
      proposeTx.setState({ kind: 'error', text: 'Fix the marked fields; nothing was signed.' });
      return;
    }
    if (await proposeTx.send([{ contract: 'Federation', fn: 'proposeOperator', args: [address.trim(), name.trim()], label: 'Propose' }])) {
      setAddress('');
      setName('');
    }
  }

  return (
    <section className="card" aria-labelledby="votes-heading">
      <h2 id="votes-heading">Operator admission votes</h2>
      {view.stage < 3 && <p className="muted">Operators are admitted by a vote of the operators from stage 3; this deployment is at stage {view.stage}.</p>}
      {view.proposals.length === 0 ? (
        <p className="muted">No proposals yet.</p>
      ) : (
        <div className="table-wrap">
          <table data-testid="proposals">
            <thead><tr><th scope="col">#</th><th scope="col">Proposal</th><th scope="col">Votes</th><th scope="col">Status</th><th scope="col">Voted yes</th><th scope="col"><span className="sr-only">Action</span></th></tr></thead>
            <tbody>
              {view.proposals.map((p) => {
                const mine = !!wallet && p.voters.some((v) => v.toLowerCase() === wallet.address.toLowerCase());
                return (
                  <tr key={p.id} data-testid={`proposal-${p.id}`}>
                    <td>{p.id}</td>
                    <td>{p.admit ? 'Admit' : 'Remove'} <strong>{p.name || shortAddress(p.account)}</strong> <code title={p.account}>{shortAddress(p.account)}</code>{p.admit && <span className="muted"> as {p.role_names.join(', ')}</span>}</td>
                    <td>
                      <span className="meter" role="meter" aria-label={`proposal ${p.id} votes`} aria-valuemin={0} aria-valuemax={p.needed} aria-valuenow={p.yes}><span style={{ width: `${Math.min(100, (p.yes / p.needed) * 100)}%` }} /></span> {p.yes} of {p.needed}
                    </td>
                    <td><span className={`pill ${p.executed ? 'active' : p.open ? 'paused' : 'retired'}`}>{p.executed ? 'passed' : p.open ? `open until ${new Date(p.deadline * 1000).toLocaleDateString()}` : 'expired'}</span></td>
                    <td>{p.voters.map(nameOf).join(', ')}</td>
                    <td>{p.open && (
                      <button type="button" className="small" onClick={() => void voteTx.send([{ contract: 'Federation', fn: 'vote', args: [BigInt(p.id)], label: `Vote on #${p.id}` }])} disabled={voteTx.state.kind === 'pending'}>
                        {mine ? 'Voted' : 'Vote yes'}
                      </button>
                    )}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <TxStatus state={voteTx.state} testId="vote-status" />
      {view.stage >= 3 && (
        <form onSubmit={propose} noValidate className="propose">
          <h3>Propose a new operator</h3>
          {!isOperator && <p className="hint">Only operators may propose and vote; the chain will refuse others.</p>}
          <p className="hint">A vote grants the operator role alone; the founder grants any other role once it passes.</p>
          <div className="grid3">
            <Field id="p-address" label="Address of the new operator" value={address} onChange={setAddress} error={errors.address} inputMode="text" />
            <Field id="p-name" label="Display name" value={name} onChange={setName} error={errors.name} inputMode="text" />
          </div>
          <div className="actions">
            <button type="submit" disabled={proposeTx.state.kind === 'pending'}>Propose operator</button>
            <TxStatus state={proposeTx.state} testId="propose-status" />
          </div>
        </form>
      )}
    </section>
  );
}
