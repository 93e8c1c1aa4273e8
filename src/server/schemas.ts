/**
 * The HTTP API's shapes, written once as JSON Schema: fastify validates requests with them and
 * the OpenAPI document is built from them. The TypeScript types beside each schema describe
 * the same shapes for the code that handles validated data; keep the two in step.
 *
 * Request fields use the facade's option names (src/tasks/*). Images travel as base64 strings
 * (PNG/JPEG/WebP, a `data:` URL prefix allowed) or as image token ids `{ids: [...]}`.
 */

import type { SamplingOptions } from '../generation/sampling.js';
import type { GenerateTextOptions } from '../tasks/generate-text.js';
import type { RunControl } from '../util/progress.js';

export const TASKS = ['dream', 'caption', 'classify', 'text', 'rank-images', 'rank-texts'] as const;
export type TaskName = (typeof TASKS)[number];

/** A JSON Schema object (the subset of draft-07 that both ajv and OpenAPI 3.1 read the same way). */
export type JsonSchema = { [key: string]: JsonValue };
type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

// ---- shared pieces ---------------------------------------------------------------------------

export type ApiImage = string | { ids: number[] };

export const IMAGE_DESCRIPTION = 'a base64-encoded PNG/JPEG/WebP image (a data: URL is accepted) or {"ids": [image token ids]}';

const image: JsonSchema = {
  description: IMAGE_DESCRIPTION,
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object', required: ['ids'], additionalProperties: false,
      properties: { ids: { type: 'array', maxItems: 65536, items: { type: 'integer', minimum: 0 } } },
    },
  ],
};

const text = (description: string, maxLength = 4000): JsonSchema => ({ type: 'string', maxLength, description });
const count = (description: string, maximum: number): JsonSchema => ({ type: 'integer', minimum: 1, maximum, description });
const weight = (description: string): JsonSchema => ({ type: 'number', minimum: 0, maximum: 1, description });

const seed: JsonSchema = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'random seed (reported back; omit for a random one)' };
const sampling: Record<string, JsonSchema> = {
  topK: { type: 'integer', minimum: 0, description: 'keep the k most likely tokens (0 = off)' },
  topP: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'nucleus sampling mass (1 = off)' },
  temperature: { type: 'number', exclusiveMinimum: 0, maximum: 100, description: 'logits are divided by it' },
};

function object(required: string[], properties: Record<string, JsonSchema>, description?: string): JsonSchema {
  return { type: 'object', additionalProperties: false, required, properties, ...(description ? { description } : {}) };
}

export type Sampling = Partial<SamplingOptions>;

// ---- requests --------------------------------------------------------------------------------

export interface DreamInput extends Sampling {
  text: string;
  images?: number;
  candidates?: number;
  seed?: number;
  template?: string;
  textWeight?: number;
  guidance?: { weight?: number; template?: string; lateSoftmax?: boolean };
  imagePrompt?: { image: ApiImage; borders?: { up?: number; down?: number; left?: number; right?: number }; cropFirst?: boolean };
}

const border: JsonSchema = { type: 'integer', minimum: 0, maximum: 1024 };

const dreamInput = object(['text'], {
  text: { type: 'string', minLength: 1, maxLength: 4000, description: 'what to draw' },
  images: count('images returned, the best by rerank score (default 1)', 64),
  candidates: count('candidates generated before reranking (default 8)', 256),
  seed,
  ...sampling,
  template: text('generation prompt, {text} is the text (default "{text}")'),
  textWeight: weight('weight of the text perplexity in the rerank score (default 0.95)'),
  guidance: object([], {
    weight: weight('weight of the unconditional prompt (default 0.2)'),
    template: text('unconditional prompt, {text} is the text (default "")'),
    lateSoftmax: { type: 'boolean' },
  }, 'classifier-free guidance'),
  imagePrompt: object(['image'], {
    image,
    borders: object([], { up: border, down: border, left: border, right: border }, 'border cells (in image tokens) kept from the image'),
    cropFirst: { type: 'boolean', description: 'encode only the top strip (up border only)' },
  }, 'an image whose borders are kept'),
}, 'text → images');

