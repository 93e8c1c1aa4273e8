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

const STATUS: Record<string, number> = {
  VALIDATION: 400, INPUT: 400, IMAGE: 400, CONFIG: 400, TOKENIZER: 400,
  NOT_FOUND: 404,
  ABORTED: 409,
  QUEUE_FULL: 429,
  SHUTTING_DOWN: 503,
};

/** The status for a job or library error code (500 for anything not the client's doing). */
export function statusFor(code: string): number {
  return STATUS[code] ?? 500;
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
