/** A one-line spinner while waiting for the first token; terminals only. `stop()` erases it. */
import type { OutStream } from '../io.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Spinner {
  readonly #out: OutStream;
  #timer: NodeJS.Timeout | undefined;
  #frame = 0;
  #text = '';

  constructor(out: OutStream) {
    this.#out = out;
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  start(text: string): void {
    this.stop();
    this.#text = text;
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), 80);
  }

  #draw(): void {
    const frame = FRAMES[this.#frame++ % FRAMES.length] as string;
    this.#out.write(`\r\x1b[2m${frame} ${this.#text}\x1b[22m\x1b[K`);
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#out.write('\r\x1b[K');
  }
}
