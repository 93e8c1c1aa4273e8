/**
 * `rudolph worker --redis …`: a model worker. It loads the model in an inference thread (as
 * `rudolph serve` does), takes jobs from its model's BullMQ queue (`concurrency` at a time,
 * batched on the model where the task allows), reports progress through BullMQ job progress,
 * and records results and failures in the job. Its event loop stays free while the model runs,
 * so BullMQ's locks are renewed; a worker killed mid-job stops renewing them and BullMQ's
 * stalled-job check hands the job to another worker (bounded by `maxStalledCount`).
 *
 * Text tokens of streaming tasks (caption, text) are published on the queue's token channel,
 * gathered for at most PROGRESS_MS, for the fronts' SSE `token` events.
 *
 * Cancels arrive by pub/sub (and a key checked at the start of each job and every second), and
 * reach the inference thread within one decoding step. close() (SIGTERM/SIGINT) stops taking
 * jobs, lets the current ones finish for `shutdownGraceMs`, then returns the rest to the queue
 * for another worker.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { type Job, Queue, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { TextToken } from '../../generation/streaming.js';
import type { Progress } from '../../util/progress.js';
import { cancelError, type CancelReason } from '../backend.js';
import { workerMetrics } from '../metrics.js';
import type { JobError, WorkerOptions } from '../protocol.js';
import type { ApiOutput } from '../schemas.js';
import { WorkerClient } from '../worker-client.js';
import { Batcher } from './batcher.js';
import { DEFAULT_RESULT_TTL_S } from './front.js';
import { type ClusterJobData, failureReason } from './job-data.js';
import { blockingConnection, keys, parseRedisUrl, PREFIX, routeName } from './redis.js';
import { HEARTBEAT_MS, heartbeat } from './registry.js';

export interface WorkerNodeOptions extends WorkerOptions {
  /** redis://host:port[/db] */
  redis: string;
  /** explicit queue name (else derived from model, adapters and precision) */
  queue?: string;
  /** jobs held at once (default 1); compatible ones among them run as one batch */
  concurrency?: number;
  /** run compatible jobs as one batch (default true) */
  batching?: boolean;
  /** BullMQ lock duration: how long a silent worker keeps its jobs (default 30 s) */
  lockDurationMs?: number;
  /** how often workers look for stalled jobs (default 30 s) */
  stalledIntervalMs?: number;
  /** times a job may be handed over after its worker was lost before it fails (default 2) */
  maxStalledCount?: number;
  /** seconds finished jobs stay readable (default 3600) */
  resultTtlS?: number;
  /** /metrics and /health on this port (0 = any free one; absent = none) */
  metricsPort?: number;
  metricsHost?: string;
  /** on close, how long running jobs may finish before they are returned to the queue (default 30 s) */
  shutdownGraceMs?: number;
  logger: Logger;
  /** close on SIGTERM/SIGINT and let the process exit 0 (default true) */
  handleSignals?: boolean;
}

export interface RunningWorker {
  id: string;
  queue: string;
  metricsUrl?: string;
  close(): Promise<void>;
}

interface Active {
  controller: AbortController;
  reason?: CancelReason;
  /** returned to the queue on shutdown instead of failing */
  returning: boolean;
}

const PROGRESS_MS = 100;
const CANCEL_POLL_MS = 1000;
/** stages whose progress counts decoded tokens (per row) */
const DECODE_STAGES = new Set(['image tokens', 'sampling']);

