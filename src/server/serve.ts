/**
 * `rudolph serve`: loads the model in a worker thread, then listens. close() (and SIGTERM /
 * SIGINT) stops accepting, cancels queued and running jobs (running ones stop within a
 * decoding step), answers what is in flight, ends the worker.
 *
 * With `redis`, it is a stateless front instead: no model here, jobs go to the BullMQ queue of
 * the model (cluster/front.ts) and `rudolph worker`s run them; close() cancels only the
 * synchronous requests this front was answering.
 */
import { type AddressInfo, createServer } from 'node:net';
import type { Logger } from 'pino';
import { InputError } from '../errors.js';
import type { LinearPrecision } from '../model/graph-context.js';
import type { LoadProgress } from '../rudolph.js';
import { buildApp, type RateLimit } from './app.js';
import { isLoopback } from './guard.js';
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
  /** decoded pixels (width × height) of all the images of one request together; more is a 413 (default DEFAULT_MAX_PIXELS, 8192 × 6144) */
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
  /** LoRA adapters (PEFT folders or hub repos) merged into the model, in order (they select the queue in cluster mode) */
  adapters?: string[];
  /** per-client request limit on task and job submissions */
  rateLimit?: RateLimit;
  /** Host names the server is reached by, besides IP addresses and localhost (DNS rebinding guard, guard.ts); '*' = any */
  allowedHosts?: string[];
  /** origins allowed cross-origin requests, form posts included (guard.ts); '*' = any */
  cors?: string[];
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
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InputError(`port must be an integer from 0 to 65535, got ${port}`);
  for (const [name, v] of [['bodyLimit', opts.bodyLimit], ['maxPixels', opts.maxPixels]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 1)) throw new InputError(`${name} must be a positive integer, got ${v}`);
  }
  // the address is tried before the model loads (minutes): a port in use fails at once
  await tryListen(host, port);
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
      model: opts.model, vqgan: opts.vqgan, tokenizer: opts.tokenizer, upscaler: opts.upscaler, cacheDir: opts.cacheDir, revision: opts.revision, token: opts.token, adapters: opts.adapters,
      threads: opts.threads, device: opts.device, precision: opts.precision, offline: opts.offline, batchSize: opts.batchSize, maxPixels: opts.maxPixels,
    }, loadLogger(log));
    worker = thread;
    backend = new JobQueue(thread, { maxQueue, info: () => thread.info() });
  }
  let app;
  try {
    app = await buildApp({
      backend, bodyLimit: opts.bodyLimit, maxPixels: opts.maxPixels, log: opts.log, logger: opts.logger, rateLimit: opts.rateLimit, rateLimitRedis,
      guard: { loopback: isLoopback(host), allowedHosts: opts.allowedHosts ?? [], cors: opts.cors ?? [] },
    });
    await app.listen({ host, port });
  } catch (e) {
    await backend.close();
    await worker?.close();
    rateLimitRedis?.disconnect();
    throw listenError(e, host, port);
  }
  const address = app.server.address() as AddressInfo;
  const bound = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${bound}:${address.port}`;
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

/** Listens on host:port and closes again: the errors `app.listen` would meet, minutes earlier. */
async function tryListen(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (e) {
    throw listenError(e, host, port);
  } finally {
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }
}

function listenError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    EADDRINUSE: 'the port is in use (pick another with --port)',
    EACCES: 'permission denied (ports below 1024 need privileges; pick another with --port)',
    EADDRNOTAVAIL: 'no such address on this machine (--host)',
    ENOTFOUND: 'unknown host name (--host)',
    EAI_AGAIN: 'the host name does not resolve (--host)',
  };
  return code && why[code] ? new InputError(`cannot listen on ${host}:${port}: ${why[code]}`) : e;
}

function loadLogger(log: (line: string) => void): (p: LoadProgress) => void {
  return (p) => {
    if (p.stage !== 'download') return log(`${p.stage} ${p.file}`);
    const pct = p.total ? ` ${Math.floor((100 * (p.loaded ?? 0)) / p.total)}%` : '';
    log(`download ${p.file}${pct}`);
  };
}
