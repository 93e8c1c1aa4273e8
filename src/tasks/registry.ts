/**
 * The task registry: every task the library offers, keyed by its facade method name. The
 * facade's methods (rudolph.ts), the CLI commands (cli/commands/tasks.ts), the HTTP routes and
 * OpenAPI (server/), the page's forms (GET /v1/tasks) and the README's task table
 * (`npm run docs`) are derived from it. Adding a task = one entry here + its module (function
 * and `defineTask` spec).
 */
import { captionTask } from './caption.js';
import { classifyTask } from './classify.js';
import { dreamTask } from './dream.js';
import { generateTextTask } from './generate-text.js';
import { rankImagesTask, rankTextsTask } from './rank.js';
import type { Field } from './spec.js';
import { upscaleTask } from './upscale.js';

export const TASKS = {
  dream: dreamTask,
  caption: captionTask,
  classify: classifyTask,
  generateText: generateTextTask,
  rankImages: rankImagesTask,
  rankTexts: rankTextsTask,
  upscale: upscaleTask,
} as const;

export type TaskMethod = keyof typeof TASKS;
export type AnyTask = (typeof TASKS)[TaskMethod];
/** A task's options (what its method takes). */
export type TaskOptions<M extends TaskMethod> = Parameters<(typeof TASKS)[M]['run']>[1];
/** A task's result. */
export type TaskResult<M extends TaskMethod> = Awaited<ReturnType<(typeof TASKS)[M]['run']>>;

export const TASK_METHODS = Object.keys(TASKS) as TaskMethod[];

/** The task with this route/command name ('rank-images'), or undefined. */
export function taskByName(name: string): { method: TaskMethod; task: AnyTask } | undefined {
  const method = TASK_METHODS.find((m) => TASKS[m].name === name);
  return method ? { method, task: TASKS[method] } : undefined;
}

/** A task field as forms see it: nested objects flattened to dotted paths. */
export interface CatalogField {
  path: string;
  type: Field['type'];
  description: string;
  label?: { ru: string; en: string };
  default?: string | number | boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  /** the only values allowed */
  enum?: number[];
  required: boolean;
}

export interface CatalogTask { name: string; method: TaskMethod; summary: string; fields: CatalogField[] }

function catalogFields(fields: Readonly<Record<string, Field>>, required: readonly string[], prefix = ''): CatalogField[] {
  return Object.entries(fields).flatMap(([key, f]): CatalogField[] => {
    if (f.type === 'object') return catalogFields(f.fields, [], `${prefix}${key}.`);
    const { type, description, label } = f;
    const bounds = f as { default?: string | number | boolean; minimum?: number; maximum?: number; exclusiveMinimum?: number; enum?: readonly number[] };
    return [{
      path: `${prefix}${key}`, type, description, label, default: bounds.default, minimum: bounds.minimum, maximum: bounds.maximum,
      exclusiveMinimum: bounds.exclusiveMinimum, ...(bounds.enum ? { enum: [...bounds.enum] } : {}), required: prefix === '' && required.includes(key),
    }];
  });
}

/** The registry as plain data (GET /v1/tasks): what the page builds its forms from. */
export function taskCatalog(): CatalogTask[] {
  return TASK_METHODS.map((method) => {
    const t = TASKS[method];
    return { name: t.name, method, summary: t.summary, fields: catalogFields(t.fields as Readonly<Record<string, Field>>, t.required) };
  });
}

/** The README's task table (markdown), written by `npm run docs` and checked by the tests. */
export function taskTable(): string {
  const rows = taskCatalog().map((t) => {
    const options = t.fields.map((f) => `\`${f.path}\`${f.required ? ' (required)' : ''}${f.default !== undefined && f.default !== '' ? ` = ${JSON.stringify(f.default)}` : ''}`);
    return `| \`rudolph.${t.method}()\` | \`rudolph ${t.name}\` | \`POST /v1/${t.name}\` | ${t.summary} | ${options.join(', ')} |`;
  });
  return ['| library | CLI | HTTP | what | options (defaults) |', '|---|---|---|---|---|', ...rows].join('\n');
}
