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
  type PublicClient,
  type WalletClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { AccountOut, DeploymentOut } from './api/client';

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
export function describeError(error: unknown, explain: Record<string, string> = {}): string {
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

/** Simulates first (so a revert is decoded before anything is signed), then sends and waits. */
export async function sendContractTx(
  d: DeploymentOut,
  wallet: Wallet,
  contract: string,
  functionName: string,
  args: readonly unknown[],
  onPending?: (hash: Hash) => void,
) {
  const target = d.contracts[contract];
  if (!target) throw new Error(`the deployment has no ${contract} contract`);
  const abi = target.abi as unknown as Abi;
  const pub = publicClientFor(d);
  const { request } = await pub.simulateContract({
    address: target.address as Address,
    abi,
    functionName,
    args,
    account: wallet.account,
  });
  const hash = await wallet.client.writeContract(request);
  onPending?.(hash);
  const receipt = await pub.waitForTransactionReceipt({ hash });
  if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`);
  return receipt;
}
