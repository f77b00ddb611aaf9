// Privacy in the browser (docs/content.md, "Privacy"): the same keys and envelopes as
// backend/suanwang/privacy, fixed by tests/fixtures/privacy/vectors.json (tests/browser/test_privacy_vectors.py
// runs them on this module in Chromium and in Node).
//
// - Keys: a party's X25519 private key is HKDF-SHA256 of its EIP-191 signature over a fixed text naming the
//   purpose and the chain, so the wallet alone recovers it. The buyer's is its result key.
// - Envelopes: the payload under a random AES-256-GCM key (associated data: the header, i.e. every
//   recipient), that key sealed to each recipient with HPKE base mode (RFC 9180, DHKEM(X25519, HKDF-SHA256),
//   HKDF-SHA256, AES-128-GCM). X25519 is Chromium's own WebCrypto (since Chromium 133), through @hpke/core.
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';

export const NODE_KEY_TEXT = 'Suanwang node encryption key v1';
export const RESULT_KEY_TEXT = 'Suanwang result key v1';
export const BUYER = 'buyer';
const VERSION = 1;
const SUITE = [0x0020, 0x0001, 0x0001] as const; // KEM, KDF, AEAD ids (RFC 9180 §7)
const INFO = new TextEncoder().encode('suanwang/envelope/v1');
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ENC_BYTES = 32;
const SEALED_KEY_BYTES = KEY_BYTES + TAG_BYTES;
const MAX_RECIPIENTS = 64;
const PUBLIC_KEY = /^0x[0-9a-fA-F]{64}$/;

const hpke = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes128Gcm() });

/** Why an envelope does not open, as the backend's suanwang.privacy.errors name it. */
export class EnvelopeError extends Error {}
/** Not a Suanwang envelope (not its JSON, another version or suite, a field missing or of the wrong size). */
export class NotEnvelopeError extends EnvelopeError {}
/** Sealed to other keys than the one offered. */
export class NotRecipientError extends EnvelopeError {}
/** It names this key but does not open: its bytes were changed, or the private key is not that public key's. */
export class DamagedEnvelopeError extends EnvelopeError {}

// -- bytes ------------------------------------------------------------------------------------------------

