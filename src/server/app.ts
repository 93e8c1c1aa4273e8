/**
 * The fastify application: task endpoints (synchronous), jobs (queue, SSE, cancel), health,
 * info, the OpenAPI document and the web page. Built around a JobQueue so it can be tested
 * with `app.inject` or on a real socket without the process-level concerns of serve.ts.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { RudolphError } from '../errors.js';
import type { RudolphInfo } from '../rudolph.js';
import { taskByName, taskCatalog } from '../tasks/registry.js';
import { HttpError, type SchemaError, statusFor, validationError } from './errors.js';
import { type Job, type JobQueue, QueueFullError, ShuttingDownError } from './jobs.js';
import { multipartBody } from './multipart.js';
import { buildOpenApi } from './openapi.js';
import { type ApiInput, INPUT_SCHEMAS, JOB_PARAMS, JOB_REQUEST, type JobRequest, TASK_NAMES, type TaskName } from './schemas.js';
import { streamJobEvents } from './sse.js';

/** Default request body limit: 16 MiB (JSON with base64 images, or multipart uploads). */
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;
/** The web page shipped beside dist/ and src/. */
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const CANCEL_WAIT_MS = 10_000;

export interface AppOptions {
  queue: JobQueue;
  /** the loaded model */
  modelInfo: () => Promise<RudolphInfo>;
  /** largest request body in bytes (413 beyond) */
  bodyLimit?: number;
  /** the web page's folder; false = no page */
  webDir?: string | false;
  /** one line per request */
  log?: (line: string) => void;
}

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { queue } = opts;
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const started = performance.now();
  const app = Fastify({
    bodyLimit,
    logger: false,
    // unknown fields are errors rather than silently dropped; no type coercion
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });

  await app.register(fastifyMultipart, {
    limits: { fileSize: bodyLimit, fieldSize: bodyLimit, files: 300, fields: 300, parts: 600 },
  });
  if (opts.webDir !== false) await app.register(fastifyStatic, { root: opts.webDir ?? WEB_DIR, prefix: '/', index: ['index.html'] });

  if (opts.log) {
    const log = opts.log;
    app.addHook('onResponse', async (request, reply) => {
      log(`${request.method} ${request.url} ${reply.statusCode} ${reply.elapsedTime.toFixed(1)} ms`);
    });
  }

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const http = toHttpError(error);
    if (http.statusCode >= 500) opts.log?.(`${request.method} ${request.url}: ${error.stack ?? error.message}`);
    void reply.code(http.statusCode).headers(http.headers).send(http.body());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(new HttpError(404, 'NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`).body());
  });

  const openapi = buildOpenApi(VERSION);
  app.get('/openapi.json', async () => openapi);

  const catalog = taskCatalog();
  app.get('/v1/tasks', async () => ({ tasks: catalog }));

  app.get('/v1/health', async () => ({
    status: queue.isAccepting ? 'ok' : 'draining',
    uptimeS: Math.round((performance.now() - started) / 10) / 100,
    queue: queue.stats(),
  }));

  app.get('/v1/info', async () => {
    const model = await opts.modelInfo();
    return {
      version: VERSION,
      model: { source: model.source, config: model.config, specialTokens: model.specialTokens, files: model.files },
      presets: model.presets,
      tasks: [...TASK_NAMES],
      queue: queue.stats(),
      threads: model.runtime.threads,
      batchSize: model.batchSize,
      runtime: model.runtime,
      limits: { bodyLimit, maxQueue: queue.maxQueue },
    };
  });

  for (const task of TASK_NAMES) {
    const schema = INPUT_SCHEMAS[task];
    app.post(`/v1/${task}`, {
      schema: { body: schema },
      preValidation: async (request) => {
        if (request.isMultipart()) request.body = await multipartBody(request, schema, bodyLimit);
      },
    }, async (request, reply) => runSync(task, request.body as ApiInput, request, reply));
  }

  app.post('/v1/jobs', { schema: { body: JOB_REQUEST } }, async (request, reply) => {
    const { task, input } = request.body as JobRequest;
    const job = submit(task, input, false);
    return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(queue.view(job));
  });

  app.get('/v1/jobs', async () => ({ jobs: queue.list() }));

  app.get('/v1/jobs/:id', { schema: { params: JOB_PARAMS } }, async (request) => queue.view(findJob(request)));

  app.delete('/v1/jobs/:id', { schema: { params: JOB_PARAMS } }, async (request) => {
    const job = findJob(request);
    queue.cancel(job, 'request');
    await Promise.race([job.finished, new Promise((resolve) => setTimeout(resolve, CANCEL_WAIT_MS).unref())]);
    return queue.view(job);
  });

  app.get('/v1/jobs/:id/events', { schema: { params: JOB_PARAMS } }, (request, reply) => {
    streamJobEvents(queue, findJob(request), reply);
  });

  function submit(task: TaskName, input: ApiInput, sync: boolean): Job {
    // the checks that need no model answer at once, before the job queues
    (taskByName(task)!.task.check as (o: unknown) => void)(input);
    try {
      return queue.submit(task, input, { sync });
    } catch (e) {
      if (e instanceof QueueFullError) throw new HttpError(429, 'QUEUE_FULL', e.message, undefined, { 'retry-after': String(e.retryAfterS) });
      if (e instanceof ShuttingDownError) throw new HttpError(503, 'SHUTTING_DOWN', e.message);
      throw e;
    }
  }

  async function runSync(task: TaskName, input: ApiInput, request: FastifyRequest, reply: FastifyReply) {
    const job = submit(task, input, true);
    // a client that goes away no longer wants the result
    const onClose = () => { if (!reply.raw.writableFinished) queue.cancel(job, 'disconnect'); };
    reply.raw.once('close', onClose);
    if (request.raw.socket.destroyed) onClose();
    await job.finished;
    reply.raw.off('close', onClose);
    if (job.state === 'done') return job.takeResult();
    const error = job.error ?? { code: 'INTERNAL', message: 'the job ended without a result' };
    throw new HttpError(statusFor(error.code), error.code, error.message);
  }

  function findJob(request: FastifyRequest): Job {
    const { id } = request.params as { id: string };
    const job = queue.get(id);
    if (!job) throw new HttpError(404, 'NOT_FOUND', `no job ${id} (unknown, or finished long enough ago to be dropped)`);
    return job;
  }

  return app;
}

function toHttpError(error: FastifyError): HttpError {
  if (error instanceof HttpError) return error;
  if (error.validation) return validationError(error.validation as SchemaError[], error.validationContext ?? 'body');
  if (error instanceof RudolphError) return new HttpError(statusFor(error.code), error.code, error.message);
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new HttpError(status, error.code ?? 'BAD_REQUEST', error.message);
  return new HttpError(500, 'INTERNAL', 'internal server error');
}
