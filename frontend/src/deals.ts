// A deal as the Market takes it, read from the chain itself (not from the service): its packed bytes from
// its Matched event, its status and deadline (statusOf), the dispute terms (Market's public immutables),
// and the open disputes with the arbiter drawn for each (arbiterOf).
import { getAddress, hexToBigInt, slice, type Abi, type Address, type Hex } from 'viem';
import type { DeploymentOut } from './api/client';
import { contractAddress, publicClientFor, readContract } from './chain';

/** IMarketTypes.Status, in its order. */
export const STATUS = ['none', 'posted', 'proposed', 'accepted', 'started', 'completed', 'disputed', 'settled', 'refunded', 'cancelled'] as const;
export type ChainStatus = (typeof STATUS)[number];

function market(d: DeploymentOut) {
  return { address: contractAddress(d, 'Market'), abi: d.contracts.Market.abi as unknown as Abi };
}

/** The deal's `deal` bytes from its Matched event: what every later call passes back verbatim. */
export async function dealBytes(d: DeploymentOut, id: Hex): Promise<Hex> {
  const logs = await publicClientFor(d).getContractEvents({
    ...market(d),
    eventName: 'Matched',
    args: { id },
    fromBlock: BigInt(d.deployed_block),
    strict: true,
  });
  const deal = (logs[0]?.args as { deal?: Hex } | undefined)?.deal;
  if (!deal) throw new Error(`no Matched event for deal ${id.slice(0, 10)}… on chain yet`);
  return deal;
}

/** The parties of a packed deal (IMarketTypes' Matched event: big-endian, buyer at byte 0, seller at 20,
 *  the valueless flag at 128). Its total comes from the Market's own `dealTotal`. */
export function dealParties(deal: Hex) {
  return {
    buyer: getAddress(slice(deal, 0, 20)),
    seller: getAddress(slice(deal, 20, 40)),
    valueless: hexToBigInt(slice(deal, 128, 129)) !== 0n,
  };
}

export async function statusOf(d: DeploymentOut, id: Hex): Promise<{ status: ChainStatus; deadline: number }> {
  const [status, deadline] = await readContract<[number, number]>(d, 'Market', 'statusOf', [id]);
  return { status: STATUS[Number(status)] ?? 'none', deadline: Number(deadline) };
}

export interface DisputeTerms {
  /** The buyer's bond, in basis points of the deal's total (none for a stage-1 deal, which moves no tokens). */
  bondBps: number;
  /** Seconds after completion during which the buyer may dispute. */
  disputeWindow: number;
  /** Seconds the drawn arbiter has to rule. */
  arbitrationPeriod: number;
}

const terms = new Map<string, Promise<DisputeTerms>>();

/** The Market's dispute terms (immutable: read once per deployment). */
export function disputeTerms(d: DeploymentOut): Promise<DisputeTerms> {
  const key = contractAddress(d, 'Market');
  let found = terms.get(key);
  if (!found) {
    found = Promise.all([
      readContract<number>(d, 'Market', 'disputeBondBps'),
      readContract<number>(d, 'Market', 'disputeWindow'),
      readContract<number>(d, 'Market', 'arbitrationPeriod'),
    ]).then(([bondBps, disputeWindow, arbitrationPeriod]) => ({
      bondBps: Number(bondBps),
      disputeWindow: Number(disputeWindow),
      arbitrationPeriod: Number(arbitrationPeriod),
    }));
    found.catch(() => terms.delete(key));
    terms.set(key, found);
  }
  return found;
}

/** The bond a dispute of a deal with this total posts: as IMarket.dispute computes it (rounded down). */
export function disputeBond(total: bigint, bondBps: number, valueless: boolean): bigint {
  return valueless ? 0n : (total * BigInt(bondBps)) / 10_000n;
}

export interface OpenDispute {
  id: Hex;
  deal: Hex;
  buyer: Address;
  seller: Address;
  total: bigint;
  bond: bigint;
  /** The arbitration deadline (unix seconds): after it anyone may time the dispute out (half and half). */
  deadline: number;
  /** The arbiter drawn now, or null before the block after the dispute (or when none is eligible). */
  arbiter: Address | null;
  resultCid: string | null;
}

const ZERO = '0x0000000000000000000000000000000000000000';

/** Every deal still in dispute, from the Disputed events since the deployment, with its drawn arbiter. */
export async function openDisputes(d: DeploymentOut): Promise<OpenDispute[]> {
  const client = publicClientFor(d);
  const fromBlock = BigInt(d.deployed_block);
  const disputed = await client.getContractEvents({ ...market(d), eventName: 'Disputed', fromBlock, strict: true });
  const out = await Promise.all(
    disputed.map(async (log) => {
      const { id, bond } = log.args as { id: Hex; bond: bigint };
      const now = await statusOf(d, id);
      if (now.status !== 'disputed') return null;
      const deal = await dealBytes(d, id);
      const [arbiter, total, completed] = await Promise.all([
        readContract<Address>(d, 'Market', 'arbiterOf', [id, deal]),
        readContract<bigint>(d, 'Market', 'dealTotal', [deal]),
        client.getContractEvents({ ...market(d), eventName: 'Completed', args: { id }, fromBlock, strict: true }),
      ]);
      const parties = dealParties(deal);
      return {
        id,
        deal,
        buyer: parties.buyer,
        seller: parties.seller,
        total,
        bond,
        deadline: now.deadline,
        arbiter: arbiter === ZERO ? null : arbiter,
        resultCid: (completed[0]?.args as { resultCid?: string } | undefined)?.resultCid ?? null,
      } satisfies OpenDispute;
    }),
  );
  return out.filter((x): x is OpenDispute => x !== null);
}

// The orders this browser signed, kept so that one not yet matched can be cancelled on chain
// (IMarket.cancelOrder takes the whole order; the service's order view does not carry it).
const SIGNED_KEY = 'suanwang:signed-order:';

export function rememberSignedOrder(id: string, order: Record<string, unknown>): void {
  try {
    window.localStorage.setItem(SIGNED_KEY + id.toLowerCase(), JSON.stringify(order));
  } catch {
    // storage full or disabled: the order can still be voided with "void all" (cancelAllOrders)
  }
}

/** The order as IMarket.cancelOrder takes it (integers as bigints), if this browser signed it. */
export function signedOrder(id: string): Record<string, unknown> | null {
  const text = window.localStorage.getItem(SIGNED_KEY + id.toLowerCase());
  if (!text) return null;
  const order = JSON.parse(text) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(order)) {
    out[k] = typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v)) ? BigInt(v) : v;
  }
  return out;
}
