/**
 * The in-process job backend: one job runs at a time on the inference thread, at most
 * `maxQueue` wait behind it (higher priorities first). Every request (synchronous or POST
 * /v1/jobs) becomes a job; finished jobs are kept for a while so their results can be fetched,
 * then dropped so memory stays bounded.
 */
import { randomUUID } from 'node:crypto';
import { InputError } from '../errors.js';
import type { TextToken } from '../generation/streaming.js';
import type { RudolphInfo } from '../rudolph.js';
import type { Progress } from '../util/progress.js';
import {
  type BackendHealth, CANCEL_MESSAGES, cancelError, type CancelReason, type JobBackend, type JobEvent, type JobFailure, type JobState,
  type JobView, type JobWatch, PRIORITIES, type Priority, type QueueStats, type SubmitOptions,
} from './backend.js';
import { HttpError } from './errors.js';
import { requestHash } from './idempotency.js';
import type { JobError, JobMessage, RunOutcome } from './protocol.js';
import type { ApiInput, ApiOutput, TaskName } from './schemas.js';
import type { TaskRunner } from './worker-client.js';

export type { CancelReason, JobEvent, JobFailure, JobState, JobView };

export class Job {
  readonly id = randomUUID();
  readonly createdAt = new Date();
  state: JobState = 'queued';
  startedAt?: Date;
  finishedAt?: Date;
  progress?: Progress;
  result?: ApiOutput;
  error?: JobFailure;
  cancelReason?: CancelReason;
  stepsAfterCancel?: number;
  readonly controller = new AbortController();
  /** settles when the job reaches done, failed or cancelled */
  readonly finished: Promise<void>;
  private settle!: () => void;
  private readonly listeners = new Set<(e: JobEvent) => void>();

  /** the request, held only until the worker has it (uploads can be large) */
  private input: ApiInput | null;

  constructor(readonly task: TaskName, input: ApiInput, readonly sync: boolean, readonly priority: Priority = 'normal') {
    this.input = input;
    this.finished = new Promise((resolve) => { this.settle = resolve; });
  }

  /** The request, handed over once to whoever runs the job. */
  takeInput(): ApiInput {
    const input = this.input;
    if (!input) throw new Error(`job ${this.id}: its input was already taken`);
    this.input = null;
    return input;
  }

  /** The result, handed over once for synchronous jobs (their caller is the only reader). */
  takeResult(): ApiOutput | undefined {
    const r = this.result;
    if (this.sync) this.result = undefined;
    return r;
  }

  get isFinished(): boolean { return this.state === 'done' || this.state === 'failed' || this.state === 'cancelled'; }

  /** Listens until the job ends; returns the unsubscribe. */
  subscribe(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(e: JobEvent): void {
    for (const l of this.listeners) {
      // a failing listener (a broken stream) must not stall the queue
      try { l(e); } catch { this.listeners.delete(l); }
    }
  }

  end(state: 'done' | 'failed' | 'cancelled'): void {
    this.state = state;
    this.finishedAt = new Date();
    this.emit({ type: 'end', job: this.view() });
    this.listeners.clear();
    this.settle();
  }

  view(position?: number): JobView {
    return {
      id: this.id, task: this.task, state: this.state, sync: this.sync,
      createdAt: this.createdAt.toISOString(),
      ...(this.startedAt ? { startedAt: this.startedAt.toISOString() } : {}),
      ...(this.finishedAt ? { finishedAt: this.finishedAt.toISOString() } : {}),
      ...(position !== undefined ? { position } : {}),
      ...(this.progress ? { progress: this.progress } : {}),
      ...(this.result ? { result: this.result } : {}),
      ...(this.error ? { error: this.error } : {}),
      ...(this.stepsAfterCancel !== undefined ? { stepsAfterCancel: this.stepsAfterCancel } : {}),
    };
  }
}

export class QueueFullError extends Error {
  constructor(readonly retryAfterS: number, readonly maxQueue: number) {
    super(`the queue is full (${maxQueue} jobs waiting); retry in ${retryAfterS} s`);
    this.name = 'QueueFullError';
  }
}

export class ShuttingDownError extends Error {
  constructor() {
    super('the server is shutting down');
    this.name = 'ShuttingDownError';
  }
}

export interface JobQueueOptions {
  /** jobs that may wait behind the running one */
  maxQueue: number;
  /** the loaded model's description */
  info?: () => Promise<RudolphInfo>;
  /** how long DELETE waits for a running job to stop */
  cancelWaitMs?: number;
  /** finished jobs kept for GET /v1/jobs/:id (oldest dropped first) */
  keepFinished?: number;
  /** how long a finished job is kept */
  keepMs?: number;
}

const CANCEL_WAIT_MS = 10_000;

export class JobQueue implements JobBackend {
  readonly mode = 'local';
  private readonly jobs = new Map<string, Job>();
  /** idempotency key (scoped by client) → job id and request hash */
  private readonly keys = new Map<string, { id: string; hash: string }>();
  private readonly waiting: Job[] = [];
  private running: Job | null = null;
  private accepting = true;
  /** recent job durations, for Retry-After */
  private readonly durations: number[] = [];
  readonly maxQueue: number;
  private readonly keepFinished: number;
  private readonly keepMs: number;

