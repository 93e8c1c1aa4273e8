/**
 * The loop every evaluation shares: the items not yet in the results log, in batches, each
 * batch's results appended as soon as it is scored; progress with the rate and time left of
 * this session's items; cancellation between (and, through the tasks, within) batches.
 */
import { throwIfAborted } from '../errors.js';
import { chunks } from '../util/arrays.js';
import type { ItemLine, ResultsLog } from './results-log.js';

export interface EvalProgress {
  /** items with results (this run's and earlier runs') */
  done: number;
  total: number;
  /** items whose results came from an earlier, interrupted run */
  resumed: number;
  itemsPerSecond: number | null;
  etaSeconds: number | null;
}

export interface EvalControl {
  signal?: AbortSignal;
  onProgress?: (p: EvalProgress) => void;
  /** items per batch */
  batch?: number;
}

export async function runItems<I extends { id: string }, L extends ItemLine>(
  items: readonly I[], log: ResultsLog<L>, score: (batch: I[]) => Promise<L[]>, ctl: EvalControl,
): Promise<void> {
  const todo = items.filter((it) => !log.done.has(it.id));
  const resumed = items.length - todo.length;
  let done = resumed;
  const started = performance.now();
  const report = () => {
    const seconds = (performance.now() - started) / 1000;
    const rate = done > resumed && seconds > 0 ? (done - resumed) / seconds : null;
    ctl.onProgress?.({ done, total: items.length, resumed, itemsPerSecond: rate, etaSeconds: rate ? (items.length - done) / rate : null });
  };
  report();
  for (const batch of chunks(todo, Math.max(1, ctl.batch ?? 8))) {
    throwIfAborted(ctl.signal);
    await log.append(await score(batch));
    done += batch.length;
    report();
  }
}

/** The results of `items` from the log, in item order (all present after `runItems`). */
export function resultsOf<L extends ItemLine>(items: readonly { id: string }[], log: ResultsLog<L>): L[] {
  return items.map((it) => {
    const line = log.done.get(it.id);
    if (!line) throw new Error(`no result for ${it.id}`);
    return line;
  });
}
