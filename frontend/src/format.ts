// Money and names as people read them. Token amounts are 18-decimal base units (decimal strings in JSON).
import { formatUnits, parseUnits } from 'viem';

export const TOKEN = 'SWT';
export const TIERS = ['small', 'medium', 'large', 'super-large'];

/** "1234500000000000000" -> "1.2345" (at most `digits` decimals, trailing zeros dropped). */
export function formatTokens(wei: string | bigint | number, digits = 4): string {
  const value = BigInt(wei);
  const text = formatUnits(value, 18);
  const [whole, frac = ''] = text.split('.');
  const cut = frac.slice(0, digits).replace(/0+$/, '');
  const grouped = BigInt(whole.replace('-', '')).toLocaleString('en-US');
  const sign = whole.startsWith('-') ? '-' : '';
  if (!cut && value !== 0n && BigInt(whole) === 0n) return `< 0.${'0'.repeat(digits - 1)}1`;
  return `${sign}${grouped}${cut ? `.${cut}` : ''}`;
}

/** A token amount typed by a person ("1.5") to base units; throws with what is wrong. */
export function parseTokens(text: string): bigint {
  const t = text.trim().replace(/,/g, '');
  if (!/^\d+(\.\d{1,18})?$/.test(t)) throw new Error('a token amount such as 1.5 (up to 18 decimals)');
  return parseUnits(t, 18);
}

export function shortAddress(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

export function formatTime(unix: number): string {
  return new Date(unix * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function formatCu(mcu: number): string {
  return (mcu / 1000).toLocaleString('en-US', { maximumFractionDigits: 3 });
}

/** A deadline: the time alone when it falls today, else with its date too. */
export function formatDeadline(unix: number): string {
  const at = new Date(unix * 1000);
  if (at.toDateString() === new Date().toDateString()) return formatTime(unix);
  return at.toLocaleString([], { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}
