/**
 * "Did you mean ...?": the closest known words to a mistyped one, by edit distance
 * (Damerau-Levenshtein with adjacent transpositions), for modes, providers, commands and options.
 */

/** Edits (insert, delete, substitute, swap two neighbours) turning `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) rows.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    const up = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = best;
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The known words closest to `word` (case-insensitive), nearest first: those within a third of
 * the word's length (at least 2 edits), or that start with it when it is 3 characters or more.
 */
export function closest(word: string, known: Iterable<string>, max = 3): string[] {
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.floor(w.length / 3));
  const scored: [string, number][] = [];
  for (const k of new Set(known)) {
    const d = editDistance(w, k.toLowerCase());
    if (d <= limit) scored.push([k, d]);
    else if (w.length >= 3 && k.toLowerCase().startsWith(w)) scored.push([k, limit]);
  }
  return scored.sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).slice(0, max).map(([k]) => k);
}

/** `did you mean "a" or "b"?`, or '' when nothing is close. */
export function didYouMean(word: string, known: Iterable<string>, quote = '"'): string {
  return askAbout(closest(word, known), quote);
}

function askAbout(found: string[], quote = '"'): string {
  if (found.length === 0) return '';
  const q = (s: string): string => `${quote}${s}${quote}`;
  return `did you mean ${found.length === 1 ? q(found[0] as string) : `${found.slice(0, -1).map(q).join(', ')} or ${q(found[found.length - 1] as string)}`}?`;
}

/** Words people reach for when they mean a routing mode. */
const MODE_INTENTS: [RegExp, string][] = [
  [/cheap|price|cost|budget/, 'lowest-cost'],
  [/fast|quick|speed|tps|tks|throughput/, 'highest-tks-per-sec'],
  [/ttft|first/, 'lowest-ttft'],
  [/latency|responsive|slow/, 'lowest-latency'],
];

/**
 * What a mistyped word after `@` probably meant: a mode named by intent (`@cheapest` is
 * `@lowest-cost`, `@fastest` and `@highest-tps` are `@highest-tks-per-sec`), else the modes
 * and providers closest by edit distance.
 */
export function suggestTarget(word: string, modes: readonly string[], providers: readonly string[]): string {
  const w = word.toLowerCase();
  const near = closest(w, [...modes, ...providers]);
  const intended = MODE_INTENTS.filter(([pattern]) => pattern.test(w)).map(([, mode]) => mode);
  return askAbout([...new Set([...intended, ...near])].slice(0, 3));
}
