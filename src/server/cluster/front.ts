/**
 * The job backend of a stateless HTTP front (`rudolph serve --redis …`): jobs are BullMQ jobs
 * in Redis (input as job data, result as its return value, progress through job progress,
 * failures as a JSON failed reason), kept for `resultTtlS` after they end. Any front answers
 * for any job: state is read from Redis, and events (progress, start, end) come from BullMQ's
 * event stream, text tokens from the queue's token channel (pub/sub), so SSE works whichever
 * front the client is on.
 *
 * Cancelling sets a key the worker checks and publishes the id (the worker holding the job
 * aborts it within one decoding step); a job still queued is removed at once and its
 * cancelled view kept for the TTL. While Redis is unreachable every request that needs it
 * answers 503 REDIS_UNAVAILABLE at once; the connections reconnect by themselves.
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { TextToken } from '../../generation/streaming.js';
import type { RudolphInfo } from '../../rudolph.js';
import type { Progress } from '../../util/progress.js';
import { taskByName } from '../../tasks/registry.js';
import {
  type BackendHealth, cancelError, type CancelReason, type JobBackend, type JobEvent, type JobView, type JobWatch, type Priority, type QueueStats, type SubmitOptions,
} from '../backend.js';
import { HttpError } from '../errors.js';
import { keyedJobId, requestHash } from '../idempotency.js';
import { idempotencyConflict } from '../jobs.js';
import type { ApiInput, ApiOutput, TaskName } from '../schemas.js';
import { type ClusterJob, type ClusterJobData, viewOf } from './job-data.js';
import { blockingConnection, commandConnection, guard, keys, parseRedisUrl, PREFIX, type RouteOptions, routeName } from './redis.js';
import { liveWorkers, type WorkerRecord } from './registry.js';

export const DEFAULT_RESULT_TTL_S = 3600;
/** results of synchronous jobs are read once, by the waiting front: kept briefly */
const SYNC_KEEP_S = 60;
const CANCEL_WAIT_MS = 10_000;
/** a waiting request re-reads its job this often, in case an event was missed */
const WAIT_POLL_MS = 2000;
const HEALTH_CACHE_MS = 250;
/** BullMQ priorities: lower runs first */
const PRIORITY: Record<Priority, number> = { high: 1, normal: 2, low: 3 };

export interface ClusterFrontOptions {
  /** redis://host:port[/db] */
  redis: string;
  route: RouteOptions;
  /** jobs waiting in the queue (all fronts together) before 429 */
  maxQueue: number;
  /** how long finished jobs (inputs dropped, results kept) stay readable */
  resultTtlS?: number;
  /** runs of a job before it fails for good when its worker crashes (besides stalls) */
  attempts?: number;
  cancelWaitMs?: number;
  logger?: Logger;
}

export class ClusterBackend implements JobBackend {
  readonly mode = 'cluster';
  readonly maxQueue: number;
  readonly queueName: string;
  private readonly resultTtlS: number;
  private readonly client: Redis;
  private readonly queue: Queue<ClusterJobData, unknown, string>;
  private readonly events: QueueEvents;
  private readonly eventsClient: Redis;
  /** subscribed to the token channel */
  private readonly tokensClient: Redis;
  private readonly tokensSubscribed: Promise<boolean>;
  private readonly keys: ReturnType<typeof keys>;
  private readonly listeners = new Map<string, Set<(e: JobEvent) => void>>();
  /** synchronous requests waiting for a result: the completed event carries it (no re-read) */
  private readonly results = new Map<string, (result: ApiOutput) => void>();
  /** synchronous jobs this front waits on (cancelled when it shuts down) */
  private readonly syncJobs = new Set<string>();
  private closing = false;
  private cachedHealth: { at: number; value: BackendHealth } | null = null;