export interface CaptionInput extends Sampling {
  image: ApiImage;
  template?: string;
  generations?: number;
  count?: number;
  earlyStop?: number;
  seed?: number;
  textWeight?: number;
}

const captionInput = object(['image'], {
  image,
  template: text('text the captions continue (default "на картинке")'),
  generations: count('captions sampled before reranking (default 48)', 1024),
  count: count('captions returned (default 5)', 256),
  earlyStop: count('most right-text tokens, template included', 4096),
  seed,
  ...sampling,
  textWeight: weight('weight of the text perplexity in the rerank score (default 0.05)'),
}, 'image → captions');

export interface ClassifyInput { image: ApiImage; classes: string[]; template?: string; leftTemplate?: string }

const classifyInput = object(['image', 'classes'], {
  image,
  classes: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 1000 }, description: 'class names' },
  template: text('right text per class, {} is the class (default "{}")'),
  leftTemplate: text('left text per class, {} is the class (default "")'),
}, 'zero-shot image classification');

/** The facade's options, less what the server decides (cancellation, progress, batch size). */
export type TextInput = Omit<GenerateTextOptions, keyof RunControl | 'batchSize'>;

const textInput = object(['template'], {
  template: text('text to continue'),
  count: count('continuations sampled (default 48)', 1024),
  earlyStop: count('most left-text tokens, template included', 4096),
  allowedTokens: { type: 'array', minItems: 1, maxItems: 100000, items: { type: 'integer', minimum: 0 }, description: 'sample only these token ids' },
  officialRange: { type: 'boolean', description: 'sample from the official range, special ids included' },
  seed,
  ...sampling,
}, 'text continuation');

export interface RankImagesInput { text: string; images: ApiImage[]; textWeight?: number; quantile?: number; leftTemplate?: string }

const rankImagesInput = object(['text', 'images'], {
  text: { type: 'string', minLength: 1, maxLength: 4000 },
  images: { type: 'array', minItems: 1, maxItems: 256, items: image },
  textWeight: weight('weight of the text perplexity (default 0.95)'),
  quantile: weight('normalisation quantile (default 0.5)'),
  leftTemplate: text('left text (default "")'),
}, 'rank images by how well they fit a text (lower score = better)');

export interface RankTextsInput { image: ApiImage; texts: string[]; textWeight?: number; quantile?: number }

const rankTextsInput = object(['image', 'texts'], {
  image,
  texts: { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 4000 } },
  textWeight: weight('weight of the text perplexity (default 0.05)'),
  quantile: weight('normalisation quantile (default 0.5)'),
}, 'rank texts by how well they fit an image (lower score = better)');

export interface TaskInputs {
  'dream': DreamInput;
  'caption': CaptionInput;
  'classify': ClassifyInput;
  'text': TextInput;
  'rank-images': RankImagesInput;
  'rank-texts': RankTextsInput;
}

export const INPUT_SCHEMAS: Record<TaskName, JsonSchema> = {
  'dream': dreamInput,
  'caption': captionInput,
  'classify': classifyInput,
  'text': textInput,
  'rank-images': rankImagesInput,
  'rank-texts': rankTextsInput,
};

/** Which facade call each task is, for the OpenAPI summary. */
export const TASK_SUMMARIES: Record<TaskName, string> = {
  'dream': 'Text → images: generate candidates, rerank by the text, return the best as PNG',
  'caption': 'Image → captions reranked by the image',
  'classify': 'Zero-shot classification of an image among given classes',
  'text': 'Continue a text',
  'rank-images': 'Rank images for a text',
  'rank-texts': 'Rank texts for an image',
};

export type JobRequest = { [K in TaskName]: { task: K; input: TaskInputs[K] } }[TaskName];

export const JOB_REQUEST: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['task', 'input'],
  properties: {
    task: { type: 'string', enum: [...TASKS], description: 'the task, as in the /v1/<task> endpoints' },
    input: { type: 'object', description: 'the request body of /v1/<task>' },
  },
  // picks the input schema by task, so errors name the field inside `input`
  allOf: TASKS.map((task) => ({
    if: { properties: { task: { const: task } }, required: ['task'] },
    then: { properties: { input: INPUT_SCHEMAS[task] } },
  })),
};

