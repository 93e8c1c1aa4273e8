/**
 * `rudolph serve`: loads the model in a worker thread, then listens. close() (and SIGTERM /
 * SIGINT) stops accepting, cancels queued and running jobs (running ones stop within a
 * decoding step), answers what is in flight, ends the worker.
 */
import type { AddressInfo } from 'node:net';
import { InputError } from '../errors.js';
import type { LinearPrecision } from '../model/graph-context.js';
import type { LoadProgress } from '../rudolph.js';
import { buildApp } from './app.js';
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
  /** largest uploaded image, width × height (default 100 megapixels) */
  maxPixels?: number;
  /** status lines: loading, listening, requests, shutdown */
  log?: (line: string) => void;
  /** close on SIGTERM/SIGINT and let the process exit 0 (default true) */
  handleSignals?: boolean;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const log = opts.log ?? (() => {});
  const maxQueue = opts.maxQueue ?? 16;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new InputError(`maxQueue must be a non-negative integer, got ${maxQueue}`);
  log(`loading ${opts.model}`);
  const worker = await WorkerClient.start({
    model: opts.model, vqgan: opts.vqgan, tokenizer: opts.tokenizer, upscaler: opts.upscaler, cacheDir: opts.cacheDir, revision: opts.revision, token: opts.token,
    threads: opts.threads, device: opts.device, precision: opts.precision, offline: opts.offline, batchSize: opts.batchSize, maxPixels: opts.maxPixels,
  }, loadLogger(log));
  const queue = new JobQueue(worker, { maxQueue });
  let app;
  try {
    app = await buildApp({ queue, modelInfo: () => worker.info(), bodyLimit: opts.bodyLimit, log: opts.log });
    await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
  } catch (e) {
    await worker.close();
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
        await queue.close();
        // answers still being written get a grace period; then every connection is closed
        const grace = setTimeout(() => app.server.closeAllConnections(), CLOSE_GRACE_MS);
        await app.close();
        clearTimeout(grace);
        await worker.close();
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
