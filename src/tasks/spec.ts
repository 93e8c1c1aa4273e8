/**
 * How a task is described once, for every surface: its input fields (types, defaults, limits,
 * descriptions, labels), its function, its result's JSON schema and a text summary of a result.
 * The facade's methods, the CLI commands and help, the HTTP routes and validation, OpenAPI, the
 * page's forms and the README's task table are all derived from these descriptions
 * (registry.ts lists them).
 *
 * Images are a field type of their own: the library takes an RgbImage or `{ids}`, HTTP a base64
 * string or `{ids}`, the CLI a file path; each surface converts at its edge.
 */
import type { TokenControl } from '../generation/streaming.js';
import type { RgbImage } from '../image/index.js';
import type { RunControl } from '../util/progress.js';
import type { TaskContext } from './context.js';

/** A JSON Schema object (the subset of draft-07 that both ajv and OpenAPI 3.1 read the same way). */
export type JsonSchema = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** How a field shows on the command line. */
export interface CliHint {
  /** an argument rather than an option; 'variadic' takes the rest of the arguments (a list field) */
  positional?: true | 'variadic';
  /** a one-letter alias, e.g. '-n' */
  short?: string;
  /** for a boolean that defaults to true: the flag that turns it off (default --no-<name>) */
  off?: string;
}

interface FieldBase {
  description: string;
  /** short labels for forms (the page), Russian and English */
  label?: { ru: string; en: string };
  cli?: CliHint;
}

export type Field =
  | FieldBase & { type: 'string'; default?: string; minLength?: number; maxLength?: number }
  /** `enum`: the only values allowed (a choice on the CLI, a select on the page) */
  | FieldBase & { type: 'integer'; default?: number; minimum?: number; maximum?: number; enum?: readonly number[] }
  | FieldBase & { type: 'number'; default?: number; minimum?: number; exclusiveMinimum?: number; maximum?: number }
  | FieldBase & { type: 'boolean'; default?: boolean }
  /** RgbImage | {ids} (library), base64 | {ids} (HTTP), a file (CLI) */
  | FieldBase & { type: 'image' }
  | FieldBase & { type: 'images'; maxItems: number }
  | FieldBase & { type: 'strings'; minItems?: number; maxItems: number; maxLength: number }
  | FieldBase & { type: 'integers'; minItems?: number; maxItems: number; minimum?: number }
  | FieldBase & { type: 'object'; fields: Readonly<Record<string, Field>> };

/** The options a task's function takes, less what callers decide rather than request (run control, streaming, batch size). */
export type RequestOf<O> = Omit<O, keyof RunControl | keyof TokenControl | 'batchSize'>;

export interface TaskSpec<O = never, R = unknown> {
  /** HTTP route `/v1/<name>`, CLI command `rudolph <name>` */
  readonly name: string;
  /** one line: what it does */
  readonly summary: string;
  /** every request field, with its default */
  readonly fields: { readonly [K in keyof RequestOf<O>]-?: Field };
  readonly required: readonly (keyof RequestOf<O> & string)[];
  /** the function, over options with run control */
  readonly run: (ctx: TaskContext, o: O) => Promise<R>;
  /**
   * Several requests run as one batch on the model (tasks/batch.ts), each result equal to its
   * `run` alone and settling on its own; absent when the task has no batched form.
   */
  readonly runMany?: (ctx: TaskContext, list: readonly O[]) => Promise<R>[];
  /**
   * Set when the task needs no RUDOLPH model, only what it names: `run` then reads nothing of
   * the context but that (a `StandaloneContext`), and the CLI opens only that.
   */
  readonly standalone?: 'upscaler';
  /** the task takes `onToken` (TokenControl): the CLI offers --stream, the jobs API sends `token` events */
  readonly streams?: true;
  /** the CLI's file name for output image `index` (default `<task>-<seed>-<index>.png`) */
  readonly fileName?: (input: O, index: number, imageFiles: readonly string[]) => string;
  /** the checks that need no model (the CLI and the server run them before any model work; `run` runs them too) */
  readonly check: (o: O) => void;
  /** JSON schema of the result as the HTTP API sends it (RgbImages as {png, width, height}) */
  readonly output: JsonSchema;
  /** the result as lines of text (CLI); `imageFiles` names the image inputs of a list field (e.g. the files ranked) */
  readonly format: (result: R, input: O, imageFiles: readonly string[]) => string[];
  /** CLI examples */
  readonly examples: readonly string[];
}

/** Typed identity: checks that `fields` covers exactly the task's options. */
export function defineTask<O, R>(spec: TaskSpec<O, R>): TaskSpec<O, R> {
  return spec;
}

/**
 * The caller's options over a task's defaults (undefined counts as absent). Each task keeps its
 * defaults in one object that its field specs refer to, so a default is written once.
 */
export function applyDefaults<O extends object, D extends Partial<O>>(defaults: D, options: O): O & Required<Pick<O, keyof D & keyof O>> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) out[k] = v;
  return out as O & Required<Pick<O, keyof D & keyof O>>;
}

// ---- JSON Schema (HTTP validation, OpenAPI) ---------------------------------------------------

export const IMAGE_DESCRIPTION = 'a base64-encoded PNG/JPEG/WebP image (a data: URL is accepted) or {"ids": [image token ids]}';

const IMAGE_SCHEMA: JsonSchema = {
  description: IMAGE_DESCRIPTION,
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object', required: ['ids'], additionalProperties: false,
      properties: { ids: { type: 'array', maxItems: 65536, items: { type: 'integer', minimum: 0 } } },
    },
  ],
};

