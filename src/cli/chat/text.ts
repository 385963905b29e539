/** Terminal text measuring: visible width (ANSI codes skipped, wide characters as two) and ANSI-aware wrapping. */

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;
const WIDE = /[\u1100-\u115F\u2E80-\u303E\u3041-\u33FF\u3400-\u4DBF\u4E00-\u9FFF\uA000-\uA4CF\uAC00-\uD7A3\uF900-\uFAFF\uFE30-\uFE4F\uFF00-\uFF60\uFFE0-\uFFE6\u{1F300}-\u{1FAFF}\u{20000}-\u{3FFFD}]/u;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

function charWidth(ch: string): number {
  const code = ch.codePointAt(0) ?? 0;
  if (code < 32 || (code >= 0x7f && code < 0xa0) || (code >= 0x300 && code <= 0x36f) || code === 0x200b) return 0;
  return WIDE.test(ch) ? 2 : 1;
}

export function visibleWidth(text: string): number {
  let n = 0;
  for (const ch of stripAnsi(text)) n += charWidth(ch);
  return n;
}

/** Split into ANSI escapes and single characters. */
function pieces(text: string): string[] {
  const out: string[] = [];
  let last = 0;
  for (const m of text.matchAll(ANSI)) {
    for (const ch of text.slice(last, m.index)) out.push(ch);
    out.push(m[0]);
    last = (m.index ?? 0) + m[0].length;
  }
  for (const ch of text.slice(last)) out.push(ch);
  return out;
}

/** Cut one line to `width` columns (ANSI codes kept; a reset added when something was cut). */
export function truncate(line: string, width: number): string {
  if (visibleWidth(line) <= width) return line;
  let n = 0;
  let out = '';
  for (const p of pieces(line)) {
    if (p.startsWith('\x1b')) {
      out += p;
      continue;
    }
    const w = charWidth(p);
    if (n + w > width - 1) break;
    out += p;
    n += w;
  }
  return out.includes('\x1b') ? `${out}…\x1b[0m` : `${out}…`;
}

/** Hard-wrap one line (no newlines in it) at `width` columns, preferring the last space. ANSI codes are kept. */
export function wrapLine(line: string, width: number): string[] {
  if (width < 1 || visibleWidth(line) <= width) return [line];
  const rows: string[] = [];
  let row = '';
  let n = 0;
  let lastSpace = -1;
  for (const p of pieces(line)) {
    if (p.startsWith('\x1b')) {
      row += p;
      continue;
    }
    const w = charWidth(p);
    if (n + w > width) {
      if (lastSpace > 0 && p !== ' ') {
        rows.push(row.slice(0, lastSpace));
        row = row.slice(lastSpace + 1);
        n = visibleWidth(row);
      } else {
        rows.push(row);
        row = '';
        n = 0;
      }
      lastSpace = -1;
      if (p === ' ' && n === 0) continue;
    }
    if (p === ' ') lastSpace = row.length;
    row += p;
    n += w;
  }
  rows.push(row);
  return rows;
}

/** Wrap a text of several lines. */
export function wrapText(text: string, width: number): string[] {
  return text.split('\n').flatMap((line) => wrapLine(line, width));
}

/** Pad to `width` visible columns. */
export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - visibleWidth(text)));
}

/**
 * Word wrapping for text that streams in: a word that would cross the right edge starts a new
 * row instead of being cut by the terminal, and the space before it is dropped (no trailing
 * spaces). Holds back at most the word being typed and the spaces before it. Only a word wider
 * than the whole row is broken, at the row's end.
 */
export class SoftWrap {
  readonly #width: number;
  /** Visible columns already on the current row. */
  #col = 0;
  #spaces = '';
  #word = '';
  #wordWidth = 0;

  constructor(width: number) {
    this.#width = Math.max(10, width);
  }

  #flushWord(): string {
    if (this.#word === '') return '';
    let out = '';
    if (this.#col > 0 && this.#col + this.#spaces.length + this.#wordWidth > this.#width) {
      out = '\n';
      this.#col = 0;
    } else {
      out = this.#spaces;
      this.#col += this.#spaces.length;
    }
    this.#spaces = '';
    out += this.#word;
    this.#col += this.#wordWidth;
    this.#word = '';
    this.#wordWidth = 0;
    return out;
  }

  write(text: string): string {
    let out = '';
    for (const p of pieces(text)) {
      if (p.startsWith('\x1b')) {
        this.#word += p;
      } else if (p === '\n') {
        out += `${this.#flushWord()}\n`;
        this.#spaces = '';
        this.#col = 0;
      } else if (p === ' ' || p === '\t') {
        out += this.#flushWord();
        this.#spaces += p === '\t' ? '  ' : ' ';
      } else {
        const w = charWidth(p);
        // A word as wide as a whole row: break it at the row's end.
        if (this.#wordWidth + w > this.#width) {
          out += this.#flushWord();
          if (this.#col > 0) {
            out += '\n';
            this.#col = 0;
          }
        }
        this.#word += p;
        this.#wordWidth += w;
      }
    }
    return out;
  }

  end(): string {
    const out = this.#flushWord();
    this.#spaces = '';
    this.#col = 0;
    return out;
  }
}