  constructor(private readonly runner: TaskRunner, private readonly opts: JobQueueOptions) {
    if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 0) throw new InputError(`maxQueue must be a non-negative integer, got ${opts.maxQueue}`);
    this.maxQueue = opts.maxQueue;
    this.keepFinished = opts.keepFinished ?? 100;
    this.keepMs = opts.keepMs ?? 10 * 60_000;
  }

  /** Queues a job; throws QueueFullError or ShuttingDownError. */
  enqueue(task: TaskName, input: ApiInput, opts: { sync: boolean; priority?: Priority }): Job {
    if (!this.accepting) throw new ShuttingDownError();
    if (this.waiting.length >= this.maxQueue && this.running) throw new QueueFullError(this.retryAfterS(), this.maxQueue);
    this.prune();
    const job = new Job(task, input, opts.sync, opts.priority);
    this.jobs.set(job.id, job);
    // behind every job of the same or a higher priority
    const rank = PRIORITIES.indexOf(job.priority);
    const at = this.waiting.findIndex((j) => PRIORITIES.indexOf(j.priority) > rank);
    if (at < 0) this.waiting.push(job); else this.waiting.splice(at, 0, job);
    this.pump();
    return job;
  }

  job(id: string): Job | undefined { return this.jobs.get(id); }

  // ---- JobBackend ----

  async info(): Promise<RudolphInfo> {
    if (!this.opts.info) throw new HttpError(503, 'NO_MODEL', 'no model is loaded');
    return this.opts.info();
  }

  async submit(task: TaskName, input: ApiInput, opts: SubmitOptions): Promise<JobView> {
    let keyed: string | undefined;
    let hash = '';
    if (opts.idempotencyKey !== undefined) {
      keyed = `${opts.client}\0${opts.idempotencyKey}`;
      hash = requestHash(task, input, opts.sync);
      const seen = this.keys.get(keyed);
      const earlier = seen && this.jobs.get(seen.id);
      if (seen && earlier) {
        if (seen.hash !== hash) throw idempotencyConflict(opts.idempotencyKey);
        return this.view(earlier);
      }
    }
    try {
      const job = this.enqueue(task, input, { sync: opts.sync, priority: opts.priority });
      if (keyed) this.keys.set(keyed, { id: job.id, hash });
      return this.view(job);
    } catch (e) {
      if (e instanceof QueueFullError) throw new HttpError(429, 'QUEUE_FULL', e.message, undefined, { 'retry-after': String(e.retryAfterS) });
      if (e instanceof ShuttingDownError) throw new HttpError(503, 'SHUTTING_DOWN', e.message);
      throw e;
    }
  }

  async get(id: string): Promise<JobView | undefined> {
    const job = this.jobs.get(id);
    return job && this.view(job);
  }

