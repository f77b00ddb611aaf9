import { useEffect, useState } from 'react';
import { api, type DealStatus, type EventOut, type MarketHistoryOut } from '../api/client';
import { LineChart } from '../components/LineChart';
import { formatTokens, shortAddress, TOKEN } from '../format';
import { usePoll, useShared } from '../state';

const EVENT_NAMES = [
  'NodeRegistered', 'NodeUpdated', 'NodePauseChanged', 'NodeRetired', 'OrderPosted', 'OrderCancelled', 'Matched',
  'MatchFailed', 'DealStatusChanged', 'Completed', 'Settled', 'Refunded', 'Slashed', 'Deposited', 'Withdrawn', 'Staked',
  'UnstakeRequested', 'Unstaked', 'TransitTariffSet', 'Disputed', 'SlaBreached', 'NonceFloorRaised', 'FeesWithdrawn',
  'MemberAdmitted', 'MemberRemoved', 'MemberRolesChanged', 'StageAdvanced',
  'PlatformFeeChanged', 'OperatorProposed', 'OperatorVoted', 'ProposalExecuted',
];
// By on-chain value (IMarketTypes.DealStatus's order), named as the API's DealStatus.
const STATUS: readonly DealStatus[] = ['none', 'posted', 'proposed', 'accepted', 'started', 'completed', 'disputed', 'settled', 'refunded', 'cancelled'];
const KIND: Record<string, string> = {
  Matched: 'match', Settled: 'settle', Completed: 'settle', OrderPosted: 'order', NodeRegistered: 'node',
  Refunded: 'bad', Slashed: 'bad', MatchFailed: 'bad',
};

type Args = Record<string, unknown>;

/** One chain event in words. */
export function describe(e: { name: string; args: Args }, nameOf: (a: string) => string): string {
  const a = e.args;
  const who = (k: string) => nameOf(String(a[k] ?? ''));
  const amt = (k: string) => `${formatTokens(String(a[k] ?? 0))} ${TOKEN}`;
  const deal = typeof a.deal === 'object' && a.deal ? (a.deal as Args) : a;
  const id = (k = 'id') => `${String(a[k] ?? '').slice(0, 10)}…`;
  switch (e.name) {
    case 'NodeRegistered': return `${who('owner')} registered node #${a.nodeId}`;
    case 'NodeUpdated': return `node #${a.nodeId} was updated`;
    case 'NodePauseChanged': return `node #${a.nodeId} ${a.paused ? 'paused' : 'resumed'}`;
    case 'NodeRetired': return `node #${a.nodeId} retired`;
    case 'OrderPosted': return `${who('buyer')} posted order ${id()} locking ${amt('locked')}`;
    case 'OrderCancelled': return `order ${id()} cancelled, ${amt('refunded')} back`;
    case 'Matched':
      return deal.nodeId === undefined || typeof deal === 'string'
        ? `order ${id()} matched`
        : `order ${id()} of ${who('buyer')} matched to node #${deal.nodeId} of ${who('seller')} for ${formatTokens(String(deal.computeFee ?? 0))} ${TOKEN} compute`;
    case 'MatchFailed': return `a match for ${id()} failed on chain`;
    case 'DealStatusChanged': return `deal ${id()} is now ${STATUS[Number(a.status)] ?? a.status}`;
    case 'Completed': return `deal ${id()} completed after ${a.usedSeconds} s billed, with result ${String(a.resultCid).slice(0, 16)}…`;
    case 'Settled': return `deal ${id()} paid out: ${formatTokens(String(a.computeFee))} compute, ${formatTokens(String(a.transitTotal), 6)} transit, ${formatTokens(String(a.platformFee), 6)} platform, ${formatTokens(String(a.refunded ?? 0), 6)} back to the buyer${a.valueless ? ' (recorded, no tokens moved)' : ''}`;
    case 'Disputed': return `deal ${id()} disputed with a bond of ${amt('bond')}`;
    case 'SlaBreached': return `${who('reporter')} reported deal ${id()} over its latency bound (${Number(a.measuredUs) / 1000} ms > ${a.boundMs} ms)`;
    case 'NonceFloorRaised': return `${who('buyer')} cancelled all its signed orders below nonce ${a.floor}`;
    case 'TransitTariffSet': return `${who('operator')} set its transit tariff to ${formatTokens(String(a.perGbpsHour), 6)} ${TOKEN} per Gbps-hour`;
    case 'UnstakeRequested': return `${who('account')} asked for ${amt('amount')} of stake back`;
    case 'Refunded': return `deal ${id()} refunded ${amt('amount')} to ${who('buyer')}`;
    case 'Slashed': return `${who('seller')} slashed on deal ${id()}`;
    case 'Deposited': return `${who('account')} deposited ${amt('amount')}`;
    case 'Withdrawn': return `${who('account')} withdrew ${amt('amount')}`;
    case 'Staked': return `${who('account')} staked ${amt('amount')}`;
    case 'Unstaked': return `${who('account')} unstaked ${amt('amount')}`;
    case 'MemberAdmitted': return `${a.name} joined the federation`;
    case 'MemberRemoved': return `${who('member')} left the federation`;
    case 'StageAdvanced': return `the federation moved to stage ${a.stage}`;
    case 'OperatorProposed': return `${who('proposer')} proposed to ${a.admit ? 'admit' : 'remove'} ${shortAddress(String(a.account))} as operator`;
    case 'OperatorVoted': return `${who('voter')} voted on proposal #${a.proposalId} (${a.yes} of ${a.needed})`;
    case 'ProposalExecuted': return `proposal #${a.proposalId} passed`;
    default: return e.name;
  }
}