export function toHex(bytes: Uint8Array): `0x${string}` {
  return `0x${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export function fromHex(text: string): Uint8Array {
  const digits = text.startsWith('0x') ? text.slice(2) : text;
  if (digits.length % 2 || /[^0-9a-fA-F]/.test(digits)) throw new Error(`not hex: ${text.slice(0, 20)}`);
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** RFC 4648 §4 base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

export function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A view WebCrypto takes whatever the Uint8Array's buffer type (TypeScript 5.9 tells them apart). */
function buf(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

function random(size: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(size));
}

/** Python's `json.dumps(value, sort_keys=True, separators=(",", ":"))`: keys sorted, no spaces, and every
 *  character outside printable ASCII escaped as \uXXXX (lower-case hex, UTF-16 code units). */
export function canonical(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
    }
    return v;
  };
  return JSON.stringify(sorted(value)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const utf8 = (text: string) => new TextEncoder().encode(text);

export async function sha256Hex(bytes: Uint8Array): Promise<`0x${string}`> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', buf(bytes))));
}

// -- keys -------------------------------------------------------------------------------------------------

export interface KeyPair {
  /** 32 bytes as HKDF gave them (X25519 clamps them when it uses them). */
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  /** The public key as the chain and the documents carry it: 0x and 64 hex digits. */
  publicHex: `0x${string}`;
}

/** The exact text a party signs to derive its key for `purpose` on chain `chainId`. */
export function keyMessage(purpose: string, chainId: number): string {
  return `${purpose}\nchain ${chainId}`;
}

async function privateCryptoKey(privateKey: Uint8Array): Promise<CryptoKey> {
  return hpke.kem.importKey('raw', buf(privateKey), false);
}

/** The key pair derived from a 65-byte EIP-191 `signature` (0x-hex) over `message`. */
export async function keyPairFromSignature(signature: string, message: string): Promise<KeyPair> {
  const sig = fromHex(signature);
  if (sig.length !== 65) throw new Error(`a key is derived from a 65-byte signature (r, s, v); this one has ${sig.length} bytes`);
  if (sig[64] < 27) sig[64] += 27; // a wallet answering v as 0 or 1: one key whatever the wallet
  const ikm = await crypto.subtle.importKey('raw', buf(sig), 'HKDF', false, ['deriveBits']);
  const bits = await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: utf8(message) }, ikm, KEY_BYTES * 8);
  const privateKey = new Uint8Array(bits);
  // The public key: X25519(private, 9), read from the private key's JWK (`x`).
  const jwk = await crypto.subtle.exportKey('jwk', await privateCryptoKey(privateKey));
  const publicKey = fromBase64((jwk.x ?? '').replace(/-/g, '+').replace(/_/g, '/').padEnd(44, '='));
  if (publicKey.length !== KEY_BYTES) throw new Error('this browser did not give the X25519 public key');
  return { privateKey, publicKey, publicHex: toHex(publicKey) };
}

/** The key pair of the signer behind `sign` (a wallet's personal_sign) for `purpose` on `chainId`. */
export async function deriveKeyPair(sign: (message: string) => Promise<string>, purpose: string, chainId: number): Promise<KeyPair> {
  const message = keyMessage(purpose, chainId);
  return keyPairFromSignature(await sign(message), message);
}

/** The 32 bytes of a 0x-hex X25519 public key; null for none (bytes32 zero: a node registered without a key). */
export function parsePublicKey(text: string | null | undefined): Uint8Array | null {
  if (!text || !PUBLIC_KEY.test(text)) return null;
  const key = fromHex(text);
  return key.some((b) => b !== 0) ? key : null;
}

// -- envelopes --------------------------------------------------------------------------------------------

/** Who an envelope is sealed to: a public key, and the chain node it is the key of, or the buyer. */
export type Recipient = { publicKey: Uint8Array; node: number } | { publicKey: Uint8Array; role: typeof BUYER };

interface Entry {
  enc: string;
  key: string;
  pk: string;
  node?: number;
  role?: string;
}

interface Header {
  v: number;
  suite: number[];
  recipients: Entry[];
  nonce: string;
}

/** `plaintext` sealed to every one of `recipients`, as envelope bytes (canonical JSON). */
export async function seal(plaintext: Uint8Array, recipients: Recipient[]): Promise<Uint8Array> {
  if (recipients.length === 0) throw new Error('an envelope needs at least one recipient');
  if (recipients.length > MAX_RECIPIENTS) throw new Error(`an envelope has at most ${MAX_RECIPIENTS} recipients`);
  const contentKey = random(KEY_BYTES);
  const nonce = random(NONCE_BYTES);
  const entries: Entry[] = [];
  for (const r of recipients) {
    const recipientPublicKey = await hpke.kem.importKey('raw', buf(r.publicKey), true);
    const sealed = await hpke.seal({ recipientPublicKey, info: buf(INFO) }, buf(contentKey));
    entries.push({
      pk: toHex(r.publicKey),
      enc: toBase64(new Uint8Array(sealed.enc)),
      key: toBase64(new Uint8Array(sealed.ct)),
      ...('node' in r ? { node: r.node } : { role: r.role }),
    });
  }
  const header: Header = { v: VERSION, suite: [...SUITE], recipients: entries, nonce: toBase64(nonce) };
  const aes = await crypto.subtle.importKey('raw', buf(contentKey), 'AES-GCM', false, ['encrypt']);
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: buf(nonce), additionalData: utf8(canonical(header)) }, aes, buf(plaintext));
  return utf8(canonical({ ...header, ct: toBase64(new Uint8Array(ct)) }));
}

function field(value: unknown, name: string, size?: number, atLeast = 0): Uint8Array {
  let data: Uint8Array | null = null;
  try {
    data = typeof value === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(value) ? fromBase64(value) : null;
  } catch {
    data = null;
  }
  if (!data || (size !== undefined && data.length !== size) || data.length < atLeast) {
    throw new NotEnvelopeError(`not a Suanwang envelope: its ${name} is not base64 of ${size !== undefined ? `${size} bytes` : `at least ${atLeast} bytes`}`);
  }
  return data;
}

/** The envelope's header and recipients; NotEnvelopeError saying what is missing or wrong. */
export function parseEnvelope(envelope: Uint8Array): { header: Header; recipients: Recipient[]; ciphertext: Uint8Array } {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(envelope)) as Record<string, unknown>;
  } catch (e) {
    throw new NotEnvelopeError(`not a Suanwang envelope: not JSON (${(e as Error).message})`);
  }
  const keys = doc && typeof doc === 'object' && !Array.isArray(doc) ? Object.keys(doc).sort().join() : '';
  if (keys !== 'ct,nonce,recipients,suite,v') {
    throw new NotEnvelopeError('not a Suanwang envelope: one JSON object with exactly v, suite, recipients, nonce and ct is expected');
  }
  if (doc.v !== VERSION || JSON.stringify(doc.suite) !== JSON.stringify(SUITE)) {
    throw new NotEnvelopeError(`not an envelope this version opens: v ${JSON.stringify(doc.v)}, suite ${JSON.stringify(doc.suite)} (expected v ${VERSION}, suite ${JSON.stringify(SUITE)})`);
  }
  const entries = doc.recipients;
  if (!Array.isArray(entries) || entries.length < 1 || entries.length > MAX_RECIPIENTS) {
    throw new NotEnvelopeError(`not a Suanwang envelope: recipients must be a list of 1 to ${MAX_RECIPIENTS}`);
  }
  const recipients = entries.map((e: Entry, i): Recipient => {
    const where = `recipient ${i}`;
    if (!e || typeof e !== 'object' || typeof e.pk !== 'string' || !PUBLIC_KEY.test(e.pk)) {
      throw new NotEnvelopeError(`not a Suanwang envelope: ${where}'s pk is not 0x and 64 hex`);
    }
    if (Object.keys(e).some((k) => !['pk', 'enc', 'key', 'node', 'role'].includes(k))) {
      throw new NotEnvelopeError(`not a Suanwang envelope: ${where} has unknown fields`);
    }
    field(e.enc, `${where}'s enc`, ENC_BYTES);
    field(e.key, `${where}'s key`, SEALED_KEY_BYTES);
    const publicKey = fromHex(e.pk);
    if (Number.isSafeInteger(e.node) && (e.node as number) >= 0 && e.role === undefined) return { publicKey, node: e.node as number };
    if (e.role === BUYER && e.node === undefined) return { publicKey, role: BUYER };
    throw new NotEnvelopeError(`not a Suanwang envelope: ${where} must name either a node (a chain node id) or the role '${BUYER}'`);
  });
  field(doc.nonce, 'nonce', NONCE_BYTES);
  const ciphertext = field(doc.ct, 'ct', undefined, TAG_BYTES);
  const header = { v: doc.v, suite: doc.suite, recipients: entries, nonce: doc.nonce } as Header;
  return { header, recipients, ciphertext };
}

