/**
 * How a turn's replies appear.
 * - `SequentialView` (one model; several on a narrow terminal or a pipe): the first model
 *   streams live; the others are kept until it is done, then shown whole as they finish
 *   (or, if still running, continue live). Append-only: safe at any speed and length.
 *   On a terminal, streamed text is word-wrapped to the width; a pipe gets it unwrapped.
 * - `ColumnsView` (several models on a wide terminal): one pane per model, side by side,
 *   each showing its reply as it streams (word-wrapped to the column; the latest rows when it
 *   outgrows the screen), redrawn in place; when all are done the panes are replaced by the
 *   whole replies side by side, rendered as Markdown.
 */
import type { TurnResult } from '../../types.js';
import type { OutStream } from '../io.js';
import { MarkdownStream, renderMarkdown } from './markdown.js';
import { Spinner } from './spinner.js';
import type { Style } from './style.js';
import { padEnd, SoftWrap, truncate, wrapText } from './text.js';

export interface TurnView {
  delta(model: string, text: string): void;
  finish(model: string, result: TurnResult): void;
  fail(model: string, message: string): void;
  /** Called once when the stream has ended or was stopped; everything is on screen after it. */
  close(stopped: boolean): Promise<void>;
}

export interface ViewOptions {
  out: OutStream;
  style: Style;
  /** A terminal: spinner and live redraws allowed. */
  live: boolean;
  width: number;
  /** The terminal's rows: how tall the live panes may grow (default 24). */
  height?: number;
}

const MIN_COLUMN = 36;

/** Columns when every model gets at least MIN_COLUMN columns on a terminal; else one after the other. */
export function createView(models: string[], options: ViewOptions): TurnView {
  const gap = 3;
  const column = Math.floor((options.width - gap * (models.length - 1)) / models.length);
  if (options.live && models.length > 1 && column >= MIN_COLUMN) return new ColumnsView(models, options, column, gap);
  return new SequentialView(models, options);
}

type Outcome = { result: TurnResult } | { error: string };

export class SequentialView implements TurnView {
  readonly #models: string[];
  readonly #o: ViewOptions;
  readonly #spinner: Spinner | undefined;
  readonly #buffers = new Map<string, string>();
  readonly #done = new Map<string, Outcome>();
  #index = 0;
  #started = false;
  #stream: MarkdownStream;
  /** Word wrap for a terminal; a pipe gets the text as it is. */
  #wrap: SoftWrap | undefined;
  #atLineStart = true;
  #chain: Promise<void> = Promise.resolve();

  constructor(models: string[], options: ViewOptions) {
    this.#models = models;
    this.#o = options;
    this.#stream = new MarkdownStream(options.style.color);
    this.#wrap = this.#newWrap();
    this.#spinner = options.live ? new Spinner(options.out) : undefined;
    this.#waitFor(models[0] as string);
  }

