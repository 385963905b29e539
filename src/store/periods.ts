/**
 * Budget periods on calendar boundaries in a configured time zone: a `day` budget resets at
 * local midnight, a `month` budget at local midnight of the first, a `total` budget never.
 * The zone is an IANA name (`Europe/Berlin`, `UTC`); the offset is looked up with Intl for
 * the instant in question, so daylight-saving changes move the boundary as a person expects.
 */

export type BudgetPeriod = 'day' | 'month' | 'total';
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['day', 'month', 'total'];

/** One period of a budget: its id (`2026-12-01`, `2026-12`, `total`) and its bounds in ms. */
export interface PeriodWindow {
  id: string;
  startMs: number;
  /** When the budget resets; Infinity for `total`. */
  endMs: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a RangeError naming the zone when Intl does not know it. */
export function checkTimeZone(timeZone: string): void {
  try {
    formatter(timeZone);
  } catch {
    throw new RangeError(`Unknown time zone "${timeZone}": use an IANA name such as UTC or Europe/Berlin.`);
  }
}

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function localTime(ms: number, timeZone: string): LocalTime {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year ?? 0, month: parts.month ?? 1, day: parts.day ?? 1, hour: parts.hour ?? 0, minute: parts.minute ?? 0, second: parts.second ?? 0 };
}

/** Milliseconds the zone is ahead of UTC at instant `ms`. */
function offsetAt(ms: number, timeZone: string): number {
  const t = localTime(ms, timeZone);
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant local midnight starts the given local date (month may overflow: 13 = next January). */
function localMidnight(year: number, month: number, day: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day);
  let guess = wall - offsetAt(wall, timeZone);
  // A second look settles the offset when the first guess crossed a daylight-saving change.
  guess = wall - offsetAt(guess, timeZone);
  return guess;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The last window computed per period and zone: nearly every request falls in it, and Intl is slow. */
const recent = new Map<string, PeriodWindow>();

/** The period of `period` that contains instant `nowMs` in `timeZone`. */
export function periodWindow(period: BudgetPeriod, nowMs: number, timeZone = 'UTC'): PeriodWindow {
  if (period === 'total') return { id: 'total', startMs: 0, endMs: Number.POSITIVE_INFINITY };
  const key = `${period} ${timeZone}`;
  const last = recent.get(key);
  if (last && nowMs >= last.startMs && nowMs < last.endMs) return { ...last };
  const window = computeWindow(period, nowMs, timeZone);
  recent.set(key, window);
  return { ...window };
}

function computeWindow(period: 'day' | 'month', nowMs: number, timeZone: string): PeriodWindow {
  const t = localTime(nowMs, timeZone);
  if (period === 'day') {
    return { id: `${t.year}-${pad(t.month)}-${pad(t.day)}`, startMs: localMidnight(t.year, t.month, t.day, timeZone), endMs: localMidnight(t.year, t.month, t.day + 1, timeZone) };
  }
  return { id: `${t.year}-${pad(t.month)}`, startMs: localMidnight(t.year, t.month, 1, timeZone), endMs: localMidnight(t.year, t.month + 1, 1, timeZone) };
}
