/**
 * Redis plumbing shared by fronts and workers: connections from a `redis://host:port[/db]` URL,
 * the queue (route) a model is served on, and the names of the keys kept beside BullMQ's.
 *
 * A route is one BullMQ queue per model source + adapters + precision: a front sends a request
 * to the queue of the model it was started with, and only workers holding that model take it.
 */
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { InputError } from '../../errors.js';
import { HttpError } from '../errors.js';

/** BullMQ's key prefix and ours. */
export const PREFIX = 'rudolph';

export interface RouteOptions {
  /** preset name, model folder or hub repo id, as given to `--model` */
  model: string;
  /** LoRA adapters applied on top (in order) */
  adapters?: readonly string[];
  precision?: string;
  /** an explicit queue name (when the model's path differs between machines) */
  queue?: string;
}

/** The BullMQ queue for a model/adapters/precision: readable, and unique by a short hash. */
export function routeName(o: RouteOptions): string {
  if (o.queue) {
    if (!/^[\w.-]{1,100}$/.test(o.queue)) throw new InputError(`--queue must be 1-100 letters, digits, '.', '_' or '-', got ${JSON.stringify(o.queue)}`);
    return o.queue;
  }
  const precision = o.precision ?? 'fp32';
  const adapters = o.adapters ?? [];
  const base = o.model.replace(/[\\/]+$/, '').split(/[\\/]/).pop() || 'model';
  const slug = base.replace(/[^\w.-]+/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(JSON.stringify([o.model, adapters, precision])).digest('hex').slice(0, 8);
  return `${slug}${adapters.length ? '+lora' : ''}.${precision}.${hash}`;
}

/** Names of the keys kept beside BullMQ's for one queue. */
export function keys(queue: string) {
  const base = `${PREFIX}:${queue}`;
  return {
    /** set when a job is cancelled (value: the reason), read by the worker that runs it */
    cancel: (id: string) => `${base}:cancel:${id}`,
    /** pub/sub channel: job ids to cancel now */
    cancelChannel: `${base}:cancel-channel`,
    /** pub/sub channel: text tokens of running jobs, `{id, tokens}` (live only, like SSE token events) */
    tokenChannel: `${base}:token-channel`,
    /** the view of a job removed while queued (cancelled before any worker took it) */
    gone: (id: string) => `${base}:gone:${id}`,
    /** hash: worker id → JSON {info, seen, ...} */
    workers: `${base}:workers`,
    /** hash: recent mean job time, for Retry-After */
    stats: `${base}:stats`,
  };
}

export interface RedisUrl { url: string; options: RedisOptions }

/** Parses and checks a redis:// URL (host, port, optional /db, user and password). */
export function parseRedisUrl(url: string): RedisUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(`--redis must be a URL such as redis://127.0.0.1:6379/0, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new InputError(`--redis must start with redis:// or rediss://, got ${JSON.stringify(url)}`);
  const db = u.pathname.replace(/^\//, '');
  if (db && !/^\d+$/.test(db)) throw new InputError(`--redis: the database must be a number (redis://host:port/0), got ${JSON.stringify(db)}`);
  return { url, options: {} };
}

/** How often a connection retries while Redis is away (ms). */
const retryStrategy = (times: number) => Math.min(200 * times, 2000);

/**
 * A connection for commands a request waits on: no offline queue, so while Redis is away a
 * command fails at once (the front answers 503) instead of hanging.
 */
export function commandConnection(r: RedisUrl, name: string): Redis {
  return new Redis(r.url, { ...r.options, connectionName: name, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy, lazyConnect: false });
}

/** A connection for BullMQ workers and event readers (blocking commands; waits out outages). */
export function blockingConnection(r: RedisUrl, name: string): Redis {
  return new Redis(r.url, { ...r.options, connectionName: name, maxRetriesPerRequest: null, retryStrategy });
}

const UNAVAILABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|enableOfflineQueue|Stream isn't writeable|max retries|MaxRetriesPerRequest|timed out|LOADING|ENOTCONN|EHOSTUNREACH/i;

export function unavailable(detail?: string): HttpError {
  return new HttpError(503, 'REDIS_UNAVAILABLE', `the job store (Redis) is unreachable${detail ? ` (${detail})` : ''}; retry shortly`, undefined, { 'retry-after': '1' });
}

/** Runs a Redis operation for a request: connection failures and slow answers become 503 REDIS_UNAVAILABLE. */
export async function guard<T>(client: Redis, op: () => Promise<T>, timeoutMs = 3000): Promise<T> {
  if (client.status !== 'ready') throw unavailable(client.status);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      op(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(unavailable(`no answer in ${timeoutMs} ms`)), timeoutMs); }),
    ]);
  } catch (e) {
    if (e instanceof HttpError) throw e;
    if (UNAVAILABLE.test((e as Error).message ?? '')) throw unavailable((e as Error).message);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
