/**
 * The user-facing stream: an AsyncGenerator that hands out, one at a time, the items of a
 * source that yields them in batches (one batch per network read).
 *
 * Why not an `async function*` that loops over the batches and yields each item? Every
 * `yield` of an async generator resumes a suspended frame and settles promises through
 * several microtasks, and every layer of `yield*` adds that again, per event. Here, while
 * the current batch has items, `next()` answers from it at once: one settled promise per
 * event and nothing else. The source (an async generator) is resumed once per batch.
 *
 * It behaves as a generator would: the source starts on the first `next()`, overlapping
 * `next()` calls are answered in order, and `return()` (a consumer's `break`) or `throw()`
 * closes the source, which runs its `finally` blocks and so aborts its requests.
 */
import { AbortError } from './errors.js';

/** Starts the source of batches; may first await something (the user's input, a lock). */
export type OpenBatches<T> = () => AsyncIterator<T[], void, undefined> | Promise<AsyncIterator<T[], void, undefined>>;

export class EventStream<T> implements AsyncGenerator<T, void, undefined> {
  readonly #open: OpenBatches<T>;
  readonly #onItem: ((item: T) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  #source: AsyncIterator<T[], void, undefined> | undefined;
  #batch: T[] = [];
  #index = 0;
  #closed = false;
  /** The pull that is waiting on the source, if any; later calls queue behind it. */
  #pulling: Promise<IteratorResult<T, void>> | undefined;

  /**
   * @param open starts the source; called on the first `next()`.
   * @param onItem called for each item as it is handed out (not when its batch arrives), so a
   *   consumer that leaves early never has it called for items it did not receive.
   * @param signal once aborted, `next()` hands out nothing more: the items of a batch already
   *   received are dropped and the call fails with an AbortError. (`forEach` drains whole
   *   replies, and ends as the aborted requests fail.)
   */
  constructor(open: OpenBatches<T>, onItem?: (item: T) => void, signal?: AbortSignal) {
    this.#open = open;
    this.#onItem = onItem;
    this.#signal = signal;
  }

  next(): Promise<IteratorResult<T, void>> {
    if (this.#signal?.aborted) return this.#close().then(() => Promise.reject(new AbortError()));
    // Hot path: an item is ready and nothing is queued ahead of this call.
    if (this.#pulling === undefined && this.#index < this.#batch.length) {
      try {
        return Promise.resolve(this.#take());
      } catch (err) {
        return this.#close().then(() => Promise.reject(err));
      }
    }
    const pull = this.#pulling === undefined ? this.#pull() : this.#pulling.then(() => this.#pull(), () => this.#pull());
    this.#pulling = pull;
    const settled = (): void => {
      if (this.#pulling === pull) this.#pulling = undefined;
    };
    pull.then(settled, settled);
    return pull;
  }

  async return(): Promise<IteratorResult<T, void>> {
    // Like a generator, finish the step in progress before closing.
    await this.#pulling?.catch(() => undefined);
    await this.#close();
    return { done: true, value: undefined };
  }

  async throw(err: unknown): Promise<IteratorResult<T, void>> {
    await this.#pulling?.catch(() => undefined);
    await this.#close();
    throw err;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Consume the whole stream, calling `visit` on each item: what a `for await` loop does,
   * minus a promise per item, for callers that want everything (`run`, `send`). Not to be
   * mixed with `next()`. If `visit` throws, the source is closed, as `for await` would.
   */
  async forEach(visit: (item: T) => void): Promise<void> {
    try {
      do {
        while (this.#index < this.#batch.length) visit(this.#takeItem());
      } while (await this.#load());
    } catch (err) {
      await this.#close();
      throw err;
    }
  }

  #takeItem(): T {
    const item = this.#batch[this.#index++] as T;
    this.#onItem?.(item);
    return item;
  }

  #take(): IteratorResult<T, void> {
    return { done: false, value: this.#takeItem() };
  }

  async #pull(): Promise<IteratorResult<T, void>> {
    while (this.#index >= this.#batch.length) {
      if (!(await this.#load())) return { done: true, value: undefined };
    }
    if (this.#signal?.aborted) {
      await this.#close();
      throw new AbortError();
    }
    try {
      return this.#take();
    } catch (err) {
      await this.#close();
      throw err;
    }
  }

  /** Read the next batch from the source (starting it the first time); false once it has ended. */
  async #load(): Promise<boolean> {
    if (this.#closed) return false;
    let result: IteratorResult<T[], void>;
    try {
      if (this.#source === undefined) {
        const opened = this.#open();
        this.#source = opened instanceof Promise ? await opened : opened;
      }
      result = await this.#source.next();
    } catch (err) {
      // The source (or its start) threw, so it has already finished; just stop.
      this.#closed = true;
      throw err;
    }
    if (result.done) {
      this.#closed = true;
      return false;
    }
    this.#batch = result.value;
    this.#index = 0;
    return true;
  }

  /** Drop what is buffered and close the source (its `finally` blocks run). */
  async #close(): Promise<void> {
    this.#batch = [];
    this.#index = 0;
    if (this.#closed) return;
    this.#closed = true;
    await this.#source?.return?.();
  }
}

// Inherit from %AsyncIteratorPrototype%, as generators do, so helpers the runtime defines
// there (Symbol.asyncDispose for `await using`, where supported) work on these streams too.
Object.setPrototypeOf(EventStream.prototype, Object.getPrototypeOf(Object.getPrototypeOf(async function* () {}.prototype)));
