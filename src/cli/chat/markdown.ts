/**
 * Markdown for the terminal, two ways:
 * - `MarkdownStream` styles a reply as it streams, append-only (nothing is ever redrawn, so
 *   it keeps up with any speed and survives scrolling): code fences, headings, bullets,
 *   quotes, **bold**, *italic* and `code`, decided character by character.
 * - `renderMarkdown` renders a finished text with marked + marked-terminal (loaded on first
 *   use), for replies shown whole: the columns of a comparison, buffered replies, /history.
 * Without colour both give the text as it is (wrapped to the width for whole texts).
 */
import { wrapText } from './text.js';

const CODE = '\x1b[33m';
const CODE_OFF = '\x1b[39m';
const BOLD = '\x1b[1m';
const BOLD_OFF = '\x1b[22m';
const ITALIC = '\x1b[3m';
const ITALIC_OFF = '\x1b[23m';
const HEADING = '\x1b[1;32m';
const HEADING_OFF = '\x1b[22;39m';
const DIM = '\x1b[2m';
const DIM_OFF = '\x1b[22m';
const BULLET = '\x1b[36m';
const BULLET_OFF = '\x1b[39m';

export class MarkdownStream {
  readonly #color: boolean;
  #pending = '';
  #atLineStart = true;
  #inFence = false;
  #lineStyleOff = '';
  #bold = false;
  #italic = false;
  #code = false;
  /** The current line is code (inside a fence, or the fence itself): no inline styling. */
  #codeLine = false;

  constructor(color: boolean) {
    this.#color = color;
  }

  /** Styled text for a delta; may hold back a few characters until their meaning is known. */
  write(delta: string): string {
    if (!this.#color) return delta;
    this.#pending += delta;
    return this.#drain(false);
  }

  /** The rest, with every style closed. */
  end(): string {
    if (!this.#color) return '';
    const out = this.#drain(true) + this.#closeInline() + this.#lineStyleOff;
    this.#lineStyleOff = '';
    this.#atLineStart = true;
    return out;
  }

  #closeInline(): string {
    let out = '';
    if (this.#code) out += CODE_OFF;
    if (this.#bold) out += BOLD_OFF;
    if (this.#italic) out += ITALIC_OFF;
    this.#code = this.#bold = this.#italic = false;
    return out;
  }

  #drain(final: boolean): string {
    let out = '';
    let text = this.#pending;
    while (text.length > 0) {
      if (this.#atLineStart) {
        const head = this.#lineHead(text, final);
        if (head === undefined) break;
        out += head.styled;
        text = text.slice(head.length);
        this.#atLineStart = false;
        continue;
      }
      const nl = text.indexOf('\n');
      const line = nl === -1 ? text : text.slice(0, nl);
      const { styled, used } = this.#inline(line, final || nl !== -1);
      out += styled;
      if (used < line.length) {
        text = text.slice(used);
        break;
      }
      if (nl === -1) {
        text = '';
        break;
      }
      out += this.#closeInline() + this.#lineStyleOff + '\n';
      this.#lineStyleOff = '';
      this.#atLineStart = true;
      text = text.slice(nl + 1);
    }
    this.#pending = text;
    return out;
  }

  /** Classify the start of a line once enough of it has arrived. */
  #lineHead(text: string, final: boolean): { styled: string; length: number } | undefined {
    const nl = text.indexOf('\n');
    const known = nl === -1 ? text : text.slice(0, nl);
    const fence = /^\s*(```|~~~)/.exec(known);
    if (fence) {
      this.#inFence = !this.#inFence;
      // The fence line itself (with its language) is shown dim, as it is, through to its end.
      this.#lineStyleOff = DIM_OFF;
      this.#codeLine = true;
      return { styled: DIM, length: 0 };
    }
    const complete = nl !== -1 || final || known.length >= 8 || /\S\s/.test(known) || (known.length > 0 && !/^[\s#>*+\-\d.)~`]*$/.test(known));
    if (!complete) return undefined;
    if (this.#inFence) {
      this.#lineStyleOff = CODE_OFF;
      this.#codeLine = true;
      return { styled: CODE, length: 0 };
    }
    this.#codeLine = false;
    const heading = /^#{1,6}\s/.exec(known);
    if (heading) {
      this.#lineStyleOff = HEADING_OFF;
      return { styled: HEADING, length: 0 };
    }
    const bullet = /^(\s*)[-*+]\s/.exec(known);
    if (bullet) return { styled: `${bullet[1]}${BULLET}•${BULLET_OFF} `, length: bullet[0].length };
    const numbered = /^(\s*)(\d+[.)])\s/.exec(known);
    if (numbered) return { styled: `${numbered[1]}${BULLET}${numbered[2]}${BULLET_OFF} `, length: numbered[0].length };
    const quote = /^\s*>\s?/.exec(known);
    if (quote) {
      this.#lineStyleOff = DIM_OFF;
      return { styled: `${DIM}│ `, length: quote[0].length };
    }
    return { styled: '', length: 0 };
  }

