/**
 * Batched runs of a task: several requests of one task (e.g. concurrent classify or dream jobs of
 * a server worker) run as one batch of rows on the model. Rows are independent in every model
 * call, so each request's result equals what it gets alone; each request settles on its own —
 * one that is invalid or cancelled fails alone while the rest of the batch goes on.
 */
import type { ProgressReporter } from '../util/progress.js';

export class BatchItem<O, R> {
  readonly result: Promise<R>;
  private settle!: { resolve: (r: R) => void; reject: (e: unknown) => void };
  private done = false;
  progress?: ProgressReporter;

  constructor(readonly options: O, readonly index: number) {
    this.result = new Promise<R>((resolve, reject) => { this.settle = { resolve, reject }; });
    // a failure is observed by whoever awaits `result`; none is unhandled in the meantime
    this.result.catch(() => {});
  }

  get live(): boolean { return !this.done; }

  resolve(r: R): void {
    if (this.done) return;
    this.done = true;
    this.settle.resolve(r);
  }

  fail(e: unknown): void {
    if (this.done) return;
    this.done = true;
    this.settle.reject(e);
  }

  /** Runs a step of this item only (validation, preparation): a throw fails the item, not the batch. */
  attempt<T>(f: () => T): T | undefined {
    if (!this.live) return undefined;
    try {
      return f();
    } catch (e) {
      this.fail(e);
      return undefined;
    }
  }

  /** Ticks this item's progress; a cancelled item fails here (within one model call). */
  tick(n: number): void {
    if (!this.live || !this.progress) return;
    try {
      this.progress.tick(n);
    } catch (e) {
      this.fail(e);
    }
  }
}

/** Thrown inside a batch when every item has failed: nothing is left to compute. */
export class BatchEmpty extends Error {
  constructor() { super('every request of the batch has failed or was cancelled'); }
}

export function items<O, R>(list: readonly O[]): BatchItem<O, R>[] {
  return list.map((o, i) => new BatchItem<O, R>(o, i));
}

/** Throws BatchEmpty when no item is left. */
export function requireLive(all: readonly { readonly live: boolean }[]): void {
  if (!all.some((i) => i.live)) throw new BatchEmpty();
}

/**
 * Runs a batch body; an error it throws fails every item still pending (BatchEmpty means they
 * had all failed already). Returns each item's own result.
 */
export function runBatch<O, R>(all: BatchItem<O, R>[], body: () => Promise<void>): Promise<R>[] {
  void body().then(
    () => { for (const i of all) i.fail(new Error('batch ended without a result for this request')); },
    (e: unknown) => { for (const i of all) i.fail(e); },
  );
  return all.map((i) => i.result);
}

/** Calls `tick(item, rows)` for each item owning rows in [first, first + count) of `owners` (row → item). */
export function tickRows<T>(owners: readonly T[], first: number, count: number, tick: (owner: T, rows: number) => void): void {
  let i = first;
  while (i < first + count) {
    const owner = owners[i];
    let n = 0;
    while (i < first + count && owners[i] === owner) { n++; i++; }
    tick(owner, n);
  }
}