  constructor(private readonly opts: ClusterFrontOptions) {
    const redis = parseRedisUrl(opts.redis);
    this.maxQueue = opts.maxQueue;
    this.resultTtlS = opts.resultTtlS ?? DEFAULT_RESULT_TTL_S;
    this.queueName = routeName(opts.route);
    this.keys = keys(this.queueName);
    this.client = commandConnection(redis, 'rudolph-front');
    this.client.on('error', () => { /* reported by guard() as 503s and by /v1/health */ });
    this.queue = new Queue(this.queueName, { connection: this.client, prefix: PREFIX });
    this.queue.on('error', () => {});
    this.eventsClient = blockingConnection(redis, 'rudolph-front-events');
    this.eventsClient.on('error', () => {});
    this.events = new QueueEvents(this.queueName, { connection: this.eventsClient, prefix: PREFIX });
    this.events.on('error', () => {});
    this.events.on('active', ({ jobId }) => this.emit(jobId, { type: 'state', state: 'running' }));
    this.events.on('progress', ({ jobId, data }) => {
      if (typeof data === 'object' && data !== null) this.emit(jobId, { type: 'progress', progress: data as Progress });
    });
    this.tokensClient = blockingConnection(redis, 'rudolph-front-tokens');
    this.tokensClient.on('error', () => {});
    // ioredis subscribes again by itself after a reconnect
    this.tokensSubscribed = this.tokensClient.subscribe(this.keys.tokenChannel).then(() => true, () => false);
    this.tokensClient.on('message', (_channel: string, message: string) => {
      let m: { id?: unknown; tokens?: unknown };
      try { m = JSON.parse(message) as typeof m; } catch { return; }
      if (typeof m.id !== 'string' || !Array.isArray(m.tokens) || !this.listeners.has(m.id)) return;
      for (const token of m.tokens as TextToken[]) this.emit(m.id, { type: 'token', token });
    });
    const requeued = ({ jobId }: { jobId: string }) => this.emit(jobId, { type: 'state', state: 'queued' });
    this.events.on('waiting', requeued);
    this.events.on('stalled', requeued);
    const ended = ({ jobId }: { jobId: string }) => void this.ended(jobId);
    this.events.on('completed', ({ jobId, returnvalue }) => {
      const take = this.results.get(jobId);
      if (take && typeof returnvalue === 'object' && returnvalue !== null) take(returnvalue as ApiOutput);
      void this.ended(jobId);
    });
    this.events.on('failed', ended);
    this.events.on('removed', ended);
  }

  /** Resolves once Redis has answered (or after `timeoutMs`; the front serves 503s until then). */
  async ready(timeoutMs = 5000): Promise<boolean> {
    const ok = await Promise.race([
      this.queue.waitUntilReady().then(() => this.events.waitUntilReady()).then(() => this.tokensSubscribed, () => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref()),
    ]);
    return ok;
  }

  async info(): Promise<RudolphInfo> {
    const workers = await this.workers();
    const newest = workers.sort((a, b) => b.seen - a.seen)[0];
    if (!newest) throw new HttpError(503, 'NO_WORKERS', `no worker serves queue ${this.queueName} yet (start one with rudolph worker --redis … and the same --model)`, undefined, { 'retry-after': '5' });
    return newest.info;
  }

