/**
 * Lines typed by the user, one at a time, and Ctrl-C. On a terminal: readline with a
 * prompt and line editing; Ctrl-C arrives as an interrupt (a reply stops, or at the
 * prompt the chat ends), Ctrl-D ends the input. From a pipe: one message per line, and
 * SIGINT as the interrupt.
 */
import { createInterface, type Interface } from 'node:readline';
import type { CliIO } from '../io.js';

export class LineReader {
  readonly #rl: Interface;
  readonly #queue: string[] = [];
  readonly #terminal: boolean;
  #waiting: ((line: string | null) => void) | undefined;
  #closed = false;
  #onInterrupt: () => void = () => {};
  readonly #sigint = (): void => this.#onInterrupt();

  constructor(io: CliIO, terminal: boolean) {
    this.#terminal = terminal;
    this.#rl = createInterface({ input: io.stdin, output: terminal ? (io.stdout as NodeJS.WritableStream) : undefined, terminal, prompt: '> ', historySize: terminal ? 200 : 0 });
    this.#rl.on('line', (line) => {
      if (this.#waiting) {
        const resolve = this.#waiting;
        this.#waiting = undefined;
        resolve(line);
      } else {
        this.#queue.push(line);
      }
    });
    this.#rl.on('close', () => {
      this.#closed = true;
      this.#waiting?.(null);
      this.#waiting = undefined;
    });
    if (terminal) this.#rl.on('SIGINT', this.#sigint);
    else process.on('SIGINT', this.#sigint);
  }

  /** What Ctrl-C does (set by the chat: stop the reply, or leave at the prompt). */
  onInterrupt(handler: () => void): void {
    this.#onInterrupt = handler;
  }

  /** Show the prompt (terminal only). */
  prompt(): void {
    if (this.#terminal && !this.#closed) this.#rl.prompt();
  }

  /** The next line, or null when the input has ended. */
  next(): Promise<string | null> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  close(): void {
    process.off('SIGINT', this.#sigint);
    this.#rl.close();
  }
}
