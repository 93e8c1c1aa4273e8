/** rudolph worker: a model worker of a cluster (jobs from BullMQ queues in Redis). */
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { DEFAULT_MAX_PIXELS } from '../../image/index.js';
import { startWorker } from '../../server/cluster/worker-node.js';
import { jsonLogger } from '../../server/logging.js';
import { addModelSourceOptions, addRuntimeOptions, addUpscalerOption, int, type ModelSourceCliOptions, type RuntimeCliOptions } from '../common.js';
import { addClusterOptions, type ClusterCliOptions } from './serve.js';

interface WorkerCliOptions extends ModelSourceCliOptions, RuntimeCliOptions, ClusterCliOptions {
  concurrency: number;
  batching: boolean;
  metricsPort?: number;
  metricsHost: string;
  lockDuration: number;
  stalledInterval: number;
  maxStalls: number;
  shutdownGrace: number;
  maxPixels: number;
}

export function workerCommand(): Command {
  const cmd = new Command('worker')
    .description('model worker for `rudolph serve --redis` fronts: loads the model and runs jobs from its queue in Redis')
    .option('--concurrency <n>', 'jobs held at once; compatible ones (same task) run as one batch', int('--concurrency', 1, 256), 1)
    .option('--no-batching', 'run held jobs one at a time even when they could be batched')
    .option('--metrics-port <port>', 'serve /metrics and /health on this port (0 = any free one)', int('--metrics-port'))
    .option('--metrics-host <host>', 'address for /metrics', '127.0.0.1')
    .option('--lock-duration <ms>', 'how long a job stays locked to a silent worker before another takes it', int('--lock-duration', 1000), 30_000)
    .option('--stalled-interval <ms>', 'how often to look for jobs of lost workers', int('--stalled-interval', 500), 30_000)
    .option('--max-stalls <n>', 'times a job may be taken over from a lost worker before it fails', int('--max-stalls', 0), 2)
    .option('--max-pixels <n>', 'decoded pixels (width × height) of all the images of one job together; more fails the job (LIMIT)', int('--max-pixels', 1), DEFAULT_MAX_PIXELS)
    .option('--shutdown-grace <ms>', 'on SIGTERM, time for running jobs to finish before they are returned to the queue', int('--shutdown-grace'), 30_000);
  return addClusterOptions(addRuntimeOptions(addUpscalerOption(addModelSourceOptions(cmd))))
    .addHelpText('after', `
Примеры:
  $ rudolph worker --redis redis://127.0.0.1:6379
  $ rudolph worker --redis redis://10.0.0.5:6379/0 --model ./моя-модель --concurrency 8 --threads 4 --metrics-port 9100`)
    .action(async (o: WorkerCliOptions) => {
      if (!o.redis) throw new InputError('rudolph worker needs --redis redis://host:port (the fronts\' Redis)');
      const logger = jsonLogger('worker');
      await startWorker({
        model: o.model, vqgan: o.vqgan, tokenizer: o.tokenizer, upscaler: o.upscaler, cacheDir: o.cacheDir, revision: o.revision, token: o.token, offline: o.offline, adapters: o.adapter,
        threads: o.threads, batchSize: o.batchSize, precision: o.precision, device: o.device,
        redis: o.redis, queue: o.queue, concurrency: o.concurrency, batching: o.batching, resultTtlS: o.resultTtl,
        metricsPort: o.metricsPort, metricsHost: o.metricsHost, lockDurationMs: o.lockDuration, stalledIntervalMs: o.stalledInterval,
        maxStalledCount: o.maxStalls, shutdownGraceMs: o.shutdownGrace, maxPixels: o.maxPixels, logger,
      });
      await new Promise<never>(() => {});
    });
}