  /** Inline emphasis and code spans in part of a line; stops before a marker it cannot yet decide. */
  #inline(line: string, lineDone: boolean): { styled: string; used: number } {
    if (this.#codeLine) {
      return { styled: line, used: line.length };
    }
    let out = '';
    let i = 0;
    for (; i < line.length; i++) {
      const ch = line[i] as string;
      if (ch === '`') {
        out += this.#code ? CODE_OFF : CODE;
        this.#code = !this.#code;
        continue;
      }
      if (ch !== '*' || this.#code) {
        out += ch;
        continue;
      }
      const next = line[i + 1];
      if (next === undefined && !lineDone) break;
      if (next === '*') {
        out += this.#bold ? BOLD_OFF : BOLD;
        this.#bold = !this.#bold;
        i++;
        continue;
      }
      const prev = line[i - 1];
      const opens = !this.#italic && next !== undefined && next !== ' ';
      const closes = this.#italic && prev !== undefined && prev !== ' ';
      if (opens || closes) {
        out += this.#italic ? ITALIC_OFF : ITALIC;
        this.#italic = !this.#italic;
      } else {
        out += ch;
      }
    }
    return { styled: out, used: i };
  }

}

type Render = (text: string, width: number) => string;
let renderer: Promise<Render> | undefined;

/** Load marked + marked-terminal (once); resolves when `renderMarkdown` can run. */
export function loadMarkdown(): Promise<Render> {
  renderer ??= (async () => {
    const [{ Marked }, { markedTerminal }] = await Promise.all([import('marked'), import('marked-terminal')]);
    const byWidth = new Map<number, (text: string) => string>();
    return (text: string, width: number): string => {
      let parse = byWidth.get(width);
      if (!parse) {
        const extension = markedTerminal({ width, reflowText: true, showSectionPrefix: false, emoji: false, tab: 2 });
        // marked-terminal 7 prints a list item's text token raw, so `**bold**` inside a list
        // kept its asterisks; render the token's inline children instead.
        const rendererObject = extension.renderer ?? {};
        const plainText = rendererObject.text;
        rendererObject.text = function (token) {
          if ('tokens' in token && token.tokens) return this.parser.parseInline(token.tokens);
          return plainText ? plainText.call(this, token) : false;
        };
        extension.renderer = rendererObject;
        const marked = new Marked(extension);
        parse = (t) => marked.parse(t, { async: false }) as string;
        byWidth.set(width, parse);
      }
      return parse(text).replace(/\n+$/, '');
    };
  })();
  return renderer;
}

/** A finished text for the terminal: rendered Markdown with colour, else the text wrapped to `width`. */
export async function renderMarkdown(text: string, width: number, color: boolean): Promise<string> {
  if (!color) return wrapText(text, width).join('\n');
  try {
    const render = await loadMarkdown();
    return render(text, width);
  } catch {
    return wrapText(text, width).join('\n');
  }
}