export async function startWorker(opts: WorkerNodeOptions): Promise<RunningWorker> {
  const log = opts.logger;
  const redis = parseRedisUrl(opts.redis);
  const queueName = routeName({ model: opts.model, adapters: opts.adapters, precision: opts.precision, queue: opts.queue });
  const k = keys(queueName);
  const id = `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const concurrency = opts.concurrency ?? 1;
  const batching = opts.batching ?? true;
  const resultTtlS = opts.resultTtlS ?? DEFAULT_RESULT_TTL_S;
  const metrics = workerMetrics();

  log.info({ model: opts.model, queue: queueName }, 'loading the model');
  const t0 = performance.now();
  const model: WorkerOptions = {
    model: opts.model, vqgan: opts.vqgan, tokenizer: opts.tokenizer, upscaler: opts.upscaler, cacheDir: opts.cacheDir, revision: opts.revision, token: opts.token, adapters: opts.adapters,
    threads: opts.threads, device: opts.device, precision: opts.precision, offline: opts.offline, batchSize: opts.batchSize, maxPixels: opts.maxPixels,
  };
  const thread = await WorkerClient.start(model, (p) => log.info({ stage: p.stage, file: p.file }, 'model load'));
  metrics.modelLoaded((performance.now() - t0) / 1000);
  const info = await thread.info();
  log.info({ seconds: Math.round(performance.now() - t0) / 1000 }, 'model loaded');

  const cmd = blockingConnection(redis, 'rudolph-worker');
  const sub = blockingConnection(redis, 'rudolph-worker-cancels');
  for (const c of [cmd, sub]) c.on('error', () => { /* reconnects by itself; BullMQ logs what matters */ });
  const queue = new Queue(queueName, { connection: cmd, prefix: PREFIX });
  queue.on('error', () => {});
  const active = new Map<string, Active>();
  const batcher = new Batcher(thread, { maxBatch: batching ? concurrency : 1, onBatch: (task, n) => metrics.batch(task, n) });
  let meanMs = 0;

  const cancelLocal = (jobId: string, reason: CancelReason) => {
    const a = active.get(jobId);
    if (!a || a.controller.signal.aborted) return;
    a.reason = reason;
    a.controller.abort(new Error(reason));
  };
  await sub.subscribe(k.cancelChannel).catch(() => {});
  sub.on('ready', () => void sub.subscribe(k.cancelChannel).catch(() => {}));
  sub.on('message', (_channel: string, message: string) => {
    try {
      const m = JSON.parse(message) as { id: string; reason: CancelReason };
      cancelLocal(m.id, m.reason);
    } catch { /* not ours */ }
  });
  // cancels published while this worker's subscription was down are still in their keys
  const cancelPoll = setInterval(() => {
    if (cmd.status !== 'ready' || !active.size) return;
    const ids = [...active.keys()];
    void cmd.mget(ids.map((i) => k.cancel(i))).then((reasons) => reasons.forEach((r, i) => { if (r) cancelLocal(ids[i], r as CancelReason); }), () => {});
  }, CANCEL_POLL_MS);

  const processor = async (job: Job<ClusterJobData, ApiOutput, string>, token?: string): Promise<ApiOutput> => {
    const jl = log.child({ jobId: job.id, task: job.data.task, attempt: job.attemptsStarted });
    const { task, input } = job.data;
    if (!input) throw new UnrecoverableError(failureReason({ code: 'INPUT', message: 'the job has no input any more' }));
    const early = await cmd.get(k.cancel(job.id!));
    if (early) {
      jl.info({ reason: early }, 'job cancelled before it started');
      throw new UnrecoverableError(failureReason(cancelError(early as CancelReason)));
    }
    const a: Active = { controller: new AbortController(), returning: false };
    active.set(job.id!, a);
    metrics.busy(active.size);
    jl.info('job started');
    const started = performance.now();
    let lastSent = 0;
    let pendingProgress: Progress | null = null;
    const done = new Map<string, number>();
    const onProgress = (p: Progress) => {
      if (DECODE_STAGES.has(p.stage)) {
        metrics.tokens(task, Math.max(0, p.done - (done.get(p.stage) ?? 0)));
        done.set(p.stage, p.done);
      }
      const now = performance.now();
      if (now - lastSent < PROGRESS_MS && p.done < p.total) { pendingProgress = p; return; }
      lastSent = now;
      pendingProgress = null;
      job.updateProgress(p).catch(() => {});
    };
    let tokens: TextToken[] = [];
    let tokenTimer: NodeJS.Timeout | null = null;
    const flushTokens = async () => {
      if (tokenTimer) clearTimeout(tokenTimer);
      tokenTimer = null;
      if (!tokens.length) return;
      const message = JSON.stringify({ id: job.id, tokens });
      tokens = [];
      await cmd.publish(k.tokenChannel, message).catch(() => {});
    };
    const onToken = (t: TextToken) => {
      tokens.push(t);
      tokenTimer ??= setTimeout(() => void flushTokens(), PROGRESS_MS);
    };
    try {
      const outcome = await batcher.run({ id: job.id!, task, input }, { signal: a.controller.signal, onProgress, onToken });
      await flushTokens();
      if (pendingProgress) await job.updateProgress(pendingProgress).catch(() => {});
      const seconds = (performance.now() - started) / 1000;
      if (a.returning) {
        jl.info('job returned to the queue (shutdown)');
        metrics.jobRun(task, 'returned', seconds);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      meanMs = meanMs ? 0.8 * meanMs + 0.2 * seconds * 1000 : seconds * 1000;
      void cmd.hset(k.stats, 'meanMs', String(Math.round(meanMs))).catch(() => {});
      if (outcome.ok) {
        jl.info({ ms: Math.round(seconds * 1000) }, 'job done');
        metrics.jobRun(task, 'done', seconds);
        return outcome.result;
      }
      throw jobFailure(outcome.error, a, jl, task, seconds);
    } finally {
      if (tokenTimer) clearTimeout(tokenTimer);
      active.delete(job.id!);
      metrics.busy(active.size);
    }
  };

  function jobFailure(error: JobError, a: Active, jl: Logger, task: string, seconds: number): Error {
    if (error.code === 'ABORTED') {
      const f = { ...cancelError(a.reason ?? 'request'), ...(error.stepsAfterCancel !== undefined ? { stepsAfterCancel: error.stepsAfterCancel } : {}) };
      jl.info({ reason: a.reason, stepsAfterCancel: error.stepsAfterCancel }, 'job cancelled');
      metrics.jobRun(task, 'cancelled', seconds);
      return new UnrecoverableError(failureReason(f));
    }
    metrics.jobRun(task, 'failed', seconds);
    // the inference thread died: worth another attempt (bounded by the job's attempts)
    if (error.code === 'RUNTIME' || error.code === 'INTERNAL') {
      jl.error({ code: error.code, err: error.message }, 'job failed (will be retried while attempts remain)');
      return new Error(failureReason({ code: error.code, message: error.message }));
    }
    jl.info({ code: error.code, err: error.message }, 'job failed');
    return new UnrecoverableError(failureReason({ code: error.code, message: error.message }));
  }

  const jobsClient = blockingConnection(redis, 'rudolph-worker-jobs');
  jobsClient.on('error', () => {});
  const worker = new Worker<ClusterJobData, ApiOutput, string>(queueName, processor, {
    connection: jobsClient,
    prefix: PREFIX,
    name: id,
    concurrency,
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: opts.maxStalledCount ?? 2,
    // the queue is polled again at once after an outage
    drainDelay: 1,
  });
  let redisDown = false;
  worker.on('error', (e) => {
    if (!redisDown) log.warn({ err: e.message }, 'Redis unreachable: waiting for it');
    redisDown = true;
  });
  cmd.on('ready', () => {
    if (redisDown) log.info('Redis is back: resuming');
    redisDown = false;
  });
  // a finished job keeps its result, not its input
  const dropInput = (job: Job<ClusterJobData> | undefined) => {
    if (job?.data.input) void job.updateData({ ...job.data, input: null }).catch(() => {});
  };
  worker.on('completed', (job) => dropInput(job));
  worker.on('failed', (job) => {
    if (job && job.finishedOn) dropInput(job);
  });
  worker.on('stalled', (jobId) => log.warn({ jobId }, 'a job stalled (its worker stopped renewing its lock): handed to the queue again'));

  const record = {
    id, host: os.hostname(), pid: process.pid, concurrency, batching, startedAt: new Date().toISOString(), info,
  };
  const beat = () => { if (cmd.status === 'ready') void heartbeat(cmd, k.workers, record).catch(() => {}); };
  // registered before it says it is ready (fronts answer /v1/info from the registry); waits for Redis
  await queue.waitUntilReady();
  await heartbeat(cmd, k.workers, record).catch(() => {});
  const heartbeats = setInterval(beat, HEARTBEAT_MS);
  // results expire even when no other job finishes to trigger BullMQ's own age-based removal
  const cleaner = setInterval(() => {
    if (cmd.status !== 'ready') return;
    for (const type of ['completed', 'failed'] as const) void queue.clean(resultTtlS * 1000, 1000, type).catch(() => {});
  }, Math.min(60_000, Math.max(1000, resultTtlS * 500)));

  let closing: Promise<void> | null = null;
  let server: Server | undefined;
  let metricsUrl: string | undefined;
  if (opts.metricsPort !== undefined) {
    server = createServer((req, res) => {
      if (req.url === '/metrics') {
        void metrics.registry.metrics().then((text) => { res.writeHead(200, { 'content-type': metrics.registry.contentType }); res.end(text); });
      } else if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: closing ? 'draining' : 'ok', id, queue: queueName, jobs: active.size, redis: cmd.status === 'ready' ? 'up' : 'down' }));
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server!.listen(opts.metricsPort, opts.metricsHost ?? '127.0.0.1', resolve));
    const a = server.address() as AddressInfo;
    metricsUrl = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }
  log.info({ id, queue: queueName, concurrency, batching, metrics: metricsUrl }, 'worker ready');

  const close = () => {
    closing ??= (async () => {
      log.info({ jobs: active.size }, 'shutting down: finishing current jobs');
      clearInterval(heartbeats);
      clearInterval(cleaner);
      const grace = setTimeout(() => {
        for (const [jobId, a] of active) {
          log.info({ jobId }, 'grace period over: returning the job to the queue');
          a.returning = true;
          a.controller.abort(new Error('shutdown'));
        }
      }, opts.shutdownGraceMs ?? 30_000);
      await worker.close();
      clearTimeout(grace);
      clearInterval(cancelPoll);
      await cmd.hdel(k.workers, id).catch(() => {});
      await queue.close().catch(() => {});
      await thread.close();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      // connections passed to BullMQ stay open after its close()
      jobsClient.disconnect();
      sub.disconnect();
      cmd.disconnect();
      removeSignals();
      log.info('stopped');
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    log.info(`${signal} received`);
    close().then(() => { process.exitCode = 0; }, (e: unknown) => { log.error({ err: (e as Error).message }, 'shutdown failed'); process.exitCode = 1; });
  };
  const removeSignals = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  if (opts.handleSignals ?? true) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return { id, queue: queueName, metricsUrl, close };
}

