/** rudolph serve: the HTTP service and web page (alone, or as a cluster front with --redis). */
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { DEFAULT_MAX_PIXELS } from '../../image/index.js';
import { DEFAULT_BODY_LIMIT, type RateLimit } from '../../server/app.js';
import { jsonLogger } from '../../server/logging.js';
import { startServer } from '../../server/serve.js';
import { addModelSourceOptions, addRuntimeOptions, addUpscalerOption, int, type ModelSourceCliOptions, type RuntimeCliOptions } from '../common.js';

const WINDOWS: Record<string, number> = { s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** "60/min" → 60 requests per 60 000 ms. */
export function parseRateLimit(v: string): RateLimit {
  const m = /^\s*(\d+)\s*\/\s*(\d*)\s*(s|sec|m|min|h)\s*$/.exec(v);
  if (!m || Number(m[1]) < 1) throw new InputError(`--rate-limit must look like 60/min, 5/s or 1000/h, got "${v}"`);
  return { max: Number(m[1]), windowMs: (m[2] ? Number(m[2]) : 1) * WINDOWS[m[3]] };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1e3, kb: 1e3, kib: 1024, m: 1e6, mb: 1e6, mib: 2 ** 20, g: 1e9, gb: 1e9, gib: 2 ** 30 };

/** "16MiB" → 16777216, "512kb" → 512000, "1000" → 1000. */
export function byteSize(flag: string) {
  return (v: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
    const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
    const n = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new InputError(`${flag} must be a size in bytes ≥ 1, optionally with a unit (KB, KiB, MB, MiB, GB, GiB), got "${v}"`);
    return n;
  };
}

export interface ClusterCliOptions { redis?: string; queue?: string; resultTtl: number; logJson?: boolean }

/** Options shared by serve (front) and worker in cluster mode. */
export function addClusterOptions(cmd: Command): Command {
  return cmd
    .option('--redis <url>', 'redis://host:port[/db]: run as a cluster front / worker with jobs in Redis (BullMQ)')
    .option('--queue <name>', 'queue name (default: derived from --model, adapters and --precision; give the same on fronts and workers)')
    .option('--result-ttl <s>', 'seconds finished jobs and their results stay in Redis', int('--result-ttl', 1), 3600)
    .option('--log-json', 'JSON log lines (pino) on stderr (always on with --redis)');
}

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('HTTP API (JSON, OpenAPI at /openapi.json) and a web page at / for every task; with --redis a stateless front for `rudolph worker`s')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free one)', int('--port', 0, 65535), 8080)
    .option('--max-pixels <n>', 'decoded pixels (width × height) of all the images of one request together; more: 413', int('--max-pixels', 1), DEFAULT_MAX_PIXELS)
    .option('--body-limit <size>', 'largest request body, bytes or with a unit (16MiB, 512KB); more: 413', byteSize('--body-limit'), DEFAULT_BODY_LIMIT)
    .option('--allowed-host <name...>', 'Host names the server is reached by besides IP addresses and localhost (DNS rebinding guard; "*" = any)')
    .option('--cors <origin...>', 'origins allowed cross-origin requests, form posts included (e.g. https://app.example; "*" = any)')
    .option('--max-queue <n>', 'jobs waiting (with --redis: in the whole queue) before 429', int('--max-queue'), 16)
    .option('--rate-limit <n/window>', 'task and job submissions per client (API key, else IP), e.g. 60/min; beyond: 429');
  return addClusterOptions(addRuntimeOptions(addUpscalerOption(addModelSourceOptions(cmd))))
    .addHelpText('after', `
Примеры:
  $ rudolph serve                          # http://127.0.0.1:8080, страница и API
  $ rudolph serve --model ./моя-модель --port 9000 --max-queue 4
  $ rudolph serve --redis redis://127.0.0.1:6379 --port 8081   # фронт кластера
  $ rudolph worker --redis redis://127.0.0.1:6379 --concurrency 4 # рабочий процесс модели
  $ curl -s localhost:8080/v1/classify -H 'content-type: application/json' \\
      -d '{"image": "<base64 PNG>", "classes": ["кошка", "собака"]}'`)
    .action(async (o: ModelSourceCliOptions & RuntimeCliOptions & ClusterCliOptions & {
      host: string; port: number; maxQueue: number; rateLimit?: string; maxPixels: number; bodyLimit: number; allowedHost?: string[]; cors?: string[];
    }) => {
      const json = o.logJson || o.redis !== undefined;
      const logger = json ? jsonLogger(o.redis ? 'front' : 'serve') : undefined;
      const server = await startServer({
        ...o, adapters: o.adapter, resultTtlS: o.resultTtl, rateLimit: o.rateLimit ? parseRateLimit(o.rateLimit) : undefined, allowedHosts: o.allowedHost,
        logger, log: json ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      if (logger) logger.info({ url: server.url }, 'serving');
      else process.stderr.write(`rudolph: serving on ${server.url} (Ctrl-C to stop)\n`);
      // the process lives until SIGTERM/SIGINT, which the server handles (graceful shutdown, exit 0)
      await new Promise<never>(() => {});
    });
}
