// IPv6 prefixes as the registry stores them: bytes16 plus a prefix length (PRODUCT.md shared data model).

export interface Prefix {
  bytes16: `0x${string}`;
  length: number;
}

/** Parses "fc00:1:2::/48"; throws an Error saying what is wrong. */
export function parsePrefix(text: string): Prefix {
  const [addr, len = '48'] = text.trim().split('/');
  const length = Number(len);
  if (!Number.isInteger(length) || length < 1 || length > 128) throw new Error(`prefix length must be 1..128, not "${len}"`);
  const halves = addr.split('::');
  if (halves.length > 2) throw new Error('"::" may appear only once');
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  const head = parse(halves[0]);
  const tail = halves.length === 2 ? parse(halves[1]) : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || missing < 0) throw new Error('an IPv6 address has 8 groups');
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  const hex = groups
    .map((g) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new Error(`"${g}" is not a hex group of 1 to 4 digits`);
      return g.padStart(4, '0').toLowerCase();
    })
    .join('');
  return { bytes16: `0x${hex}`, length };
}

/** A stored "0x<32 hex digits>/<len>" back to the compressed text form (RFC 5952: longest zero run as "::"). */
export function formatPrefix(stored: string): string {
  const [hex, len] = stored.split('/');
  const groups = (hex.replace(/^0x/, '').match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, ''));
  let best = { start: -1, size: 1 };
  for (let i = 0; i < groups.length; ) {
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > best.size) best = { start: i, size: j - i };
    i = j === i ? i + 1 : j;
  }
  const text =
    best.start < 0
      ? groups.join(':')
      : `${groups.slice(0, best.start).join(':')}::${groups.slice(best.start + best.size).join(':')}`;
  return len ? `${text}/${len}` : text;
}
