/**
 * Gathers the jobs a worker holds into batches for its inference thread: while the thread is
 * busy, jobs wait; when it is free, the oldest job goes next together with the other waiting
 * jobs of the same task (up to `maxBatch`) when that task has a batched form. A job arriving at
 * an idle thread waits `gatherMs` for siblings first (only when batching can happen at all).
 */
import { taskByName } from '../../tasks/registry.js';
import type { JobMessage, RunOutcome } from '../protocol.js';
import type { JobControl, WorkerClient } from '../worker-client.js';

interface Pending { job: JobMessage; control: JobControl; resolve: (o: RunOutcome) => void }

export interface BatcherOptions {
  /** most jobs in one batch (1 = no batching) */
  maxBatch: number;
  /** how long a job arriving at an idle thread waits for compatible ones */
  gatherMs?: number;
  onBatch?: (task: string, size: number) => void;
}

/** The batching key of a job: jobs with equal keys may run together; null = always alone. */
export function batchKey(task: string): string | null {
  const found = taskByName(task);
  return found && (found.task as { runMany?: unknown }).runMany ? task : null;
}

export class Batcher {
  private readonly pending: Pending[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly thread: Pick<WorkerClient, 'runBatch'>, private readonly opts: BatcherOptions) {}

  run(job: JobMessage, control: JobControl): Promise<RunOutcome> {
    return new Promise((resolve) => {
      this.pending.push({ job, control, resolve });
      this.schedule();
    });
  }

  get size(): number { return this.pending.length + (this.busy ? 1 : 0); }

  private schedule(): void {
    if (this.busy || this.timer || !this.pending.length) return;
    const canGather = this.opts.maxBatch > 1 && batchKey(this.pending[0].job.task) !== null && this.pending.length < this.opts.maxBatch;
    if (!canGather) return this.pump();
    this.timer = setTimeout(() => { this.timer = null; this.pump(); }, this.opts.gatherMs ?? 5);
  }

  private pump(): void {
    if (this.busy || !this.pending.length) return;
    const first = this.pending[0];
    const key = this.opts.maxBatch > 1 ? batchKey(first.job.task) : null;
    const take = key === null ? [first] : this.pending.filter((p) => batchKey(p.job.task) === key).slice(0, this.opts.maxBatch);
    for (const p of take) this.pending.splice(this.pending.indexOf(p), 1);
    this.busy = true;
    this.opts.onBatch?.(first.job.task, take.length);
    const outcomes = this.thread.runBatch(take.map((p) => p.job), take.map((p) => p.control));
    take.forEach((p, i) => void outcomes[i].then(p.resolve));
    void Promise.all(outcomes).then(() => {
      this.busy = false;
      this.schedule();
    });
  }
}
