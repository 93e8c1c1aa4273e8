/**
 * The fastify application: task endpoints (synchronous), jobs (queue, SSE, cancel), health,
 * readiness, info, metrics, the OpenAPI document and the web page. Built around a JobBackend
 * (the in-process queue, or BullMQ/Redis on a cluster front) so the routes are the same
 * whichever runs the jobs, and so it can be tested with `app.inject` or on a real socket
 * without the process-level concerns of serve.ts.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyMultipart from '@fastify/multipart';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RudolphError } from '../errors.js';
import { taskByName, taskCatalog } from '../tasks/registry.js';
import { type JobBackend, type JobView, PRIORITIES, type Priority } from './backend.js';
import { HttpError, type SchemaError, statusFor, validationError } from './errors.js';
import { MAX_IDEMPOTENCY_KEY } from './idempotency.js';
import { frontMetrics } from './metrics.js';
import { multipartBody } from './multipart.js';
import { buildOpenApi } from './openapi.js';
import { type ApiInput, INPUT_SCHEMAS, JOB_PARAMS, JOB_REQUEST, type JobRequest, TASK_NAMES, type TaskName } from './schemas.js';
import { streamJobEvents } from './sse.js';

/** Default request body limit: 16 MiB (JSON with base64 images, or multipart uploads). */
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
/** The web page shipped beside dist/ and src/. */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

/** Requests per client (API key, else IP) and time window: `--rate-limit 60/min`. */
export interface RateLimit { max: number; windowMs: number }

