/**
 * How failures become HTTP responses: one JSON shape `{statusCode, code, message, field?}`,
 * statuses chosen from the library's error codes, and ajv validation errors rewritten to
 * name the field at fault.
 */

export interface ErrorBody { statusCode: number; code: string; message: string; field?: string }

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): ErrorBody {
    return { statusCode: this.statusCode, code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) };
  }
}

/**
 * Every `code` an error response may carry, with its status: the API's stable contract (clients
 * and the page key their messages on it, never on the English text). Library error codes come
 * from RudolphError; the rest are the service's own.
 */
export const ERROR_CODES = {
  // the request is wrong
  VALIDATION: 400, INPUT: 400, IMAGE: 400, CONFIG: 400, TOKENIZER: 400, BAD_REQUEST: 400,
  HOST_NOT_ALLOWED: 403, CROSS_ORIGIN: 403,
  NOT_FOUND: 404,
  ABORTED: 409,
  LIMIT: 413, BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_CONFLICT: 422,
  QUEUE_FULL: 429, RATE_LIMITED: 429,
  // the server cannot answer now
  SHUTTING_DOWN: 503, REDIS_UNAVAILABLE: 503, NO_WORKERS: 503, NO_MODEL: 503,
  // the server failed
  INTERNAL: 500, RUNTIME: 500, CHECKPOINT: 500, WEIGHTS: 500, DOWNLOAD: 500, OFFLINE: 500, INTEGRITY: 500, TRAINING: 500, WORKER_LOST: 500,
} as const satisfies Record<string, number>;

export type ApiErrorCode = keyof typeof ERROR_CODES;

/** The status for a job or library error code (500 for anything not the client's doing). */
export function statusFor(code: string): number {
  return (ERROR_CODES as Record<string, number>)[code] ?? 500;
}

/** fastify's and its plugins' own 4xx codes, as ours. */
const FASTIFY_CODES: Record<string, ApiErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_PARTS_LIMIT: 'BODY_TOO_LARGE',
  FST_FILES_LIMIT: 'BODY_TOO_LARGE',
  FST_FIELDS_LIMIT: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

/** A 4xx from fastify or a plugin as one of our codes (BAD_REQUEST when it has none of its own); the body limit is named. */
export function clientError(status: number, fastifyCode: string | undefined, message: string, bodyLimit: number): HttpError {
  const code = FASTIFY_CODES[fastifyCode ?? ''] ?? (status === 413 ? 'BODY_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST');
  if (code === 'BODY_TOO_LARGE') return bodyTooLarge(bodyLimit);
  return new HttpError(ERROR_CODES[code] === status ? status : ERROR_CODES[code], code, message);
}

export function bodyTooLarge(bodyLimit: number): HttpError {
  return new HttpError(413, 'BODY_TOO_LARGE', `the request body is over the limit of ${bodyLimit} bytes (serve --body-limit)`);
}

/** The parts of an ajv error we read. */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** "/images/2/ids" → "images[2].ids"; the request part ("body", "params") is the prefix when the path is empty. */
export function fieldName(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').filter(Boolean).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(extra);
  return parts.reduce((out, p) => (/^\d+$/.test(p) ? `${out}[${p}]` : out ? `${out}.${p}` : p), '');
}

const IMAGE_HINT = 'must be a base64-encoded PNG/JPEG/WebP image (a data: URL is accepted) or {"ids": [image token ids]}';

/** The most useful of ajv's errors (first-error mode), as a 400 naming the field. */
export function validationError(errors: SchemaError[], context: string): HttpError {
  // if/then (POST /v1/jobs) and anyOf report a summary after the branch errors
  const anyOf = errors.find((e) => e.keyword === 'anyOf');
  const e = anyOf ?? errors.find((x) => x.keyword !== 'if') ?? errors[0];
  if (!e) return new HttpError(400, 'VALIDATION', `${context} is invalid`);
  let field = fieldName(e.instancePath);
  let problem: string;
  switch (e.keyword) {
    case 'required':
      field = fieldName(e.instancePath, String(e.params.missingProperty));
      problem = 'is required';
      break;
    case 'additionalProperties':
      field = fieldName(e.instancePath, String(e.params.additionalProperty));
      problem = 'is not a known field';
      break;
    case 'anyOf':
      problem = IMAGE_HINT;
      break;
    case 'enum':
      problem = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    default:
      problem = e.message ?? `fails ${e.keyword}`;
  }
  const where = field || context;
  return new HttpError(400, 'VALIDATION', `${where} ${problem}`, where);
}