function fieldSchema(f: Field): JsonSchema {
  const { description } = f;
  const bounds = (o: Record<string, number | string | boolean | undefined>): JsonSchema => {
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
    return out;
  };
  switch (f.type) {
    case 'string': return { type: 'string', description, ...bounds({ minLength: f.minLength, maxLength: f.maxLength, default: f.default }) };
    case 'integer': return {
      type: 'integer', description, ...bounds({ minimum: f.minimum, maximum: f.maximum, default: f.default }), ...(f.enum ? { enum: [...f.enum] } : {}),
    };
    case 'number': return { type: 'number', description, ...bounds({ minimum: f.minimum, exclusiveMinimum: f.exclusiveMinimum, maximum: f.maximum, default: f.default }) };
    case 'boolean': return { type: 'boolean', description, ...bounds({ default: f.default }) };
    case 'image': return { ...IMAGE_SCHEMA, description: `${description}: ${IMAGE_DESCRIPTION}` };
    case 'images': return { type: 'array', description, minItems: 1, maxItems: f.maxItems, items: IMAGE_SCHEMA };
    case 'strings': return { type: 'array', description, minItems: f.minItems ?? 1, maxItems: f.maxItems, items: { type: 'string', minLength: 1, maxLength: f.maxLength } };
    case 'integers': return { type: 'array', description, minItems: f.minItems ?? 1, maxItems: f.maxItems, items: bounds({ type: 'integer', minimum: f.minimum }) };
    case 'object': return objectSchema(f.fields, [], description);
  }
}

function objectSchema(fields: Readonly<Record<string, Field>>, required: readonly string[], description?: string): JsonSchema {
  const properties: JsonSchema = {};
  for (const [k, f] of Object.entries(fields)) properties[k] = fieldSchema(f);
  return { type: 'object', additionalProperties: false, required: [...required], properties, ...(description ? { description } : {}) };
}

/** The request body's JSON schema (HTTP). */
export function inputSchema(spec: { fields: object; required: readonly string[]; summary: string }): JsonSchema {
  return objectSchema(spec.fields as Record<string, Field>, spec.required, spec.summary);
}

// ---- results as JSON ------------------------------------------------------------------------------

/** The JSON form of a result type, as `resultToJson` makes it with {png, width, height} images (HTTP). */
export type ResultJson<T> = T extends ArrayBufferView ? number[]
  : T extends readonly (infer U)[] ? ResultJson<U>[]
  : T extends object
    ? { [K in keyof T as K extends 'image' ? (T[K] extends RgbImage ? never : K) : K]: ResultJson<T[K]> }
      & (T extends { image: RgbImage } ? { png: string; width: number; height: number } : unknown)
    : T;

function isRgbImage(v: unknown): v is RgbImage {
  const o = v as RgbImage;
  return typeof v === 'object' && v !== null && o.data instanceof Uint8Array && Number.isInteger(o.width) && Number.isInteger(o.height);
}

/**
 * A task result as plain JSON: typed arrays become arrays, and an item's `image` (an RgbImage)
 * becomes what `encodeImage` makes of it, spread into the item (HTTP: {png, width, height};
 * CLI: {file}).
 */
export async function resultToJson(value: unknown, encodeImage: (image: RgbImage) => Promise<Record<string, JsonValue>>): Promise<JsonValue> {
  if (value === null || typeof value !== 'object') return value as JsonValue;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>);
  if (Array.isArray(value)) return Promise.all(value.map((v) => resultToJson(v, encodeImage)));
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'image' && isRgbImage(v)) Object.assign(out, await encodeImage(v));
    else out[k] = await resultToJson(v, encodeImage);
  }
  return out;
}

// ---- shared fields --------------------------------------------------------------------------------

export const SEED_FIELD: Field = {
  type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'random seed: the same seed, inputs and options give the same result (reported back; omit for a random one)',
  label: { ru: 'Сид', en: 'Seed' },
};

/** topK / topP / temperature fields with a task's defaults. */
export function samplingFields(defaults: { topK: number; topP: number; temperature: number }) {
  return {
    topK: { type: 'integer', minimum: 0, default: defaults.topK, description: 'keep the k most likely tokens (0 = off)', label: { ru: 'top-k', en: 'top-k' } },
    topP: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: defaults.topP, description: 'nucleus sampling mass (1 = off)', label: { ru: 'top-p', en: 'top-p' } },
    temperature: { type: 'number', minimum: 0.0001, maximum: 100, default: defaults.temperature, description: 'logits are divided by it', label: { ru: 'Температура', en: 'Temperature' } },
  } as const satisfies Record<string, Field>;
}

/** Every task that takes text: cut what does not fit (reported) or refuse it. */
export const TRUNCATE_FIELD: Field = {
  type: 'boolean', default: true, cli: { off: '--strict-length' },
  description: 'cut a text that does not fit its segment (reported in `truncated`) instead of refusing it',
};

/** The `truncated` entry of every result schema. */
export const TRUNCATED_SCHEMA: JsonSchema = {
  type: 'array', description: 'texts cut to fit their segment (absent when none was)',
  items: {
    type: 'object', additionalProperties: false, required: ['field', 'text', 'tokens', 'kept'],
    properties: { field: { type: 'string' }, text: { type: 'string', description: 'its beginning' }, tokens: { type: 'integer', description: 'tokens it needed' }, kept: { type: 'integer', description: 'tokens kept' } },
  },
};

export const WEIGHT_FIELD = (description: string, value: number): Field => ({ type: 'number', minimum: 0, maximum: 1, default: value, description });
