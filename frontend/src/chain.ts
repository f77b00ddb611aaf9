// The wallet side: a development account's key on the local chain, or an injected EIP-1193 wallet.
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  http,
  type Abi,
  type Account,
  type Address,
  type Hash,
  type Hex,
  type PublicClient,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { AccountOut, DeploymentOut } from './api/client';
import { CONTRACT_ERRORS } from './errors';

export const DEV_CHAIN_ID = 31337;

export interface Wallet {
  address: Address;
  label: string;
  client: WalletClient;
  account: Account | Address;
}

export function chainOf(d: DeploymentOut) {
  return defineChain({
    id: d.chain_id,
    name: d.chain_id === DEV_CHAIN_ID ? 'Local Anvil' : `Chain ${d.chain_id}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [d.rpc_url] } },
  });
}

export function publicClientFor(d: DeploymentOut): PublicClient {
  return createPublicClient({ chain: chainOf(d), transport: http(d.rpc_url) });
}

/** A development account: on chain 31337 the backend hands out Anvil's well-known keys. */
export function devWallet(d: DeploymentOut, a: AccountOut): Wallet {
  if (!a.private_key) throw new Error(`no key for ${a.name}: development accounts exist only on chain ${DEV_CHAIN_ID}`);
  const account = privateKeyToAccount(a.private_key as `0x${string}`);
  return {
    address: account.address,
    label: a.name,
    account,
    client: createWalletClient({ account, chain: chainOf(d), transport: http(d.rpc_url) }),
  };
}

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/** An injected EIP-1193 wallet (a browser extension), if the page has one. */
export async function injectedWallet(d: DeploymentOut): Promise<Wallet> {
  const provider = (window as unknown as { ethereum?: Eip1193 }).ethereum;
  if (!provider) throw new Error('no injected wallet (window.ethereum) in this browser');
  const [address] = (await provider.request({ method: 'eth_requestAccounts' })) as Address[];
  const client = createWalletClient({ account: address, chain: chainOf(d), transport: custom(provider) });
  return { address, label: `Injected ${address.slice(0, 8)}…`, account: address, client };
}

/** A contract's custom error, in words: the name, its arguments, and what it means when we know. */
export function describeError(error: unknown, explain: Record<string, string> = CONTRACT_ERRORS): string {
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName) {
      const name = revert.data.errorName;
      const args = (revert.data.args ?? []).map((x) => String(x)).join(', ');
      const meaning = explain[name];
      return `${meaning ? meaning + ' ' : ''}(${name}${args ? `: ${args}` : ''})`;
    }
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A contract's ABI plus every other contract's custom errors, so a revert that bubbles up from a
 *  contract the call went through (Market -> NodeRegistry, Federation) is still decoded. */
function abiWithAllErrors(d: DeploymentOut, contract: string): Abi {
  const own = d.contracts[contract].abi as unknown as Abi;
  const seen = new Set(own.filter((f) => f.type === 'error').map((f) => (f as { name: string }).name));
  const extra: Abi[number][] = [];
  for (const c of Object.values(d.contracts)) {
    for (const f of c.abi as unknown as Abi) {
      if (f.type === 'error' && !seen.has(f.name)) {
        seen.add(f.name);
        extra.push(f);
      }
    }
  }
  return [...own, ...extra];
}

export function contractAddress(d: DeploymentOut, contract: string): Address {
  const target = d.contracts[contract];
  if (!target) throw new Error(`the deployment has no ${contract} contract`);
  return target.address as Address;
}

/** Reads a view function. */
export async function readContract<T>(d: DeploymentOut, contract: string, functionName: string, args: readonly unknown[] = []) {
  return (await publicClientFor(d).readContract({
    address: contractAddress(d, contract),
    abi: d.contracts[contract].abi as unknown as Abi,
    functionName,
    args,
  })) as T;
}

/** Simulates first (so a revert is decoded before anything is signed), then sends and waits. */
export async function sendContractTx(
  d: DeploymentOut,
  wallet: Wallet,
  contract: string,
  functionName: string,
  args: readonly unknown[],
  onPending?: (hash: Hash) => void,
) {
  const address = contractAddress(d, contract);
  const abi = abiWithAllErrors(d, contract);
  const pub = publicClientFor(d);
  const { request } = await pub.simulateContract({ address, abi, functionName, args, account: wallet.account });
  const hash = await wallet.client.writeContract(request);
  onPending?.(hash);
  const receipt = await pub.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
  return receipt;
}

/** The API's EIP-712 typed data (big numbers as decimal strings) signed by the wallet. */
export async function signTypedOrder(wallet: Wallet, typed: Record<string, unknown>): Promise<Hex> {
  const types = { ...(typed.types as Record<string, { name: string; type: string }[]>) };
  delete types.EIP712Domain;
  const primaryType = typed.primaryType as string;
  const message: Record<string, unknown> = { ...(typed.message as Record<string, unknown>) };
  for (const { name, type } of types[primaryType]) {
    if (/^u?int\d*$/.test(type)) message[name] = BigInt(message[name] as string | number);
  }
  const domain = { ...(typed.domain as Record<string, unknown>) };
  if (domain.chainId !== undefined) domain.chainId = BigInt(domain.chainId as number);
  return wallet.client.signTypedData({
    account: wallet.account,
    domain,
    types,
    primaryType,
    message,
  } as never);
}

