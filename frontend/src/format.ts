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

/** A size in bytes as people read it: "512 B", "3.2 KiB", "1.5 MiB", "2 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${units[unit]}`;
}

/** Seconds as people read them: "0.42 s", "12.3 s", "4 min 5 s". */
export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toLocaleString('en-US', { maximumFractionDigits: seconds < 1 ? 2 : 1 })} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}
