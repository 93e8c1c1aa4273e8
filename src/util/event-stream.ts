/**
 * A callback-driven run as an async iterator: `start` gets an `emit` function and a signal; the
 * iterator yields what is emitted, in order, then the run's result as its last item. Leaving the
 * loop early (break, return, a throw) aborts the run through the signal; the caller's own signal
 * aborts it too. Events are buffered: the run never waits for the consumer.
 */
export type StreamEnd<R> = { type: 'result'; result: R };

export function eventStream<E, R>(
  start: (emit: (event: E) => void, signal: AbortSignal) => Promise<R>,
  outer?: AbortSignal,
): AsyncIterableIterator<E | StreamEnd<R>> {
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onOuterAbort();
  else outer?.addEventListener('abort', onOuterAbort, { once: true });

  const queue: (E | StreamEnd<R>)[] = [];
  let failure: { error: unknown } | null = null;
  let finished = false;
  let wake: (() => void) | null = null;
  const notify = () => { wake?.(); wake = null; };

  let started = false;
  const begin = () => {
    if (started) return;
    started = true;
    start((e) => { if (!finished) { queue.push(e); notify(); } }, controller.signal).then(
      (result) => { queue.push({ type: 'result', result }); finished = true; notify(); },
      (error: unknown) => { failure = { error }; finished = true; notify(); },
    ).finally(() => outer?.removeEventListener('abort', onOuterAbort));
  };

  let closed = false;
  const iterator: AsyncIterableIterator<E | StreamEnd<R>> = {
    async next(): Promise<IteratorResult<E | StreamEnd<R>>> {
      begin();
      for (;;) {
        if (queue.length) return { value: queue.shift()!, done: false };
        if (closed || finished) {
          if (failure) { const { error } = failure; failure = null; closed = true; throw error; }
          closed = true;
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => { wake = resolve; });
      }
    },
    async return(): Promise<IteratorResult<E | StreamEnd<R>>> {
      closed = true;
      queue.length = 0;
      if (started && !finished) controller.abort(new Error('the stream was closed by its reader'));
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() { return iterator; },
  };
  return iterator;
}
