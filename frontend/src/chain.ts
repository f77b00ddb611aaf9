// The wallet side: a browser wallet (EIP-1193, found by EIP-6963), or on the local chain a development key.
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  custom,
  defineChain,
  getAddress,
  hashTypedData,
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
import type { AnnouncedWallet, Eip1193Provider } from './wallets';

export const DEV_CHAIN_ID = 31337;

/** The one signer every action goes through: order signing (signTypedData) and deal calls (writeContract). */
export interface Wallet {
  address: Address;
  label: string;
  /** What the account menu selects: the development account's address, or `eip6963:<uuid>`. */
  source: string;
  kind: 'development' | 'browser';
  /** The browser wallet's provider, to follow its account changes. */
  provider?: Eip1193Provider;
  client: WalletClient;
  account: Account | Address;
}

export const DEV_KEY_LABEL = 'development key (local chain only)';

export function chainOf(d: DeploymentOut) {
  return defineChain({
    id: d.chain_id,
    name: d.chain_id === DEV_CHAIN_ID ? 'Local Anvil' : `Chain ${d.chain_id}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [d.rpc_url] } },
  });
}

const publicClients = new Map<string, PublicClient>();

/** One public client per RPC URL (reads, simulations, receipts and logs go straight to the chain). */
export function publicClientFor(d: DeploymentOut): PublicClient {
  let client = publicClients.get(d.rpc_url);
  if (!client) {
    client = createPublicClient({ chain: chainOf(d), transport: http(d.rpc_url), pollingInterval: 500 });
    publicClients.set(d.rpc_url, client);
  }
  return client;
}

/** A development account: on chain 31337 only, the backend hands out Anvil's well-known keys. */
export function devWallet(d: DeploymentOut, a: AccountOut): Wallet {
  if (d.chain_id !== DEV_CHAIN_ID || !a.private_key) {
    throw new Error(`no key for ${a.name}: development keys exist only on the local chain (${DEV_CHAIN_ID})`);
  }
  const account = privateKeyToAccount(a.private_key as Hex);
  return {
    address: account.address,
    label: `${a.name}: ${DEV_KEY_LABEL}`,
    source: account.address,
    kind: 'development',
    account,
    client: createWalletClient({ account, chain: chainOf(d), transport: http(d.rpc_url) }),
  };
}

/** Connects a browser wallet found by EIP-6963: asks for its accounts (eth_requestAccounts), and asks it to
 *  switch to the deployment's chain (adding it if the wallet does not know it) when it is on another. */
export async function connectWallet(d: DeploymentOut, found: AnnouncedWallet): Promise<Wallet> {
  const { provider, info } = found;
  const accounts = (await provider.request({ method: 'eth_requestAccounts' })) as Address[];
  if (!accounts?.length) throw new Error(`${info.name} shared no account with this page`);
  const want = `0x${d.chain_id.toString(16)}`;
  const current = String(await provider.request({ method: 'eth_chainId' }));
  if (Number(current) !== d.chain_id) {
    try {
      await provider.request({ method: 'wallet_switchEthereumChain', params: [{ chainId: want }] });
    } catch (e) {
      if ((e as { code?: number }).code !== 4902) {
        throw new Error(`${info.name} is on chain ${Number(current)}; switch it to chain ${d.chain_id} (${d.rpc_url})`);
      }
      await provider.request({
        method: 'wallet_addEthereumChain',
        params: [{ chainId: want, chainName: chainOf(d).name, rpcUrls: [d.rpc_url], nativeCurrency: chainOf(d).nativeCurrency }],
      });
    }
  }
  const address = getAddress(accounts[0]);
  return {
    address,
    label: `${info.name} ${address.slice(0, 6)}…${address.slice(-4)}`,
    source: `eip6963:${info.uuid}`,
    kind: 'browser',
    provider,
    account: address,
    client: createWalletClient({ account: address, chain: chainOf(d), transport: custom(provider) }),
  };
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

/** The API's EIP-712 typed data (big numbers as decimal strings) as viem takes it. */
function typedDataOf(typed: Record<string, unknown>) {
  const types = { ...(typed.types as Record<string, { name: string; type: string }[]>) };
  delete types.EIP712Domain;
  const primaryType = typed.primaryType as string;
  const message: Record<string, unknown> = { ...(typed.message as Record<string, unknown>) };
  for (const { name, type } of types[primaryType]) {
    if (/^u?int\d*$/.test(type)) message[name] = BigInt(message[name] as string | number);
  }
  const domain = { ...(typed.domain as Record<string, unknown>) };
  if (domain.chainId !== undefined) domain.chainId = BigInt(domain.chainId as number);
  return { domain, types, primaryType, message } as never;
}

/** The API's EIP-712 typed data signed by the wallet. */
export async function signTypedOrder(wallet: Wallet, typed: Record<string, unknown>): Promise<Hex> {
  return wallet.client.signTypedData({ account: wallet.account, ...(typedDataOf(typed) as object) } as never);
}

/** The typed order's EIP-712 digest: the Market's id of the order. */
export function typedOrderId(typed: Record<string, unknown>): Hex {
  return hashTypedData(typedDataOf(typed));
}