  #newWrap(): SoftWrap | undefined {
    return this.#o.live ? new SoftWrap(this.#o.width - 1) : undefined;
  }

  /** Width for whole replies: the terminal's, or 0 (no wrapping) for a pipe. */
  get #fullWidth(): number {
    return this.#o.live ? this.#o.width : 0;
  }

  #wrapped(text: string): string {
    return this.#wrap ? this.#wrap.write(text) : text;
  }

  get #live(): string | undefined {
    return this.#models[this.#index];
  }

  #write(text: string): void {
    if (text === '') return;
    this.#spinner?.stop();
    this.#o.out.write(text);
    this.#atLineStart = text.endsWith('\n');
  }

  #waitFor(model: string): void {
    this.#spinner?.start(`waiting for ${model}…`);
  }

  #header(model: string): void {
    if (this.#models.length > 1) this.#write(`${this.#o.style.label(`── ${model} ──`)}\n`);
  }

  delta(model: string, text: string): void {
    if (model !== this.#live) {
      this.#buffers.set(model, (this.#buffers.get(model) ?? '') + text);
      return;
    }
    if (!this.#started) {
      this.#started = true;
      this.#header(model);
    }
    this.#write(this.#wrapped(this.#stream.write(text)));
  }

  finish(model: string, result: TurnResult): void {
    this.#settle(model, { result });
  }

  fail(model: string, message: string): void {
    this.#settle(model, { error: message });
  }

  #settle(model: string, outcome: Outcome): void {
    this.#done.set(model, outcome);
    if (model !== this.#live) return;
    this.#endLive(outcome);
    this.#index++;
    this.#chain = this.#chain.then(() => this.#advance());
  }

  #endLive(outcome: Outcome | undefined): void {
    const model = this.#live as string;
    if (!this.#started && outcome && 'result' in outcome) this.#header(model);
    this.#write(this.#wrapped(this.#stream.end()) + (this.#wrap?.end() ?? ''));
    if (!this.#atLineStart) this.#write('\n');
    if (outcome && 'error' in outcome) this.#write(`${this.#o.style.error(`${this.#models.length > 1 ? `${model}: ` : ''}${outcome.error}`)}\n`);
    this.#stream = new MarkdownStream(this.#o.style.color);
    this.#wrap = this.#newWrap();
    this.#started = false;
  }

  /** Show whole the replies that finished while another was live; go live with the next one still running. */
  async #advance(): Promise<void> {
    for (let model = this.#live; model !== undefined; model = this.#live) {
      const outcome = this.#done.get(model);
      if (!outcome) {
        const buffered = this.#buffers.get(model) ?? '';
        this.#buffers.delete(model);
        if (buffered === '') this.#waitFor(model);
        else this.delta(model, buffered);
        return;
      }
      this.#header(model);
      if ('result' in outcome) this.#write(`${await renderMarkdown(outcome.result.text, this.#fullWidth, this.#o.style.color)}\n`);
      else this.#write(`${this.#o.style.error(`${model}: ${outcome.error}`)}\n`);
      this.#index++;
    }
  }

  async close(stopped: boolean): Promise<void> {
    await this.#chain;
    this.#spinner?.stop();
    if (this.#live === undefined) return;
    if (this.#started || !this.#atLineStart) this.#endLive(undefined);
    if (stopped) this.#write(`${this.#o.style.dim('(stopped)')}\n`);
  }
}

interface ColumnState {
  text: string;
  outcome?: Outcome;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class ColumnsView implements TurnView {
  readonly #models: string[];
  readonly #o: ViewOptions;
  readonly #column: number;
  readonly #gap: number;
  readonly #states = new Map<string, ColumnState>();
  /** Rows of the live region on screen now. */
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;
  #frame = 0;

  constructor(models: string[], options: ViewOptions, column: number, gap: number) {
    this.#models = models;
    this.#o = options;
    this.#column = column;
    this.#gap = gap;
    for (const m of models) this.#states.set(m, { text: '' });
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), 80);
  }

  #state(model: string): ColumnState {
    return this.#states.get(model) as ColumnState;
  }

  delta(model: string, text: string): void {
    this.#state(model).text += text;
  }

  finish(model: string, result: TurnResult): void {
    this.#state(model).outcome = { result };
  }

  fail(model: string, message: string): void {
    this.#state(model).outcome = { error: message };
  }

  /** A pane's title: the model, then waiting, done or failed. */
  #title(model: string): string {
    const s = this.#state(model);
    const spin = SPINNER[this.#frame % SPINNER.length] as string;
    let status: string;
    if (s.outcome && 'error' in s.outcome) status = 'failed';
    else if (s.outcome) status = `done, ${s.outcome.result.usage.completionTokens} tokens`;
    else status = s.text === '' ? `${spin} waiting…` : spin;
    return this.#o.style.label(truncate(`── ${model} ── ${status}`, this.#column));
  }

  /** A pane's rows while streaming: its text word-wrapped to the column (an error instead, when it failed). */
  #body(model: string): string[] {
    const s = this.#state(model);
    if (s.outcome && 'error' in s.outcome) return wrapText(s.outcome.error, this.#column);
    return s.text === '' ? [] : wrapText(s.text.replace(/\n+$/, ''), this.#column);
  }

  /** Redraw the panes in place. Taller than the screen allows, each pane shows its latest rows. */
  #draw(): void {
    this.#frame++;
    const bodies = this.#models.map((m) => this.#body(m));
    const room = Math.max(3, (this.#o.height ?? 24) - 3);
    const rows = Math.min(room, Math.max(0, ...bodies.map((b) => b.length)));
    const lines = [this.#row(this.#models.map((m) => this.#title(m)))];
    for (let i = 0; i < rows; i++) lines.push(this.#row(bodies.map((b) => b[Math.max(0, b.length - rows) + i] ?? '')));
    // A pane that shrank (a failure replacing its text) leaves no stale rows behind.
    while (lines.length < this.#drawn) lines.push('');
    let out = this.#drawn > 1 ? `\x1b[${this.#drawn - 1}A` : '';
    out += lines.map((l) => `\r${l}\x1b[K`).join('\n');
    this.#drawn = lines.length;
    this.#o.out.write(out);
  }

  #row(cells: string[]): string {
    const reset = this.#o.style.color ? '\x1b[0m' : '';
    const sep = ' '.repeat(this.#gap);
    return cells.map((c, k) => (k === cells.length - 1 ? `${c}${reset}` : `${padEnd(c, this.#column)}${reset}`)).join(sep).trimEnd();
  }

  async close(stopped: boolean): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const { out, style } = this.#o;
    // Replace the live panes with the whole replies.
    out.write(`${this.#drawn > 1 ? `\x1b[${this.#drawn - 1}A` : ''}\r\x1b[J`);
    this.#drawn = 0;
    const columns = await Promise.all(
      this.#models.map(async (m) => {
        const s = this.#state(m);
        const head = style.label(truncate(`── ${m} ──`, this.#column));
        let body: string[];
        if (s.outcome && 'error' in s.outcome) body = wrapText(style.error(s.outcome.error), this.#column);
        else if (s.outcome) body = (await renderMarkdown(s.outcome.result.text, this.#column, style.color)).split('\n').flatMap((l) => wrapText(l, this.#column));
        else body = wrapText(s.text, this.#column);
        return [head, ...body];
      }),
    );
    const rows = Math.max(...columns.map((c) => c.length));
    let text = '';
    for (let i = 0; i < rows; i++) text += `${this.#row(columns.map((c) => c[i] ?? ''))}\n`;
    out.write(text);
    // Said once for the turn, not once per model.
    if (stopped) out.write(`${style.dim('(stopped)')}\n`);
  }
}