  async cancel(id: string, reason: CancelReason): Promise<JobView | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    this.cancelJob(job, reason);
    const waitMs = this.opts.cancelWaitMs ?? CANCEL_WAIT_MS;
    await Promise.race([job.finished, new Promise((resolve) => setTimeout(resolve, waitMs).unref())]);
    return this.view(job);
  }

  async wait(id: string): Promise<JobView> {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, 'NOT_FOUND', `no job ${id}`);
    await job.finished;
    const view = this.view(job);
    // a synchronous job's caller is its only reader: the result is not kept
    job.takeResult();
    return view;
  }

  async watch(id: string, listener: (e: JobEvent) => void): Promise<JobWatch | undefined> {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    const view = this.view(job);
    const stop = job.isFinished ? () => {} : job.subscribe(listener);
    return { view, stop: () => { stop(); } };
  }

  async health(): Promise<BackendHealth> {
    return { status: this.accepting ? 'ok' : 'draining', queue: this.stats() };
  }

  /** Jobs ahead of a queued one. */
  position(job: Job): number | undefined {
    const i = this.waiting.indexOf(job);
    return i < 0 ? undefined : i + (this.running ? 1 : 0);
  }

  view(job: Job): JobView { return job.view(this.position(job)); }

  /** Every kept job, without results. */
  async list(): Promise<JobView[]> {
    return [...this.jobs.values()].map((j) => {
      const { result: _, ...rest } = this.view(j);
      return rest;
    });
  }

  /** Cancels a queued job at once, or asks the worker to stop a running one. */
  cancelJob(job: Job, reason: CancelReason): void {
    if (job.isFinished) return;
    job.cancelReason ??= reason;
    const i = this.waiting.indexOf(job);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      job.error = cancelError(reason);
      job.takeInput();
      job.end('cancelled');
      this.announcePositions();
    } else {
      job.controller.abort(new Error(CANCEL_MESSAGES[reason]));
    }
  }

  stats(): QueueStats {
    return { running: this.running ? 1 : 0, queued: this.waiting.length, maxQueue: this.maxQueue };
  }

  get isAccepting(): boolean { return this.accepting; }

  /** Seconds until a slot is likely free: recent job time × jobs ahead. */
  retryAfterS(): number {
    const recent = this.durations.length ? this.durations.reduce((a, b) => a + b, 0) / this.durations.length : 1000;
    return Math.max(1, Math.ceil((recent * (this.waiting.length + 1)) / 1000));
  }

  /** Stops accepting, cancels every queued and running job, waits until they have ended. */
  async close(): Promise<void> {
    this.accepting = false;
    const pending = [...this.waiting, ...(this.running ? [this.running] : [])];
    for (const job of pending) this.cancelJob(job, 'shutdown');
    await Promise.all(pending.map((j) => j.finished));
  }

  private pump(): void {
    if (this.running) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.running = job;
    this.announcePositions();
    job.state = 'running';
    job.startedAt = new Date();
    job.emit({ type: 'state', state: 'running' });
    const onProgress = (p: Progress) => { job.progress = p; job.emit({ type: 'progress', progress: p }); };
    const onToken = (token: TextToken) => job.emit({ type: 'token', token });
    const message: JobMessage = { id: job.id, task: job.task, input: job.takeInput() };
    const outcome = this.runner.run(message, { onProgress, onToken, signal: job.controller.signal })
      .catch((e: unknown): RunOutcome => ({ ok: false, error: { code: 'INTERNAL', message: (e as Error).message } }));
    void outcome.then((outcome) => {
      this.durations.push(Date.now() - job.startedAt!.getTime());
      if (this.durations.length > 20) this.durations.shift();
      if (outcome.ok) {
        job.result = outcome.result;
        job.end('done');
      } else {
        this.fail(job, outcome.error);
      }
      this.running = null;
      this.pump();
    });
  }

  private fail(job: Job, error: JobError): void {
    if (error.code === 'ABORTED' && job.cancelReason) {
      job.error = cancelError(job.cancelReason);
      job.stepsAfterCancel = error.stepsAfterCancel;
      job.end('cancelled');
    } else {
      job.error = { code: error.code, message: error.message };
      job.end('failed');
    }
  }

  private announcePositions(): void {
    this.waiting.forEach((job, i) => job.emit({ type: 'state', state: 'queued', position: i + (this.running ? 1 : 0) }));
  }

  /** Drops finished jobs past their keep time or beyond the keep count. */
  private prune(): void {
    const now = Date.now();
    const finished = [...this.jobs.values()].filter((j) => j.isFinished);
    let excess = finished.length - this.keepFinished;
    for (const job of finished) {
      if (excess > 0 || now - job.finishedAt!.getTime() > this.keepMs) {
        this.jobs.delete(job.id);
        excess--;
      }
    }
    for (const [key, { id }] of this.keys) if (!this.jobs.has(id)) this.keys.delete(key);
  }
}

export function idempotencyConflict(key: string): HttpError {
  return new HttpError(422, 'IDEMPOTENCY_CONFLICT', `Idempotency-Key ${JSON.stringify(key)} was used for a different request`);
}
