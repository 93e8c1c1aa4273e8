/**
 * The OpenAPI 3.1 document served at /openapi.json, built from the same schemas that
 * validate requests.
 */
import {
  ERROR_SCHEMA, HEALTH_SCHEMA, INPUT_SCHEMAS, JOB_REQUEST, JOB_SCHEMA, OUTPUT_SCHEMAS, PROGRESS_SCHEMA,
  type JsonSchema,
} from './schemas.js';
import { TASK_METHODS, TASKS } from '../tasks/registry.js';

const json = (schema: JsonSchema) => ({ 'application/json': { schema } });
const error = (description: string, headers?: JsonSchema) => ({ description, content: json(ERROR_SCHEMA), ...(headers ? { headers } : {}) });
const RETRY_AFTER = { 'Retry-After': { description: 'seconds until the queue likely has room', schema: { type: 'integer' } } };
const jobId = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];

const QUEUED_ERRORS = {
  400: error('invalid request: the message and `field` name the problem'),
  413: error('request body over the size limit'),
  422: error('IDEMPOTENCY_CONFLICT: the Idempotency-Key was used for another request'),
  429: error('QUEUE_FULL (the job queue is full) or RATE_LIMITED (this client\'s request limit)', RETRY_AFTER),
  503: error('SHUTTING_DOWN, or (cluster mode) REDIS_UNAVAILABLE: the job store is unreachable', RETRY_AFTER),
};
const SUBMIT_HEADERS: JsonSchema[] = [
  { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 200 }, description: 'a retried request with the same key (per API key or IP) returns the same job' },
  { name: 'X-Priority', in: 'header', required: false, schema: { type: 'string', enum: ['high', 'normal', 'low'] }, description: 'queue order (default normal)' },
];

export function buildOpenApi(version: string): JsonSchema {
  const paths: Record<string, JsonSchema> = {};
  for (const method of TASK_METHODS) {
    const { name: task, summary } = TASKS[method];
    paths[`/v1/${task}`] = {
      post: {
        operationId: task.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()),
        summary,
        parameters: SUBMIT_HEADERS,
        description: 'Runs synchronously: the response comes when the job is done. Closing the connection cancels the job. '
          + 'Images can also be uploaded as multipart/form-data file parts (other fields as form fields; numbers and objects as JSON text).',
        requestBody: {
          required: true,
          content: { ...json(INPUT_SCHEMAS[task]), 'multipart/form-data': { schema: INPUT_SCHEMAS[task] } },
        },
        responses: { 200: { description: 'the result', content: json(OUTPUT_SCHEMAS[task]) }, ...QUEUED_ERRORS, 500: error('inference failed') },
      },
    };
  }
  paths['/v1/jobs'] = {
    post: {
      operationId: 'submitJob',
      summary: 'Queue any task; follow it with GET /v1/jobs/{id}/events',
      parameters: SUBMIT_HEADERS,
      requestBody: { required: true, content: json(JOB_REQUEST) },
      responses: { 202: { description: 'queued', content: json(JOB_SCHEMA) }, ...QUEUED_ERRORS },
    },
    get: {
      operationId: 'listJobs',
      summary: 'Recent jobs (without results)',
      responses: { 200: { description: 'jobs', content: json({ type: 'object', properties: { jobs: { type: 'array', items: JOB_SCHEMA } } }) } },
    },
  };
  paths['/v1/jobs/{id}'] = {
    get: {
      operationId: 'getJob', summary: 'A job: state, progress, result or error', parameters: jobId,
      responses: { 200: { description: 'the job', content: json(JOB_SCHEMA) }, 404: error('no such job (or it was dropped)') },
    },
    delete: {
      operationId: 'cancelJob', summary: 'Cancel a job; answers when it has stopped (within one decoding step)', parameters: jobId,
      responses: { 200: { description: 'the job after cancelling', content: json(JOB_SCHEMA) }, 404: error('no such job') },
    },
  };
  paths['/v1/jobs/{id}/events'] = {
    get: {
      operationId: 'jobEvents',
      summary: 'Server-Sent Events: `state` ({state, position?}), `progress` ({task, stage, done, total}), for caption and text `token` ({candidate, token, text, delta, done}: each sampled token as it is generated; `text` is the candidate\'s text so far), then one of `done` (the job with the reranked result), `failed`, `cancelled` and the stream ends',
      parameters: jobId,
      responses: {
        200: { description: 'event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        404: error('no such job'),
      },
    },
  };
  paths['/v1/tasks'] = {
    get: {
      operationId: 'tasks', summary: 'Every task with its fields (types, defaults, limits, labels): what forms are built from',
      responses: { 200: { description: 'the task registry', content: json({ type: 'object', properties: { tasks: { type: 'array', items: { type: 'object' } } } }) } },
    },
  };
  paths['/v1/health'] = {
    get: { operationId: 'health', summary: 'Liveness (answers while a job runs)', responses: { 200: { description: 'alive', content: json(HEALTH_SCHEMA) } } },
  };
  paths['/v1/ready'] = {
    get: {
      operationId: 'ready', summary: 'Readiness: 200 when jobs can be taken; 503 SHUTTING_DOWN, REDIS_UNAVAILABLE or NO_WORKERS',
      responses: { 200: { description: 'ready', content: json({ type: 'object' }) }, 503: error('not ready') },
    },
  };
  paths['/metrics'] = {
    get: { operationId: 'metrics', summary: 'Prometheus metrics (text format)', responses: { 200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } },
  };
  paths['/v1/info'] = {
    get: { operationId: 'info', summary: 'Model, presets, queue, threads, limits', responses: { 200: { description: 'info', content: json({ type: 'object' }) } } },
  };
  return {
    openapi: '3.1.0',
    info: { title: 'rudolph-ts', version, description: 'RUDOLPH text ↔ image ↔ text over HTTP. Lower scores and perplexities are better.' },
    paths,
    components: { schemas: { Error: ERROR_SCHEMA, Job: JOB_SCHEMA, Progress: PROGRESS_SCHEMA } },
  };
}