export const JOB_PARAMS: JsonSchema = {
  type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } },
};

// ---- responses -------------------------------------------------------------------------------

export interface DreamOutput {
  images: { png: string; width: number; height: number; score: number | null; pplText: number; pplImage: number; candidate: number; codebook: number[] }[];
  seed: number;
}
export interface CaptionOutput { captions: { text: string; score: number | null; count: number; pplText: number; pplImage: number }[]; seed: number }
export interface ClassifyOutput { label: number; class: string; scores: number[]; ppl: number[] }
export interface TextOutput { texts: { text: string; ppl: number; count: number }[]; seed: number }
export interface RankOutput { pplText: number[]; pplImage: number[]; scores: (number | null)[]; order: number[] }

export interface TaskOutputs {
  'dream': DreamOutput;
  'caption': CaptionOutput;
  'classify': ClassifyOutput;
  'text': TextOutput;
  'rank-images': RankOutput;
  'rank-texts': RankOutput;
}
export type TaskOutput = TaskOutputs[TaskName];

const num: JsonSchema = { type: 'number' };
const nums: JsonSchema = { type: 'array', items: num };
const ints: JsonSchema = { type: 'array', items: { type: 'integer' } };
const score: JsonSchema = { type: ['number', 'null'], description: 'rerank score, lower is better' };
const rankOutput = object(['pplText', 'pplImage', 'scores', 'order'], {
  pplText: nums, pplImage: nums, scores: { type: 'array', items: score }, order: { ...ints, description: 'indices by ascending score' },
});

export const OUTPUT_SCHEMAS: Record<TaskName, JsonSchema> = {
  'dream': object(['images', 'seed'], {
    images: {
      type: 'array',
      items: object(['png', 'width', 'height', 'score', 'pplText', 'pplImage', 'candidate', 'codebook'], {
        png: { type: 'string', description: 'base64 PNG' }, width: { type: 'integer' }, height: { type: 'integer' },
        score, pplText: num, pplImage: num, candidate: { type: 'integer' }, codebook: ints,
      }),
    },
    seed: { type: 'integer' },
  }),
  'caption': object(['captions', 'seed'], {
    captions: { type: 'array', items: object(['text', 'score', 'count', 'pplText', 'pplImage'], { text: { type: 'string' }, score, count: { type: 'integer' }, pplText: num, pplImage: num }) },
    seed: { type: 'integer' },
  }),
  'classify': object(['label', 'class', 'scores', 'ppl'], {
    label: { type: 'integer' }, class: { type: 'string' }, scores: { ...nums, description: 'lower = more likely' }, ppl: nums,
  }),
  'text': object(['texts', 'seed'], {
    texts: { type: 'array', items: object(['text', 'ppl', 'count'], { text: { type: 'string' }, ppl: num, count: { type: 'integer' } }) },
    seed: { type: 'integer' },
  }),
  'rank-images': rankOutput,
  'rank-texts': rankOutput,
};

export const ERROR_SCHEMA = object(['statusCode', 'code', 'message'], {
  statusCode: { type: 'integer' },
  code: { type: 'string', description: 'VALIDATION, INPUT, IMAGE, QUEUE_FULL, NOT_FOUND, ABORTED, SHUTTING_DOWN, ...' },
  message: { type: 'string' },
  field: { type: 'string', description: 'the request field at fault, when there is one' },
});

export const PROGRESS_SCHEMA = object(['task', 'stage', 'done', 'total'], {
  task: { type: 'string' }, stage: { type: 'string' }, done: { type: 'number' }, total: { type: 'number' },
});

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;

export const JOB_SCHEMA = object(['id', 'task', 'state', 'createdAt'], {
  id: { type: 'string' },
  task: { type: 'string', enum: [...TASKS] },
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
});

export const HEALTH_SCHEMA = object(['status', 'uptimeS', 'queue'], {
  status: { type: 'string', enum: ['ok', 'draining'] },
  uptimeS: num,
  queue: object(['running', 'queued', 'maxQueue'], { running: { type: 'integer' }, queued: { type: 'integer' }, maxQueue: { type: 'integer' } }),
});