  async submit(task: TaskName, input: ApiInput, opts: SubmitOptions): Promise<JobView> {
    if (this.closing) throw new HttpError(503, 'SHUTTING_DOWN', 'the server is shutting down');
    // a fixed seed makes a rerun (after a worker is lost) produce the same bytes
    const fields = taskByName(task)?.task.fields as Record<string, unknown> | undefined;
    const seeded = fields && 'seed' in fields && input.seed === undefined ? { ...input, seed: Math.floor(Math.random() * 2 ** 32) } : input;
    const hash = requestHash(task, input, opts.sync);
    const id = opts.idempotencyKey !== undefined ? keyedJobId(opts.client, opts.idempotencyKey) : randomUUID();
    return guard(this.client, async () => {
      if (opts.idempotencyKey !== undefined) {
        const earlier = await Job.fromId<ClusterJobData, unknown, string>(this.queue, id);
        if (earlier) {
          if (earlier.data.hash !== hash) throw idempotencyConflict(opts.idempotencyKey);
          return (await this.get(id))!;
        }
      }
      const counts = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed');
      const queued = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
      if (queued >= this.maxQueue) {
        const retry = await this.retryAfterS(queued);
        throw new HttpError(429, 'QUEUE_FULL', `the queue is full (${queued} jobs waiting); retry in ${retry} s`, undefined, { 'retry-after': String(retry) });
      }
      const keep = { age: opts.sync ? Math.min(SYNC_KEEP_S, this.resultTtlS) : this.resultTtlS };
      const job = await this.queue.add(task, { task, input: seeded, sync: opts.sync, hash }, {
        jobId: id,
        priority: PRIORITY[opts.priority ?? 'normal'],
        attempts: this.opts.attempts ?? 3,
        removeOnComplete: keep,
        removeOnFail: keep,
      });
      if (opts.sync) this.syncJobs.add(job.id!);
      return { id: job.id!, task, state: 'queued', sync: opts.sync, createdAt: new Date(job.timestamp).toISOString() } satisfies JobView;
    });
  }

  async get(id: string): Promise<JobView | undefined> {
    return guard(this.client, async () => {
      // the state first, then the job: a job read before it ended and its state after would look
      // done without a result
      const state = await this.queue.getJobState(id);
      const job = state === 'unknown' ? undefined : await Job.fromId<ClusterJobData, unknown, string>(this.queue, id);
      const view = job && viewOf(job as ClusterJob, state);
      if (view) return view;
      const gone = await this.client.get(this.keys.gone(id));
      return gone ? (JSON.parse(gone) as JobView) : undefined;
    });
  }

  async list(): Promise<JobView[]> {
    return guard(this.client, async () => {
      const views: JobView[] = [];
      for (const state of ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const) {
        for (const job of await this.queue.getJobs([state], 0, 49)) {
          const view = job && viewOf(job as ClusterJob, state, false);
          if (view) views.push(view);
        }
      }
      return views;
    });
  }

  async cancel(id: string, reason: CancelReason): Promise<JobView | undefined> {
    const view = await this.get(id);
    if (!view || isFinished(view)) return view;
    await guard(this.client, async () => {
      await this.client.set(this.keys.cancel(id), reason, 'EX', this.resultTtlS);
      await this.client.publish(this.keys.cancelChannel, JSON.stringify({ id, reason }));
    });
    if (view.state === 'queued') {
      const job = await guard(this.client, () => Job.fromId(this.queue, id));
      const removed = await job?.remove().then(() => true, () => false);
      if (removed) {
        const cancelled: JobView = { ...view, state: 'cancelled', finishedAt: new Date().toISOString(), error: cancelError(reason) };
        await guard(this.client, () => this.client.set(this.keys.gone(id), JSON.stringify(cancelled), 'EX', this.resultTtlS));
        this.emit(id, { type: 'end', job: cancelled });
        return cancelled;
      }
    }
    return this.waitEnd(id, this.opts.cancelWaitMs ?? CANCEL_WAIT_MS);
  }

  async wait(id: string): Promise<JobView> {
    let take!: Promise<JobView>;
    const fromEvent = new Promise<JobView>((resolve) => {
      this.results.set(id, (result) => resolve({ id, task: '' as TaskName, state: 'done', sync: true, createdAt: '', result }));
    });
    try {
      take = this.waitEnd(id);
      return await Promise.race([take, fromEvent]);
    } finally {
      this.results.delete(id);
      this.syncJobs.delete(id);
      take?.catch(() => {});
    }
  }

  async watch(id: string, listener: (e: JobEvent) => void): Promise<JobWatch | undefined> {
    const stop = this.listen(id, listener);
    try {
      const view = await this.get(id);
      if (!view) {
        stop();
        return undefined;
      }
      return { view, stop };
    } catch (e) {
      stop();
      throw e;
    }
  }