export interface AppOptions {
  backend: JobBackend;
  /** largest request body in bytes (413 beyond) */
  bodyLimit?: number;
  /** the web page's folder; false = no page */
  webDir?: string | false;
  /** one line per request (plain text; ignored when `logger` is given) */
  log?: (line: string) => void;
  /** structured JSON logs (pino): one line per request, with the job id where there is one */
  logger?: Logger;
  /** per-client limit on task and job submissions (429 RATE_LIMITED beyond) */
  rateLimit?: RateLimit;
  /** where rate-limit counters live so every front shares them (cluster mode) */
  rateLimitRedis?: Redis;
}

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Who is asking: the API key (X-API-Key or Authorization: Bearer), else the IP. */
export function clientOf(request: FastifyRequest): string {
  const key = request.headers['x-api-key'];
  if (typeof key === 'string' && key) return `key:${key}`;
  const auth = request.headers.authorization;
  if (auth?.startsWith('Bearer ')) return `key:${auth.slice(7)}`;
  return `ip:${request.ip}`;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { backend } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const started = performance.now();
  const app = Fastify({
    bodyLimit,
    ...(opts.logger ? { loggerInstance: opts.logger, disableRequestLogging: true } : { logger: false }),
    // unknown fields are errors rather than silently dropped; no type coercion
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  const metrics = frontMetrics(backend);

  await app.register(fastifyMultipart, {
    limits: { fileSize: bodyLimit, fieldSize: bodyLimit, files: 300, fields: 300, parts: 600 },
  });
  // Cross-origin isolation: the page's local mode runs onnxruntime-web with WASM threads, which
  // need SharedArrayBuffer, which browsers only give isolated pages (README, "In the browser")
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('cross-origin-opener-policy', 'same-origin').header('cross-origin-embedder-policy', 'require-corp');
  });
  if (opts.rateLimit) {
    await app.register(fastifyRateLimit, {
      global: false,
      max: opts.rateLimit.max,
      timeWindow: opts.rateLimit.windowMs,
      keyGenerator: clientOf,
      ...(opts.rateLimitRedis ? { redis: opts.rateLimitRedis, nameSpace: 'rudolph:ratelimit:', skipOnError: true } : {}),
      errorResponseBuilder: (_request, context) => {
        metrics.rejected('RATE_LIMITED');
        return new HttpError(429, 'RATE_LIMITED', `rate limit of ${context.max} requests per time window exceeded; retry in ${context.after}`, undefined, { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) });
      },
    });
  }
  const limited = opts.rateLimit ? { config: { rateLimit: { max: opts.rateLimit.max, timeWindow: opts.rateLimit.windowMs } } } : {};
  if (opts.webDir !== false) await app.register(fastifyStatic, { root: opts.webDir ?? WEB_DIR, prefix: '/', index: ['index.html'] });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.request(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (opts.logger) {
      request.log.info({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
    } else {
      opts.log?.(`${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`);
    }
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const http = toHttpError(error);
    if (http.statusCode === 429 || http.statusCode === 503) metrics.rejected(http.code);
    if (http.statusCode >= 500 && http.statusCode !== 503) {
      if (opts.logger) request.log.error({ err: error }, 'request failed');
      else opts.log?.(`${request.method} ${request.url}: ${error.stack ?? error.message}`);
    }
    void reply.code(http.statusCode).headers(http.headers).send(http.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new HttpError(404, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`).body());
  });

  const openapi = buildOpenApi(VERSION);
  app.get('/openapi.json', async () => openapi);

  const catalog = taskCatalog();
  app.get('/v1/tasks', async () => ({ tasks: catalog }));

  const uptimeS = () => Math.round((performance.now() - started) / 10) / 100;

  // liveness: answers at once whatever the job store does
  app.get('/v1/health', async () => {
    const h = await backend.health();
    return { ...h, uptimeS: uptimeS(), mode: backend.mode };
  });

  // readiness: 503 while this process cannot take jobs (store unreachable, no worker, draining)
  app.get('/v1/ready', async (_request, reply) => {
    const h = await backend.health();
    if (h.status === 'draining') throw new HttpError(503, 'SHUTTING_DOWN', 'the server is shutting down');
    if (h.redis === 'down') throw new HttpError(503, 'REDIS_UNAVAILABLE', 'the job store (Redis) is unreachable', undefined, { 'retry-after': '1' });
    if (h.queue?.workers === 0) throw new HttpError(503, 'NO_WORKERS', 'no worker serves this model yet', undefined, { 'retry-after': '5' });
    return reply.send({ status: 'ready', mode: backend.mode, queue: h.queue });
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).send(text);
  });

  app.get('/v1/info', async () => {
    const model = await backend.info();
    const h = await backend.health();
    return {
      version: VERSION,
      mode: backend.mode,
      model: { source: model.source, config: model.config, specialTokens: model.specialTokens, files: model.files },
      presets: model.presets,
      tasks: [...TASK_NAMES],
      queue: h.queue,
      threads: model.runtime.threads,
      batchSize: model.batchSize,
      runtime: model.runtime,
      limits: { bodyLimit, maxQueue: backend.maxQueue },
    };
  });

  for (const task of TASK_NAMES) {
    const schema = INPUT_SCHEMAS[task];
    app.post(`/v1/${task}`, {
      schema: { body: schema },
      ...limited,
      preValidation: async (request) => {
        if (request.isMultipart()) request.body = await multipartBody(request, schema, bodyLimit);
      },
    }, async (request, reply) => runSync(task, request.body as ApiInput, request, reply));
  }

  app.post('/v1/jobs', { schema: { body: JOB_REQUEST }, ...limited }, async (request, reply) => {
    const { task, input } = request.body as JobRequest;
    const job = await submit(task, input, request, false);
    return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(job);
  });

  app.get('/v1/jobs', async () => ({ jobs: await backend.list() }));

  app.get('/v1/jobs/:id', { schema: { params: JOB_PARAMS } }, async (request) => found(await backend.get(jobId(request)), request));

  app.delete('/v1/jobs/:id', { schema: { params: JOB_PARAMS } }, async (request) => {
    const id = jobId(request);
    request.log = request.log.child({ jobId: id });
    return found(await backend.cancel(id, 'request'), request);
  });

  app.get('/v1/jobs/:id/events', { schema: { params: JOB_PARAMS } }, async (request, reply) => {
    const id = jobId(request);
    request.log = request.log.child({ jobId: id });
    const streaming = await streamJobEvents(backend, id, reply);
    if (!streaming) found(undefined, request);
  });

  async function submit(task: TaskName, input: ApiInput, request: FastifyRequest, sync: boolean): Promise<JobView> {
    // the checks that need no model answer at once, before the job queues
    (taskByName(task)!.task.check as (o: unknown) => void)(input);
    const key = request.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY)) {
      throw new HttpError(400, 'VALIDATION', `the Idempotency-Key header must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`, 'Idempotency-Key');
    }
    const priority = request.headers['x-priority'];
    if (priority !== undefined && !PRIORITIES.includes(priority as Priority)) {
      throw new HttpError(400, 'VALIDATION', `the X-Priority header must be one of ${PRIORITIES.join(', ')}`, 'X-Priority');
    }
    const job = await backend.submit(task, input, { sync, client: clientOf(request), idempotencyKey: key, priority: priority as Priority | undefined });
    request.log = request.log.child({ jobId: job.id });
    metrics.submitted(task);
    return job;
  }

  async function runSync(task: TaskName, input: ApiInput, request: FastifyRequest, reply: FastifyReply) {
    const t0 = performance.now();
    const job = await submit(task, input, request, true);
    // a client that goes away no longer wants the result
    const onClose = () => { if (!reply.raw.writableFinished) backend.cancel(job.id, 'disconnect').catch(() => {}); };
    reply.raw.once('close', onClose);
    if (request.raw.socket.destroyed) onClose();
    const done = await backend.wait(job.id);
    reply.raw.off('close', onClose);
    metrics.jobEnded(task, done.state, (performance.now() - t0) / 1000);
    if (done.state === 'done') return done.result;
    const error = done.error ?? { code: 'INTERNAL', message: 'the job ended without a result' };
    throw new HttpError(statusFor(error.code), error.code, error.message);
  }

  return app;
}

function jobId(request: FastifyRequest): string {
  return (request.params as { id: string }).id;
}

function found(job: JobView | undefined, request: FastifyRequest): JobView {
  if (!job) throw new HttpError(404, 'NOT_FOUND', `no job ${jobId(request)} (unknown, or finished long enough ago to be dropped)`);
  return job;
}

function toHttpError(error: FastifyError): HttpError {
  if (error instanceof HttpError) return error;
  if (error.validation) return validationError(error.validation as SchemaError[], error.validationContext ?? 'body');
  if (error instanceof RudolphError) return new HttpError(statusFor(error.code), error.code, error.message);
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new HttpError(status, error.code ?? 'BAD_REQUEST', error.message);
  return new HttpError(500, 'INTERNAL', 'internal server error');
}
