/**
 * The HTTP API's shapes as JSON Schema: fastify validates requests with them and the OpenAPI
 * document is built from them. The task request and result schemas come from the task registry
 * (tasks/registry.ts); the job, error and health shapes are the service's own.
 *
 * Request fields use the facade's option names. Images travel as base64 strings (PNG/JPEG/WebP,
 * a `data:` URL prefix allowed) or as image token ids `{ids: [...]}`.
 */
import { TASK_METHODS, type TaskMethod, TASKS } from '../tasks/registry.js';
import { inputSchema, type JsonSchema } from '../tasks/spec.js';

export type { JsonSchema };

/** Route names (/v1/<name>) of the registered tasks. */
export const TASK_NAMES = TASK_METHODS.map((m) => TASKS[m].name);
export type TaskName = (typeof TASKS)[TaskMethod]['name'];

/** A request body as the API takes it (validated by its schema; images still base64 or ids). */
export type ApiInput = Record<string, unknown>;
/** A result as the API sends it (plain JSON, images as base64 PNG). */
export type ApiOutput = Record<string, unknown>;

export const INPUT_SCHEMAS: Record<string, JsonSchema> = Object.fromEntries(TASK_METHODS.map((m) => [TASKS[m].name, inputSchema(TASKS[m])]));
export const OUTPUT_SCHEMAS: Record<string, JsonSchema> = Object.fromEntries(TASK_METHODS.map((m) => [TASKS[m].name, TASKS[m].output]));

function object(required: string[], properties: Record<string, JsonSchema>, description?: string): JsonSchema {
  return { type: 'object', additionalProperties: false, required, properties, ...(description ? { description } : {}) };
}

export interface JobRequest { task: TaskName; input: ApiInput }

export const JOB_REQUEST: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['task', 'input'],
  properties: {
    task: { type: 'string', enum: [...TASK_NAMES], description: 'the task, as in the /v1/<task> endpoints' },
    input: { type: 'object', description: 'the request body of /v1/<task>' },
  },
  // picks the input schema by task, so errors name the field inside `input`
  allOf: TASK_NAMES.map((task) => ({
    if: { properties: { task: { const: task } }, required: ['task'] },
    then: { properties: { input: INPUT_SCHEMAS[task] } },
  })),
};

export const JOB_PARAMS: JsonSchema = {
  type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
};

const num: JsonSchema = { type: 'number' };

export const ERROR_SCHEMA = object(['statusCode', 'code', 'message'], {
  statusCode: { type: 'integer' },
  code: { type: 'string', description: 'VALIDATION, INPUT, IMAGE, QUEUE_FULL, RATE_LIMITED, NOT_FOUND, ABORTED, SHUTTING_DOWN, REDIS_UNAVAILABLE, NO_WORKERS, IDEMPOTENCY_CONFLICT, WORKER_LOST, ...' },
  message: { type: 'string' },
  field: { type: 'string', description: 'the request field at fault, when there is one' },
});

export const PROGRESS_SCHEMA = object(['task', 'stage', 'done', 'total'], {
  task: { type: 'string' }, stage: { type: 'string' }, done: { type: 'number' }, total: { type: 'number' },
});

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;

export const JOB_SCHEMA = object(['id', 'task', 'state', 'createdAt'], {
  id: { type: 'string' },
  task: { type: 'string', enum: [...TASK_NAMES] },
  state: { type: 'string', enum: [...JOB_STATES] },
  sync: { type: 'boolean', description: 'submitted through a synchronous /v1/<task> request' },
  createdAt: { type: 'string', format: 'date-time' },
  startedAt: { type: 'string', format: 'date-time' },
  finishedAt: { type: 'string', format: 'date-time' },
  position: { type: 'integer', description: 'jobs ahead of this one (queued jobs)' },
  progress: PROGRESS_SCHEMA,
  result: { type: 'object', description: 'the task response (finished jobs)' },
  error: ERROR_SCHEMA,
  stepsAfterCancel: { type: 'integer', description: 'decoding steps the worker ran after it received the cancel' },
  attempts: { type: 'integer', description: 'times a worker started the job (cluster mode: more than 1 after a worker was lost mid-job)' },
});

export const HEALTH_SCHEMA = object(['status', 'uptimeS', 'mode'], {
  status: { type: 'string', enum: ['ok', 'draining', 'degraded'], description: 'degraded: the job store (Redis) is unreachable (cluster mode)' },
  mode: { type: 'string', enum: ['local', 'cluster'] },
  redis: { type: 'string', enum: ['up', 'down'], description: 'cluster mode: whether Redis answers' },
  uptimeS: num,
  queue: object(['running', 'queued', 'maxQueue'], {
    running: { type: 'integer' }, queued: { type: 'integer' }, maxQueue: { type: 'integer' }, workers: { type: 'integer', description: 'live workers (cluster mode)' },
  }),
});