  async health(): Promise<BackendHealth> {
    if (this.cachedHealth && performance.now() - this.cachedHealth.at < HEALTH_CACHE_MS) return this.cachedHealth.value;
    let value: BackendHealth;
    try {
      const [counts, workers] = await guard(this.client, () => Promise.all([
        this.queue.getJobCounts('active', 'waiting', 'prioritized', 'delayed'),
        this.workers(),
      ]), 1000);
      const queue: QueueStats = {
        running: counts.active ?? 0,
        queued: (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0),
        maxQueue: this.maxQueue,
        workers: workers.length,
      };
      value = { status: this.closing ? 'draining' : 'ok', queue, redis: 'up' };
    } catch {
      value = { status: this.closing ? 'draining' : 'degraded', redis: 'down' };
    }
    this.cachedHealth = { at: performance.now(), value };
    return value;
  }

  async close(): Promise<void> {
    this.closing = true;
    // synchronous requests on this front lose their client: their jobs are cancelled
    await Promise.all([...this.syncJobs].map((id) => this.cancel(id, 'shutdown').catch(() => undefined)));
    await this.events.close().catch(() => {});
    await this.queue.close().catch(() => {});
    // connections passed to BullMQ stay open after its close()
    this.eventsClient.disconnect();
    this.tokensClient.disconnect();
    this.client.disconnect();
  }

  // ---- internals ----

  private async workers(): Promise<WorkerRecord[]> {
    return liveWorkers(this.client, this.keys.workers);
  }

  private async retryAfterS(queued: number): Promise<number> {
    const [mean, workers] = await Promise.all([this.client.hget(this.keys.stats, 'meanMs'), this.workers()]);
    const ms = Number(mean) > 0 ? Number(mean) : 1000;
    return Math.max(1, Math.ceil((ms * (queued + 1)) / Math.max(1, workers.length) / 1000));
  }

  private listen(id: string, listener: (e: JobEvent) => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  private emit(id: string, e: JobEvent): void {
    for (const l of this.listeners.get(id) ?? []) {
      try { l(e); } catch { /* a broken stream must not stop the others */ }
    }
  }

  /** A job's end event (or, after a retry is scheduled, its return to the queue). */
  private async ended(id: string): Promise<void> {
    if (!this.listeners.has(id)) return;
    const view = await this.get(id).catch(() => undefined);
    if (!view) return;
    this.emit(id, isFinished(view) ? { type: 'end', job: view } : { type: 'state', state: view.state });
  }

  /** Resolves with the job's view once it has ended; with `timeoutMs`, with its view then. */
  private waitEnd(id: string, timeoutMs?: number): Promise<JobView> {
    return new Promise<JobView>((resolve, reject) => {
      let settled = false;
      const finish = (view: JobView | undefined, error?: unknown) => {
        if (settled) return;
        settled = true;
        stop();
        clearInterval(poll);
        clearTimeout(timer);
        if (view) resolve(view);
        else reject(error ?? new HttpError(404, 'NOT_FOUND', `job ${id} is gone (expired or removed)`));
      };
      const check = () => this.get(id).then((v) => { if (!v || isFinished(v)) finish(v); }, (e: unknown) => {
        // the store is away: keep waiting (the job goes on), unless this was a one-off check with a deadline
        if (!(e instanceof HttpError && e.code === 'REDIS_UNAVAILABLE')) finish(undefined, e);
      });
      const stop = this.listen(id, (e) => { if (e.type === 'end') finish(e.job); });
      const poll = setInterval(check, WAIT_POLL_MS);
      const timer = timeoutMs !== undefined ? setTimeout(() => { void this.get(id).then((v) => finish(v), (e: unknown) => finish(undefined, e)); }, timeoutMs) : undefined;
      void check();
    });
  }
}

function isFinished(v: JobView): boolean {
  return v.state === 'done' || v.state === 'failed' || v.state === 'cancelled';
}
