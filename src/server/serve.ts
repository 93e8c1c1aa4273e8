/**
 * `rudolph serve`: loads the model in a worker thread, then listens. close() (and SIGTERM /
 * SIGINT) stops accepting, cancels queued and running jobs (running ones stop within a
 * decoding step), answers what is in flight, ends the worker.
 *
 * With `redis`, it is a stateless front instead: no model here, jobs go to the BullMQ queue of
 * the model (cluster/front.ts) and `rudolph worker`s run them; close() cancels only the
 * synchronous requests this front was answering.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { InputError } from '../errors.js';
import type { LinearPrecision } from '../model/graph-context.js';
import type { LoadProgress } from '../rudolph.js';
import { buildApp, type RateLimit } from './app.js';
import type { JobBackend } from './backend.js';
import { ClusterBackend } from './cluster/front.js';
import { commandConnection, parseRedisUrl } from './cluster/redis.js';
import { JobQueue } from './jobs.js';
import { WorkerClient } from './worker-client.js';

const CLOSE_GRACE_MS = 1000;

export interface ServeOptions {
  /** preset name, model folder or hub repo id */
  model: string;
  vqgan?: string;
  tokenizer?: string;
  /** a folder with RealESRGAN_x{2,4,8}.pth for /v1/upscale and dream's upscale (default: the hub's, each scale on first use) */
  upscaler?: string;
  cacheDir?: string;
  /** branch, tag or commit of the model repo */
  revision?: string;
  /** Hugging Face access token (default: HF_TOKEN) */
  token?: string;
  /** default 127.0.0.1 */
  host?: string;
  /** default 8080; 0 picks a free port */
  port?: number;
  /** jobs that may wait behind the running one (default 16); more get 429 */
  maxQueue?: number;
  /** onnxruntime threads in the worker (default: all cores) */
  threads?: number;
  /** 'cuda' needs onnxruntime-node's CUDA binaries (README) */
  device?: 'cpu' | 'cuda';
  precision?: LinearPrecision;
  /** never use the network (the model must be cached) */
  offline?: boolean;
  batchSize?: number;
  /** request body limit in bytes (default 16 MiB) */
  bodyLimit?: number;
  /** largest uploaded image, width × height (default DEFAULT_MAX_PIXELS, 8192 × 6144) */
  maxPixels?: number;
  /** status lines: loading, listening, requests, shutdown */
  log?: (line: string) => void;
  /** structured JSON logs instead of `log` lines */
  logger?: Logger;
  /** redis://host:port[/db]: run as a cluster front (no model in this process) */
  redis?: string;
  /** cluster mode: seconds finished jobs stay readable (default 3600) */
  resultTtlS?: number;
  /** cluster mode: the queue name, when the model path differs between machines */
  queue?: string;
  /** LoRA adapters (they select the queue in cluster mode) */
  adapters?: string[];
  /** per-client request limit on task and job submissions */
  rateLimit?: RateLimit;
  /** close on SIGTERM/SIGINT and let the process exit 0 (default true) */
  handleSignals?: boolean;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const log = opts.logger ? (line: string) => opts.logger!.info(line) : (opts.log ?? (() => {}));
  const maxQueue = opts.maxQueue ?? 16;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new InputError(`maxQueue must be a non-negative integer, got ${maxQueue}`);
  let backend: JobBackend;
  let worker: WorkerClient | null = null;
  const rateLimitRedis = opts.redis && opts.rateLimit ? commandConnection(parseRedisUrl(opts.redis), 'rudolph-ratelimit') : undefined;
  rateLimitRedis?.on('error', () => {});
  if (opts.redis) {
    const front = new ClusterBackend({
      redis: opts.redis, maxQueue, resultTtlS: opts.resultTtlS, logger: opts.logger,
      route: { model: opts.model, adapters: opts.adapters, precision: opts.precision, queue: opts.queue },
    });
    log(`cluster front for queue ${front.queueName} on ${opts.redis}`);
    if (!(await front.ready())) log('Redis does not answer yet: requests get 503 REDIS_UNAVAILABLE until it does');
    backend = front;
  } else {
    log(`loading ${opts.model}`);
    const thread = await WorkerClient.start({
      model: opts.model, vqgan: opts.vqgan, tokenizer: opts.tokenizer, upscaler: opts.upscaler, cacheDir: opts.cacheDir, revision: opts.revision, token: opts.token,
      threads: opts.threads, device: opts.device, precision: opts.precision, offline: opts.offline, batchSize: opts.batchSize, maxPixels: opts.maxPixels,
    }, loadLogger(log));
    worker = thread;
    backend = new JobQueue(thread, { maxQueue, info: () => thread.info() });
  }
  let app;
  try {
    app = await buildApp({ backend, bodyLimit: opts.bodyLimit, log: opts.log, logger: opts.logger, rateLimit: opts.rateLimit, rateLimitRedis });
    await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
  } catch (e) {
    await backend.close();
    await worker?.close();
    rateLimitRedis?.disconnect();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new InputError(`cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 8080}: ${code === 'EADDRINUSE' ? 'the port is in use (pick another with --port)' : code}`);
    }
    throw e;
  }
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log(`listening on ${url}`);

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      log('shutting down: cancelling jobs');
      try {
        await backend.close();
        // answers still being written get a grace period; then every connection is closed
        const grace = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
        await app.close();
        clearTimeout(grace);
        await worker?.close();
        rateLimitRedis?.disconnect();
      } finally {
        removeSignals();
      }
      log('stopped');
    })();
    return closing;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log(`${signal} again: exiting now`);
      process.exit(1);
    }
    log(`${signal} received`);
    close().then(() => { process.exitCode = 0; }, (e: unknown) => { log(`shutdown failed: ${(e as Error).message}`); process.exitCode = 1; });
  };
  const removeSignals = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  if (opts.handleSignals ?? true) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  return { url, close };
}

function loadLogger(log: (line: string) => void): (p: LoadProgress) => void {
  return (p) => {
    if (p.stage !== 'download') return log(`${p.stage} ${p.file}`);
    const pct = p.total ? ` ${Math.floor((100 * (p.loaded ?? 0)) / p.total)}%` : '';
    log(`download ${p.file}${pct}`);
  };
}
