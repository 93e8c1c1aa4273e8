/**
 * multipart/form-data requests for the task endpoints: uploaded files become the base64 image
 * strings the JSON API takes, text fields are read as the route's schema expects, and the
 * resulting object goes through the same validation as a JSON body.
 *
 * Fields: a file part or a base64 text for image fields; repeated parts (or one JSON array)
 * for list fields such as `images`, `classes`, `texts`; JSON text for numbers, booleans and
 * objects (`candidates=4`, `guidance={"weight":0.3}`).
 */
import type { FastifyRequest } from 'fastify';
import { bodyTooLarge, HttpError } from './errors.js';
import type { JsonSchema } from './schemas.js';

type FieldKind = 'text' | 'json' | 'list-text' | 'list-json';

function kindOf(prop: JsonSchema | undefined): FieldKind {
  if (!prop) return 'text';
  if (prop.type === 'array') {
    const items = prop.items as JsonSchema | undefined;
    return items && (items.type === 'string' || items.anyOf) ? 'list-text' : 'list-json';
  }
  return prop.type === 'string' || prop.anyOf ? 'text' : 'json';
}

function parseJson(value: string, field: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new HttpError(400, 'VALIDATION', `${field} must be JSON in a multipart form (a number, true/false, a list or an object), got ${JSON.stringify(value.slice(0, 40))}`, field);
  }
}

/** How long the parser may hold received bytes without consuming them before the body counts as one it cannot parse. */
const STALL_MS = 2000;

/** Reads every part of a multipart request into a body object for `schema`; over `maxBytes` in all is a 413. */
export async function multipartBody(request: FastifyRequest, schema: JsonSchema, maxBytes: number): Promise<Record<string, unknown>> {
  const watchdog = new StallWatchdog(request);
  try {
    return await readParts(request, schema, maxBytes, watchdog);
  } catch (e) {
    // the parser's own errors (busboy: a body cut short, a malformed part header) carry no status:
    // they are the client's malformed body, not a server failure (found by the fuzzer)
    if (e instanceof HttpError || typeof (e as { statusCode?: unknown }).statusCode === 'number') throw e;
    throw new HttpError(400, 'BAD_REQUEST', `the multipart body is malformed: ${(e as Error).message}`);
  } finally {
    watchdog.stop();
  }
}

/**
 * busboy (under @fastify/multipart) stops reading for good after a part without a
 * Content-Disposition header that is larger than its stream buffer (16 KiB): it never drains the
 * skipped part, so the request hangs (found by the fuzzer). This watches for exactly that state —
 * bytes received and waiting (or the body complete) while the parser makes no progress — and
 * fails the request with a 400 instead. A slow client is not a stall: then nothing is waiting.
 */
class StallWatchdog {
  private progress = 0;
  private seen = -1;
  private since = Date.now();
  private readonly timer: NodeJS.Timeout;
  private fail: (e: Error) => void = () => {};
  /** rejects when the parser has stalled */
  readonly stalled = new Promise<never>((_, reject) => { this.fail = reject; });

  constructor(private readonly request: FastifyRequest) {
    this.stalled.catch(() => {});
    this.timer = setInterval(() => this.check(), 250);
    this.timer.unref();
  }

  /** marks progress (a part was delivered; within a part, the request's buffer draining is the progress) */
  tick(): void { this.progress++; }

  /** `work`, or a 400 if the parser stalls first */
  guard<T>(work: Promise<T>): Promise<T> { return Promise.race([work, this.stalled]); }

  stop(): void { clearInterval(this.timer); }

  private check(): void {
    const raw = this.request.raw;
    const state = this.progress * 1e12 + raw.readableLength;
    const waiting = raw.readableLength > 0 || raw.readableEnded || raw.complete;
    if (state !== this.seen || !waiting) {
      this.seen = state;
      this.since = Date.now();
      return;
    }
    if (Date.now() - this.since >= STALL_MS) {
      this.stop();
      this.fail(new HttpError(400, 'BAD_REQUEST', `the multipart body could not be parsed: the parser made no progress for ${STALL_MS / 1000} s with data waiting (a part without a Content-Disposition header?)`));
    }
  }
}

async function readParts(request: FastifyRequest, schema: JsonSchema, maxBytes: number, watchdog: StallWatchdog): Promise<Record<string, unknown>> {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const body: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let total = 0;
  const parts = request.parts()[Symbol.asyncIterator]();
  for (;;) {
    const next = await watchdog.guard(parts.next());
    if (next.done) break;
    watchdog.tick();
    const part = next.value;
    const name = part.fieldname;
    let raw: string;
    if (part.type === 'file') {
      const bytes = await watchdog.guard(part.toBuffer());
      total += bytes.length;
      raw = bytes.toString('base64');
    } else {
      raw = String(part.value);
      total += raw.length;
    }
    if (total > maxBytes) throw bodyTooLarge(maxBytes);
    const kind = kindOf(props[name]);
    const isImageJson = part.type === 'field' && raw.startsWith('{');
    if (kind === 'text') {
      body[name] = isImageJson && props[name]?.anyOf ? parseJson(raw, name) : raw;
    } else if (kind === 'json') {
      body[name] = parseJson(raw, name);
    } else {
      const list = (body[name] ??= []) as unknown[];
      if (part.type === 'field' && raw.startsWith('[')) list.push(...(parseJson(raw, name) as unknown[]));
      else if (kind === 'list-json' || isImageJson) list.push(parseJson(raw, `${name}[${list.length}]`));
      else list.push(raw);
    }
  }
  return { ...body };
}
