// What every page shares: the deployment, the chosen wallet, members, the network and the device catalog.
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { Hash } from 'viem';
import type { DeploymentOut, DeviceOut, MemberOut, TopologyOut } from './api/client';
import { describeError, sendContractTx, type Wallet } from './chain';

export interface Shared {
  deployment: DeploymentOut;
  wallet: Wallet | null;
  members: MemberOut[];
  topology: TopologyOut | null;
  devices: DeviceOut[];
  /** A member's display name, or the short address. */
  nameOf: (address: string) => string;
  /** Bumped after each confirmed transaction, so views reload at once. */
  chainVersion: number;
  bumpChain: () => void;
}

export const SharedContext = createContext<Shared | null>(null);

export function useShared(): Shared {
  const value = useContext(SharedContext);
  if (!value) throw new Error('useShared outside the app');
  return value;
}

/** Calls `load` now and every `ms`, and again whenever `deps` change; drops answers that arrive late. */
export function usePoll<T>(load: () => Promise<T | undefined>, ms: number, deps: unknown[]): T | undefined {
  const [value, setValue] = useState<T | undefined>(undefined);
  const generation = useRef(0);
  useEffect(() => {
    const mine = ++generation.current;
    let stopped = false;
    const run = async () => {
      try {
        const v = await load();
        if (!stopped && mine === generation.current && v !== undefined) setValue(v);
      } catch {
        // transient (the API restarting, a rate limit): the next poll retries
      }
    };
    void run();
    const timer = window.setInterval(run, ms);
    return () => {
      stopped = true;
      window.clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return value;
}

export type TxState =
  | { kind: 'idle'; text: string }
  | { kind: 'pending'; text: string; hash?: Hash }
  | { kind: 'done'; text: string; hash?: Hash }
  | { kind: 'error'; text: string };

/** One transaction button's state: simulate, sign, pending (with the hash), confirmed in block N, or the
 *  decoded reason it was refused. */
export function useTx() {
  const shared = useShared();
  const [state, setState] = useState<TxState>({ kind: 'idle', text: '' });
  const send = useCallback(
    /** Sends `steps` in order with the chosen signer; `done` says what the confirmed calls did. */
    async (steps: { contract: string; fn: string; args: readonly unknown[]; label: string }[], done = '') => {
      const wallet = shared.wallet;
      if (!wallet) {
        setState({ kind: 'error', text: 'Choose an account first.' });
        return false;
      }
      try {
        let block = 0n;
        for (const step of steps) {
          setState({ kind: 'pending', text: `${step.label}: checking and signing…` });
          const receipt = await sendContractTx(shared.deployment, wallet, step.contract, step.fn, step.args, (hash) =>
            setState({ kind: 'pending', text: `${step.label}: pending (tx ${hash.slice(0, 10)}…)`, hash }),
          );
          block = receipt.blockNumber;
        }
        setState({ kind: 'done', text: `Confirmed in block ${block}.${done ? ` ${done}` : ''}` });
        shared.bumpChain();
        return true;
      } catch (e) {
        setState({ kind: 'error', text: `Refused: ${describeError(e)}` });
        return false;
      }
    },
    [shared],
  );
  return { state, setState, send };
}
