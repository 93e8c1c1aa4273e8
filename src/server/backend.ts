/**
 * The job backend: what the HTTP routes (app.ts) need from whatever runs jobs. Two
 * implementations: the in-process queue with its inference thread (jobs.ts, `rudolph serve`)
 * and the BullMQ/Redis one of a stateless front (cluster/front.ts, `rudolph serve --redis`).
 * Both take requests already validated against the task schemas and hand back plain JobViews,
 * so app.ts is one set of routes whichever runs the jobs.
 *
 * Failures a client should see (full queue, shutting down, store unreachable, idempotency
 * conflict) are thrown as HttpError with a stable `code`.
 */
import type { TextToken } from '../generation/streaming.js';
import type { RudolphInfo } from '../rudolph.js';
import type { Progress } from '../util/progress.js';
import type { ApiInput, ApiOutput, TaskName } from './schemas.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export type CancelReason = 'request' | 'disconnect' | 'shutdown';
export type Priority = 'high' | 'normal' | 'low';
export const PRIORITIES: readonly Priority[] = ['high', 'normal', 'low'];

export interface JobFailure { code: string; message: string }

/** What GET /v1/jobs/:id returns. */
export interface JobView {
  id: string;
  task: TaskName;
  state: JobState;
  sync: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  position?: number;
  progress?: Progress;
  result?: ApiOutput;
  error?: JobFailure;
  stepsAfterCancel?: number;
  /** times a worker started the job (more than 1 after a worker was lost mid-job) */
  attempts?: number;
}

export type JobEvent =
  | { type: 'state'; state: JobState; position?: number }
  | { type: 'progress'; progress: Progress }
  /** a streaming task's text token (not kept: only live listeners get it) */
  | { type: 'token'; token: TextToken }
  | { type: 'end'; job: JobView };

export const CANCEL_MESSAGES: Record<CancelReason, string> = {
  request: 'the job was cancelled',
  disconnect: 'the client disconnected',
  shutdown: 'the server is shutting down',
};

/** The error a cancelled job ends with. */
export function cancelError(reason: CancelReason): JobFailure {
  return { code: reason === 'shutdown' ? 'SHUTTING_DOWN' : 'ABORTED', message: CANCEL_MESSAGES[reason] };
}

export interface SubmitOptions {
  /** a synchronous /v1/<task> request (its caller waits; its result is handed over once) */
  sync: boolean;
  /** who asked (API key or IP): scopes idempotency keys */
  client: string;
  /** the client's Idempotency-Key: the same key with the same request returns the same job */
  idempotencyKey?: string;
  priority?: Priority;
}

export interface QueueStats {
  running: number;
  queued: number;
  maxQueue: number;
  /** live workers (cluster mode) */
  workers?: number;
}

export interface BackendHealth {
  /** ok; draining (shutting down); degraded (the job store is unreachable) */
  status: 'ok' | 'draining' | 'degraded';
  queue?: QueueStats;
  redis?: 'up' | 'down';
}

/** A subscription to one job's events; `view` is its state when the subscription began. */
export interface JobWatch { view: JobView; stop(): void }

export interface JobBackend {
  readonly mode: 'local' | 'cluster';
  readonly maxQueue: number;
  /** the model the jobs run on (cluster mode: as a live worker reports it) */
  info(): Promise<RudolphInfo>;
  /** Queues a job; throws HttpError (QUEUE_FULL, SHUTTING_DOWN, REDIS_UNAVAILABLE, IDEMPOTENCY_CONFLICT). */
  submit(task: TaskName, input: ApiInput, opts: SubmitOptions): Promise<JobView>;
  get(id: string): Promise<JobView | undefined>;
  /** Recent jobs, without results. */
  list(): Promise<JobView[]>;
  /** Cancels a job; answers once it has stopped (or after a bounded wait); undefined = no such job. */
  cancel(id: string, reason: CancelReason): Promise<JobView | undefined>;
  /** Resolves when the job has ended, with at least its state, result and error (a synchronous job's result is handed over here). */
  wait(id: string): Promise<JobView>;
  /** Follows a job: the listener gets its state, progress and end events. */
  watch(id: string, listener: (e: JobEvent) => void): Promise<JobWatch | undefined>;
  health(): Promise<BackendHealth>;
  /** Stops accepting and ends (local: cancels) what this process runs. */
  close(): Promise<void>;
}
