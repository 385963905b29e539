/**
 * Run several async iterables of batches at once and hand out their items as they come.
 * A consumer that stops early (break, throw) closes every source, which aborts their requests.
 */

export interface Tagged<T> {
  index: number;
  value?: T;
  error?: unknown;
  done?: boolean;
}

/**
 * Yields `{index, value}` per batch, `{index, error}` when a source fails, `{index, done}` when one ends.
 * `abort` is called when the consumer leaves while sources are still running: a source waiting
 * on a stalled server cannot be closed until that wait ends, so `abort` must end it (by aborting
 * the sources' requests) or leaving would wait for the slowest server.
 */
export async function* mergeSources<T>(sources: AsyncIterable<T>[], abort?: () => void): AsyncGenerator<Tagged<T>> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ index: number; result?: IteratorResult<T>; error?: unknown }>>();
  const pull = (index: number): void => {
    const it = iterators[index];
    if (!it) return;
    pending.set(
      index,
      it.next().then(
        (result) => ({ index, result }),
        (error: unknown) => ({ index, error }),
      ),
    );
  };
  iterators.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { index, result, error } = await Promise.race(pending.values());
      if (error !== undefined || !result) {
        pending.delete(index);
        yield { index, error };
      } else if (result.done) {
        pending.delete(index);
        yield { index, done: true };
      } else {
        pull(index);
        yield { index, value: result.value };
      }
    }
  } finally {
    // Close sources still running (the consumer left early): their requests are aborted.
    if (pending.size > 0) abort?.();
    await Promise.allSettled([...pending.keys()].map((i) => iterators[i]?.return?.()));
  }
}
