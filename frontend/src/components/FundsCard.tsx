import { useState } from 'react';
import { api, type BalancesOut } from '../api/client';
import { contractAddress } from '../chain';
import { formatTokens, parseTokens, TOKEN } from '../format';
import { usePoll, useShared, useTx } from '../state';
import { TxStatus } from './TxStatus';

/** The chosen account's money: wallet tokens, the Market's escrow, stake; deposit, withdraw, stake, and
 *  unstake in two steps (request, then claim once the unstake delay has passed). */
export function FundsCard({ seller, title }: { seller: boolean; title: string }) {
  const shared = useShared();
  const { wallet, deployment, chainVersion } = shared;
  const [amount, setAmount] = useState('100');
  const [amountError, setAmountError] = useState<string | null>(null);
  const tx = useTx();
  const balances = usePoll<BalancesOut>(
    async () => {
      if (!wallet) return undefined;
      const { data } = await api.GET('/api/views/balances/{address}', { params: { path: { address: wallet.address } } });
      return data;
    },
    3000,
    [wallet?.address, chainVersion],
  );

  function parsed(): bigint | null {
    try {
      const value = parseTokens(amount);
      if (value === 0n) throw new Error('more than zero');
      setAmountError(null);
      return value;
    } catch (e) {
      setAmountError((e as Error).message);
      tx.setState({ kind: 'error', text: 'Fix the amount; nothing was signed.' });
      return null;
    }
  }

  async function deposit() {
    const value = parsed();
    if (value === null) return;
    const market = contractAddress(deployment, 'Market');
    const steps = [];
    if (!balances || BigInt(balances.allowance) < value) {
      steps.push({ contract: 'SettlementToken', fn: 'approve', args: [market, value], label: 'Approve' });
    }
    steps.push({ contract: 'Market', fn: 'deposit', args: [value], label: 'Deposit' });
    await tx.send(steps);
  }

  async function simple(fn: 'withdraw' | 'stake' | 'requestUnstake', label: string) {
    const value = parsed();
    if (value === null) return;
    await tx.send([{ contract: 'Market', fn, args: [value], label }]);
  }

  async function claim() {
    await tx.send([{ contract: 'Market', fn: 'claimUnstake', args: [], label: 'Claim unstaked' }]);
  }

  const unstaking = balances ? BigInt(balances.unstaking) : 0n;
  const readyAt = balances?.unstake_ready_at ?? 0;

  const stat = (label: string, value: string | undefined, id: string, hint?: string) => (
    <div className="stat">
      <span className="stat-label">{label}</span>
      <span className="stat-value" data-testid={id}>{value === undefined ? '…' : `${formatTokens(value)} ${TOKEN}`}</span>
      {hint && <span className="hint">{hint}</span>}
    </div>
  );

  return (
    <section className="card" aria-labelledby="funds-heading">
      <h2 id="funds-heading">{title}</h2>
      {!wallet ? (
        <p className="muted">Choose an account to see its balances.</p>
      ) : (
        <>
          <div className="stats">
            {stat('Wallet', balances?.token, 'balance-wallet', 'tokens you hold')}
            {stat('In escrow', balances?.escrow, 'balance-escrow', 'free to spend or withdraw')}
            {seller && stat('Staked', balances?.stake, 'balance-stake', balances ? `unlocked; your nodes need ${formatTokens(balances.required_stake)}, open deals lock more` : undefined)}
            {seller && unstaking > 0n && stat('Unstaking', balances?.unstaking, 'balance-unstaking', `claimable from ${new Date(readyAt * 1000).toLocaleString()}`)}
          </div>
          <div className="actions funds-actions">
            <div className="field">
              <label htmlFor="funds-amount">Amount ({TOKEN})</label>
              <input
                id="funds-amount"
                inputMode="decimal"
                value={amount}
                onChange={(e) => setAmount(e.target.value)}
                aria-invalid={amountError ? true : undefined}
                aria-describedby={amountError ? 'funds-amount-error' : undefined}
              />
              {amountError && <span id="funds-amount-error" className="field-error" role="alert">{amountError}</span>}
            </div>
            <button type="button" onClick={() => void deposit()} disabled={tx.state.kind === 'pending'}>Deposit</button>
            <button type="button" className="secondary" onClick={() => void simple('withdraw', 'Withdraw')} disabled={tx.state.kind === 'pending'}>Withdraw</button>
            {seller && (
              <>
                <button type="button" className="secondary" onClick={() => void simple('stake', 'Stake')} disabled={tx.state.kind === 'pending'}>Stake</button>
                <button type="button" className="secondary" onClick={() => void simple('requestUnstake', 'Request unstake')} disabled={tx.state.kind === 'pending'}>Request unstake</button>
                {unstaking > 0n && (
                  <button type="button" className="secondary" onClick={() => void claim()} disabled={tx.state.kind === 'pending'}>Claim unstaked</button>
                )}
              </>
            )}
          </div>
          <TxStatus state={tx.state} testId="funds-status" />
        </>
      )}
    </section>
  );
}
