// The arbiter's desk: every deal in dispute, read from the chain (Disputed events, statusOf, arbiterOf), and
// for those drawn to the connected account the ruling, sent with its own signer (IMarket.resolve).
import { useState } from 'react';
import type { Hex } from 'viem';
import { TxStatus } from '../components/TxStatus';
import { openDisputes, type OpenDispute } from '../deals';
import { formatDeadline, formatTokens, shortAddress, TOKEN } from '../format';
import { usePoll, useShared, useTx } from '../state';

export function ArbiterPage() {
  const { deployment, wallet, chainVersion } = useShared();
  const disputes = usePoll<OpenDispute[]>(() => openDisputes(deployment), 2000, [deployment, chainVersion]);
  const me = wallet?.address.toLowerCase();
  // A dispute ruled here stays on the page after the chain closes it, with the ruling's outcome.
  const [ruling, setRuling] = useState<OpenDispute[]>([]);
  const open = disputes?.filter((x) => x.arbiter?.toLowerCase() === me) ?? [];
  const mine = [...open, ...ruling.filter((r) => !open.some((x) => x.id === r.id))];
  const others = disputes?.filter((x) => x.arbiter?.toLowerCase() !== me) ?? [];

  return (
    <div className="page">
      <section className="card" aria-labelledby="drawn-heading">
        <h2 id="drawn-heading">Disputes drawn to you</h2>
        <p className="hint">
          The chain draws one arbiter per dispute from the ARBITER members who have no part in the deal, from the hash
          of a block mined after it (a new draw every 256 blocks). Seller wins: the deal is paid out and the buyer’s
          bond goes to the seller. Buyer wins: compute and platform fees are refunded with the bond; transit is paid.
        </p>
        {!wallet ? (
          <p className="muted">Choose an account to see the disputes drawn to it.</p>
        ) : disputes === undefined ? (
          <p className="muted">Reading the disputes from the chain…</p>
        ) : mine.length === 0 ? (
          <p className="muted" data-testid="no-disputes">No open dispute is drawn to {shortAddress(wallet.address)}.</p>
        ) : (
          <div className="orders">
            {mine.map((x) => (
              <Ruling key={x.id} dispute={x} open={open.includes(x)} onRule={() => setRuling((r) => [...r.filter((y) => y.id !== x.id), x])} />
            ))}
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="other-disputes-heading">
        <h2 id="other-disputes-heading">Other open disputes</h2>
        {others.length === 0 ? (
          <p className="muted">None.</p>
        ) : (
          <div className="table-wrap">
            <table data-testid="other-disputes">
              <thead><tr><th scope="col">Deal</th><th scope="col">Bond</th><th scope="col">Rule by</th><th scope="col">Arbiter</th></tr></thead>
              <tbody>
                {others.map((x) => (
                  <tr key={x.id}>
                    <td><code>{x.id.slice(0, 10)}…</code></td>
                    <td className="num">{formatTokens(x.bond, 6)} {TOKEN}</td>
                    <td>{formatDeadline(x.deadline)}</td>
                    <td>{x.arbiter ? shortAddress(x.arbiter) : 'not drawn yet (from the next block)'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

function Ruling({ dispute: x, open, onRule }: { dispute: OpenDispute; open: boolean; onRule: () => void }) {
  const { nameOf } = useShared();
  const tx = useTx();
  const busy = tx.state.kind === 'pending';
  const rule = (sellerWins: boolean) => {
    onRule();
    return tx.send(
      [{ contract: 'Market', fn: 'resolve', args: [x.id, x.deal as Hex, sellerWins], label: sellerWins ? 'Seller wins' : 'Buyer wins' }],
      sellerWins
        ? 'Ruled for the seller: the deal is paid out and the bond goes to the seller.'
        : 'Ruled for the buyer: compute and platform fees refunded with the bond; transit paid.',
    );
  };
  return (
    <article className="order" data-testid={`dispute-${x.id}`} aria-label={`dispute ${x.id.slice(0, 10)}`}>
      <header className="order-head"><code>{x.id.slice(0, 10)}…</code><span className={`pill ${open ? 'disputed' : 'settled'}`}>{open ? 'disputed' : 'ruled'}</span></header>
      <dl className="facts">
        <dt>Buyer</dt><dd>{nameOf(x.buyer)}</dd>
        <dt>Seller</dt><dd>{nameOf(x.seller)}</dd>
        <dt>Deal total</dt><dd>{formatTokens(x.total, 6)} {TOKEN}</dd>
        <dt>Buyer’s bond</dt><dd>{formatTokens(x.bond, 6)} {TOKEN}</dd>
        <dt>Result</dt><dd>{x.resultCid ? <a href={`/api/content/${x.resultCid}`}><code>{x.resultCid}</code></a> : 'none recorded'}</dd>
        <dt>Rule by</dt><dd>{formatDeadline(x.deadline)} (then it splits half and half)</dd>
      </dl>
      <div className="actions">
        {open && (
          <>
            <button type="button" disabled={busy} onClick={() => void rule(false)}>Buyer wins</button>
            <button type="button" className="secondary" disabled={busy} onClick={() => void rule(true)}>Seller wins</button>
          </>
        )}
        <TxStatus state={tx.state} testId="ruling-status" />
      </div>
    </article>
  );
}
