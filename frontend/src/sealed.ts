// A party's keys and a buyer's sealed documents, with its own wallet (docs/content.md, "Privacy"): a
// seller's node key and a buyer's result key (each derived from one personal_sign), the job specification
// sealed to the quoted nodes, and results fetched with signed requests and opened in the browser. No private
// key derived here leaves the page.
import type { Candidate } from './api/client';
import type { Wallet } from './chain';
import {
  deriveKeyPair,
  NODE_KEY_TEXT,
  NotRecipientError,
  openEnvelope,
  parseEnvelope,
  parsePublicKey,
  RESULT_KEY_TEXT,
  sealSpec,
  sha256Hex,
  toBase64,
  type KeyPair,
} from './privacy';

function sign(wallet: Wallet): (message: string) => Promise<string> {
  return (message) => wallet.client.signMessage({ account: wallet.account, message });
}

const resultKeys = new Map<string, Promise<KeyPair>>();

/** The wallet's result key pair on `chainId`: one signature per page load, then kept in memory. */
export function resultKeyOf(wallet: Wallet, chainId: number): Promise<KeyPair> {
  const id = `${chainId}:${wallet.address.toLowerCase()}`;
  let found = resultKeys.get(id);
  if (!found) {
    found = deriveKeyPair(sign(wallet), RESULT_KEY_TEXT, chainId);
    found.catch(() => resultKeys.delete(id));
    resultKeys.set(id, found);
  }
  return found;
}

/** The seller's node key pair on `chainId` (its public key is each of its nodes' encryptionKey): the key its
 *  provider agent derives from the same account. */
export function nodeKeyOf(wallet: Wallet, chainId: number): Promise<KeyPair> {
  return deriveKeyPair(sign(wallet), NODE_KEY_TEXT, chainId);
}

export interface SealedSpec {
  /** The envelope as the order's `job.envelope` carries it (base64). */
  envelope: string;
  /** sha2-256 of the envelope's bytes: the order's specDigest. */
  specDigest: `0x${string}`;
  /** The nodes it is sealed to (the quote's candidates with an encryption key). */
  nodes: number[];
}

/** `command` sealed to every quoted candidate that has an encryption key, and to the buyer's result key. */
export async function sealForQuote(wallet: Wallet, chainId: number, command: string[], candidates: Candidate[]): Promise<SealedSpec> {
  const nodes = candidates.flatMap((c) => {
    const key = c.sealable ? parsePublicKey(c.encryption_key) : null;
    return key ? [{ node: c.node_id, key }] : [];
  });
  if (nodes.length === 0) throw new Error('no quoted node has an encryption key, so none could read the sealed job: not placed');
  const envelope = await sealSpec(command, await resultKeyOf(wallet, chainId), nodes);
  return { envelope: toBase64(envelope), specDigest: await sha256Hex(envelope), nodes: nodes.map((n) => n.node) };
}

/** GET /api/content/{cid} as a request signed by the wallet (EIP-191 over "suanwang content <cid> <signedAt>"). */
export async function fetchSigned(wallet: Wallet, cid: string): Promise<Uint8Array> {
  // The output's CID comes from a document the provider wrote: only a CID's own characters go into the URL.
  if (!/^[A-Za-z0-9]{1,200}$/.test(cid)) throw new Error(`not a content id: ${JSON.stringify(cid.slice(0, 80))}`);
  const signedAt = Math.floor(Date.now() / 1000);
  const signature = await sign(wallet)(`suanwang content ${cid} ${signedAt}`);
  const response = await fetch(`/api/content/${cid}`, {
    headers: { 'X-Suanwang-Address': wallet.address, 'X-Suanwang-Signed-At': String(signedAt), 'X-Suanwang-Signature': signature },
  });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = ((await response.json()) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not the API's error shape: the status text says enough
    }
    throw new Error(`${response.status} ${message}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/** Opens `envelope` with the buyer's result key; says so plainly when the wallet derived another key than the
 *  one the envelope is sealed to (a wallet that signs with random nonces). */
async function openAsBuyer(envelope: Uint8Array, key: KeyPair, what: string): Promise<Uint8Array> {
  try {
    return await openEnvelope(envelope, key);
  } catch (e) {
    if (e instanceof NotRecipientError && parseEnvelope(envelope).recipients.some((r) => 'role' in r)) {
      throw new Error(`${what} is sealed to another result key than the one this wallet derives now (${key.publicHex.slice(0, 12)}…): a wallet that signs with random nonces cannot open it`);
    }
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

/** What a job was given and used, as the provider's result document says (every field may be missing). */
export interface ResultDocument {
  deal?: string;
  exit_code?: number | null;
  reason?: string | null;
  given?: { cpus?: number; memory_mib?: number; gpus?: number; gpu_type?: string | null; shards?: number } | null;
  accounting?: {
    state?: string;
    exit_code?: number | null;
    signal?: number | null;
    elapsed_s?: number | null;
    cpu_time_s?: number | null;
    max_rss_bytes?: number | null;
    alloc_tres?: Record<string, number | string>;
    node?: string | null;
  } | null;
  stdout_tail?: string;
  stderr_tail?: string;
  output?: string;
  output_bytes?: number;
  output_truncated?: boolean;
}

export interface OpenedOrder {
  command: string[] | null;
  result: ResultDocument | null;
}

/** The buyer's own specification and (when there is one) its result, fetched and opened here. */
export async function openOrder(wallet: Wallet, chainId: number, specCid: string, resultCid: string | null): Promise<OpenedOrder> {
  const key = await resultKeyOf(wallet, chainId);
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const spec = JSON.parse(text(await openAsBuyer(await fetchSigned(wallet, specCid), key, 'the job specification'))) as { command?: string[] };
  const result = resultCid ? (JSON.parse(text(await openAsBuyer(await fetchSigned(wallet, resultCid), key, 'the result'))) as ResultDocument) : null;
  return { command: Array.isArray(spec.command) ? spec.command : null, result };
}

/** The job's output (the CID its result document names), opened with the buyer's result key. */
export async function openOutput(wallet: Wallet, chainId: number, outputCid: string): Promise<Uint8Array> {
  return openAsBuyer(await fetchSigned(wallet, outputCid), await resultKeyOf(wallet, chainId), 'the output');
}
