/** Numbers in the user's locale, times in their time zone; money kept as the gateway's exact decimal strings until shown. */

const locale = navigator.language;
export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

const integer = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });

export const fmtInt = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : integer.format(n));
export const fmtNum = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : decimal.format(n));
export const fmtMs = (n: number | null | undefined): string => (n === null || n === undefined ? '–' : `${integer.format(n)} ms`);

/** Dollars from a number or the gateway's decimal string, to `digits` places (6 by default: sub-cent requests). */
export function fmtUsd(v: number | string | null | undefined, digits = 6): string {
  if (v === null || v === undefined || v === '') return '–';
  const n = typeof v === 'string' ? Number(v) : v;
  return new Intl.NumberFormat(locale, { style: 'currency', currency: 'USD', minimumFractionDigits: digits, maximumFractionDigits: digits }).format(n);
}

/** Price per million tokens. */
export const fmtPrice = (n: number | null): string => (n === null ? '–' : `${new Intl.NumberFormat(locale, { style: 'currency', currency: 'USD', maximumFractionDigits: 3 }).format(n)}/M`);

const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' });
export const fmtTime = (iso: string | number): string => dateTime.format(new Date(iso));

/** A bucket label from the gateway (`2026-12-01` or `2026-12-01T14`, already in our time zone) as the locale writes it. */
export function fmtBucket(bucket: string): string {
  const [day, hour] = bucket.split('T');
  const [y, m, d] = (day ?? '').split('-').map(Number);
  const date = new Date(y ?? 1970, (m ?? 1) - 1, d ?? 1, hour === undefined ? 0 : Number(hour));
  return hour === undefined
    ? new Intl.DateTimeFormat(locale, { dateStyle: 'medium' }).format(date)
    : new Intl.DateTimeFormat(locale, { month: 'short', day: 'numeric', hour: 'numeric' }).format(date);
}

/** `YYYY-MM-DD` of a date in local time, for <input type="date">. */
export function isoDay(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