/** The market as it moves: a live feed of chain events (server-sent), price and utilisation over time. */
export function MarketPage() {
  const { nameOf } = useShared();
  const [events, setEvents] = useState<EventOut[]>([]);
  const [live, setLive] = useState<'connecting' | 'live' | 'reconnecting'>('connecting');
  const [version, setVersion] = useState(0);

  useEffect(() => {
    let closed = false;
    // Stored events (a match with its deal's fields) win over the live copies of the same event.
    const add = (incoming: EventOut[], stored: boolean) =>
      setEvents((old) => {
        const ids = new Set(incoming.map((e) => e.id));
        const seen = new Set(old.map((e) => e.id));
        const kept = stored ? old.filter((e) => !ids.has(e.id)) : old;
        const fresh = stored ? incoming : incoming.filter((e) => !seen.has(e.id));
        return [...fresh, ...kept].sort((x, y) => y.id - x.id).slice(0, 80);
      });
    let refresh: number | undefined;
    const load = () => api.GET('/api/views/events', { params: { query: { limit: 40 } } }).then(({ data }) => data && !closed && add(data, true));
    void load();
    const source = new EventSource('/api/stream');
    source.onopen = () => setLive('live');
    source.onerror = () => setLive('reconnecting');
    const onEvent = (m: MessageEvent) => {
      add([JSON.parse(m.data) as EventOut], false);
      setVersion((v) => v + 1);
      window.clearTimeout(refresh);
      refresh = window.setTimeout(() => void load(), 400);
    };
    for (const name of EVENT_NAMES) source.addEventListener(name, onEvent);
    return () => {
      closed = true;
      window.clearTimeout(refresh);
      source.close();
    };
  }, []);

  const history = usePoll<MarketHistoryOut>(async () => (await api.GET('/api/views/market', { params: { query: { limit: 300 } } })).data, 5000, [version]);
  const prices = history?.points.filter((p) => p.price_per_cu_hour).map((p) => ({ x: p.time, y: Number(BigInt(p.price_per_cu_hour!) / 10n ** 12n) / 1e6 })) ?? [];
  const utilisation = history?.points.map((p) => ({ x: p.time, y: p.utilisation * 100 })) ?? [];

  return (
    <div className="page">
      <section className="card" aria-labelledby="summary-heading">
        <h2 id="summary-heading">Market</h2>
        <div className="stats">
          <div className="stat"><span className="stat-label">Matches</span><span className="stat-value" data-testid="matched-count">{history?.matched ?? '…'}</span></div>
          <div className="stat"><span className="stat-label">Settled</span><span className="stat-value">{history?.settled ?? '…'}</span></div>
          <div className="stat"><span className="stat-label">Compute volume</span><span className="stat-value">{history ? `${formatTokens(history.volume)} ${TOKEN}` : '…'}</span></div>
          <div className="stat"><span className="stat-label">Utilisation now</span><span className="stat-value">{history?.points.length ? `${(history.points[history.points.length - 1].utilisation * 100).toFixed(1)}%` : '…'}</span></div>
        </div>
      </section>
      <div className="two-col">
        <section className="card" aria-labelledby="price-heading">
          <h2 id="price-heading">Price per CU-hour of each match</h2>
          <LineChart points={prices} title="Matched price per CU-hour" format={(y) => `${y.toFixed(3)} ${TOKEN}`} />
        </section>
        <section className="card" aria-labelledby="util-heading">
          <h2 id="util-heading">Compute reserved by live deals</h2>
          <LineChart points={utilisation} title="Utilisation of registered compute" format={(y) => `${y.toFixed(1)}%`} step colour="var(--ok)" yMin={0} />
        </section>
      </div>
      <section className="card" aria-labelledby="feed-heading">
        <div className="card-head">
          <h2 id="feed-heading">Live feed</h2>
          <span className={`live ${live}`} data-testid="feed-state">{live === 'live' ? '● live' : live}</span>
        </div>
        {events.length === 0 ? (
          <p className="muted">Nothing has happened on chain yet.</p>
        ) : (
          <ol className="feed" aria-live="polite" data-testid="feed">
            {events.map((e) => (
              <li key={e.id} className={KIND[e.name] ?? ''}>
                <span className="feed-name">{e.name}</span>
                <span>{describe(e as { name: string; args: Args }, nameOf)}</span>
                <span className="muted feed-block">block {e.block_number}</span>
              </li>
            ))}
          </ol>
        )}
      </section>
    </div>
  );
}