/** The plaintext of `envelope` for the holder of `key`; NotEnvelopeError, NotRecipientError or
 *  DamagedEnvelopeError say why it does not open. */
export async function openEnvelope(envelope: Uint8Array, key: Pick<KeyPair, 'privateKey' | 'publicKey'>): Promise<Uint8Array> {
  const { header, recipients, ciphertext } = parseEnvelope(envelope);
  const mine = toHex(key.publicKey);
  const index = recipients.findIndex((r) => toHex(r.publicKey) === mine);
  if (index < 0) throw new NotRecipientError(`the envelope is not sealed to the key ${mine} (it is sealed to ${recipients.length} other key(s))`);
  const entry = header.recipients[index];
  let contentKey: ArrayBuffer;
  try {
    contentKey = await hpke.open({ recipientKey: await privateCryptoKey(key.privateKey), enc: buf(fromBase64(entry.enc)), info: buf(INFO) }, buf(fromBase64(entry.key)));
  } catch {
    throw new DamagedEnvelopeError(`the content key sealed to ${mine} does not open: the envelope was changed, or the private key is not this public key's`);
  }
  try {
    const aes = await crypto.subtle.importKey('raw', contentKey, 'AES-GCM', false, ['decrypt']);
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: buf(fromBase64(header.nonce)), additionalData: utf8(canonical(header)) }, aes, buf(ciphertext));
    return new Uint8Array(plain);
  } catch {
    throw new DamagedEnvelopeError("the envelope's payload does not open: its bytes or its header (the recipients) were changed");
  }
}

// -- an order's specification -----------------------------------------------------------------------------

/** The specification's plaintext, as backend/suanwang/privacy/documents.py writes it. */
export function specPlaintext(command: string[], resultKey: Uint8Array): Uint8Array {
  return utf8(canonical({ command: command.map(String), result_key: toHex(resultKey) }));
}

/** The specification of `command`, sealed to each candidate node's key and to the buyer's own result key
 *  (so the buyer can read back what it signed). */
export async function sealSpec(command: string[], resultKey: KeyPair, nodes: { node: number; key: Uint8Array }[]): Promise<Uint8Array> {
  return seal(specPlaintext(command, resultKey.publicKey), [
    ...nodes.map((n) => ({ publicKey: n.key, node: n.node })),
    { publicKey: resultKey.publicKey, role: BUYER },
  ]);
}
