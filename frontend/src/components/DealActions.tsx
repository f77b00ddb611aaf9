// What the buyer may do with an order's deal now, each call sent with the buyer's own signer straight to the
// Market: accept or reject a proposed bill, settle a completed deal at once or dispute it within the window,
// time out a dispute no arbiter ruled, cancel an order not yet matched.
import { useEffect, useState, type ReactElement } from 'react';
import type { Hex } from 'viem';
import type { OrderOut } from '../api/client';
import { describeError } from '../chain';
import { dealBytes, disputeBond, disputeTerms, signedOrder, type DisputeTerms } from '../deals';
import { formatDeadline, formatTokens, TOKEN } from '../format';
import { useShared, useTx } from '../state';
import { TxStatus } from './TxStatus';

type DealCall = 'accept' | 'reject' | 'settle' | 'dispute' | 'timeout';

/** Seconds since the epoch, refreshed every few seconds so deadline-bound buttons come and go. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now() / 1000), 5000);
    return () => window.clearInterval(timer);
  }, []);
  return now;
}

export function DealActions({ order: o }: { order: OrderOut }) {
  const { deployment, wallet } = useShared();
  const tx = useTx();
  const now = useNow();
  const [terms, setTerms] = useState<DisputeTerms | null>(null);
  useEffect(() => {
    disputeTerms(deployment).then(setTerms, () => setTerms(null));
  }, [deployment]);

  if (!wallet || wallet.address.toLowerCase() !== o.buyer.toLowerCase()) return null;
  const status = o.deal?.status;
  const deadline = o.deal?.deadline ?? 0;
  const total = (o.bill as { total?: string } | null)?.total;
  const bond = terms && total ? disputeBond(BigInt(total), terms.bondBps, o.deal?.valueless ?? false) : null;
  const busy = tx.state.kind === 'pending';

  /** A deal call: the deal's bytes from its Matched event on chain, then the call with the buyer's signer. */
  async function call(fn: DealCall, label: string, done: string) {
    let deal: Hex;
    try {
      tx.setState({ kind: 'pending', text: `${label}: reading the deal from the chain…` });
      deal = await dealBytes(deployment, o.id as Hex);
    } catch (e) {
      tx.setState({ kind: 'error', text: `Not sent: ${describeError(e)}` });
      return;
    }
    await tx.send([{ contract: 'Market', fn, args: [o.id, deal], label }], done);
  }

  async function cancel() {
    const signed = signedOrder(o.id);
    if (!signed) return;
    await tx.send(
      [{ contract: 'Market', fn: 'cancelOrder', args: [signed, 0n], label: 'Cancel' }],
      'Cancelled: no matcher can use this order any more.',
    );
  }

  const buttons: ReactElement[] = [];
  const hints: string[] = [];
  if (status === 'proposed') {
    buttons.push(
      <button key="accept" type="button" disabled={busy} onClick={() => void call('accept', 'Accept', 'Bill accepted: the seller may start the job.')}>Accept bill</button>,
      <button key="reject" type="button" className="secondary" disabled={busy} onClick={() => void call('reject', 'Reject', 'Bill rejected: the whole amount is back in your escrow.')}>Reject bill</button>,
    );
    hints.push(`Accept or reject by ${formatDeadline(deadline)}; after that the bill lapses and you are refunded.`);
  } else if (status === 'completed' && now <= deadline) {
    const bondText = bond === null ? '…' : `${formatTokens(bond, 6)} ${TOKEN}`;
    buttons.push(
      <button key="settle" type="button" className="go" disabled={busy} onClick={() => void call('settle', 'Settle', 'Settled: the seller and the operators are paid for the time used; the rest is back in your escrow.')}>Settle now</button>,
      <button key="dispute" type="button" className="secondary" disabled={busy} onClick={() => void call('dispute', 'Dispute', `Disputed with a bond of ${bondText} from your escrow: an arbiter is drawn from the next block and rules; you lose the bond if the seller wins.`)}>Dispute (bond {bondText})</button>,
    );
    hints.push(
      `Settle now: confirm the result and pay now. Or dispute until ${formatDeadline(deadline)}` +
        (terms ? `, posting a bond of ${terms.bondBps / 100}% of the deal's total from your escrow` : '') +
        `${o.deal?.valueless ? ' (none in stage 1)' : ''}. Otherwise it settles by itself after that.`,
    );
  } else if (status === 'disputed') {
    if (now > deadline) {
      buttons.push(
        <button key="timeout" type="button" className="secondary" disabled={busy} onClick={() => void call('timeout', 'Close dispute', 'No arbiter ruled: the time used is split half and half and your bond is back.')}>Close dispute (no ruling)</button>,
      );
    }
    hints.push(`In dispute: the arbiter the chain drew rules by ${formatDeadline(deadline)}; if none does, the time used is split half and half and your bond comes back.`);
  } else if (!o.deal && o.state !== 'on_chain' && tx.state.kind !== 'done' && signedOrder(o.id)) {
    buttons.push(
      <button key="cancel" type="button" className="secondary" disabled={busy} onClick={() => void cancel()}>Cancel order</button>,
    );
    hints.push('Not matched: cancelling voids your signature on chain, so no matcher can use it later.');
  }
  if (buttons.length === 0 && tx.state.kind === 'idle') return null;
  return (
    <div className="deal-actions" data-testid="deal-actions">
      {hints.map((h) => <p key={h} className="hint">{h}</p>)}
      <div className="actions">
        {buttons}
        <TxStatus state={tx.state} testId="deal-status" />
      </div>
    </div>
  );
}
