/**
 * API requests → facade calls → API responses (runs inside the inference worker), derived from
 * the task registry: image fields are decoded from base64 here (one image at a time) and images
 * in results are encoded back to base64 PNG, so the HTTP thread only moves JSON.
 */
import type { TokenControl } from '../generation/streaming.js';
import type { Rudolph } from '../rudolph.js';
import { readImage } from '../runtime/node/image-files.js';
import { taskByName } from '../tasks/registry.js';
import { taskOptionsFromJson, taskResultToJson } from '../tasks/json-io.js';
import type { Field } from '../tasks/spec.js';
import type { RunControl } from '../util/progress.js';
import { HttpError } from './errors.js';
import type { ApiInput, ApiOutput } from './schemas.js';

/** What a job's run takes besides its input: cancel, progress and (text tasks) tokens. */
export type JobRunControl = RunControl & TokenControl;

export interface TaskLimits {
  /** largest width × height of an uploaded image */
  maxPixels: number;
}

const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;

/** A validated request body with its image fields decoded (nested objects too). */
function decodeFields(fields: Readonly<Record<string, Field>>, body: ApiInput, limits: TaskLimits): Promise<Record<string, unknown>> {
  // Buffer's base64 decoder is faster than the portable one and tolerates the same inputs the schema lets through
  const decode = (img: string, field: string) => readImage(Buffer.from(img.replace(DATA_URL, ''), 'base64'), { name: field, maxPixels: limits.maxPixels });
  return taskOptionsFromJson(fields, body, decode);
}

function findTask(taskName: string) {
  const found = taskByName(taskName);
  if (!found) throw new HttpError(404, 'NOT_FOUND', `no task ${taskName}`);
  return found;
}

/** A job's controls as task options: `onToken` reaches only the tasks that stream text. */
function controlOptions(found: NonNullable<ReturnType<typeof taskByName>>, control: JobRunControl): RunControl & TokenControl {
  const { onToken, ...run } = control;
  const streams = (found.task as { streams?: true }).streams === true;
  return { ...run, ...(streams && onToken ? { onToken } : {}) };
}

async function toApi(result: unknown): Promise<ApiOutput> {
  return await taskResultToJson(result) as ApiOutput;
}

/** Runs a task on an API request. */
export async function runTask(rudolph: Rudolph, taskName: string, input: ApiInput, control: JobRunControl, limits: TaskLimits): Promise<ApiOutput> {
  const found = findTask(taskName);
  const options = await decodeFields(found.task.fields as Readonly<Record<string, Field>>, input, limits);
  return toApi(await rudolph.run(found.method, { ...options, ...controlOptions(found, control) } as never));
}

/**
 * Jobs of one task run together: one result per job, each settling on its own (a cancelled or
 * invalid job fails alone). Tasks with a batched form (`runMany` in their spec) run as one batch
 * on the model; the others run one after another.
 */
export function runTaskBatch(rudolph: Rudolph, taskName: string, inputs: ApiInput[], controls: JobRunControl[], limits: TaskLimits): Promise<ApiOutput>[] {
  if (inputs.length === 1) return [runTask(rudolph, taskName, inputs[0], controls[0], limits)];
  const found = findTask(taskName);
  const fields = found.task.fields as Readonly<Record<string, Field>>;
  const decoded = inputs.map((input, i) => decodeFields(fields, input, limits).then((o) => ({ ...o, ...controlOptions(found, controls[i]) })));
  if (!rudolph.canBatch(found.method)) {
    // one after another, in order
    let chain: Promise<unknown> = Promise.resolve();
    return decoded.map((options) => {
      const out = chain.then(async () => toApi(await rudolph.run(found.method, (await options) as never)));
      chain = out.catch(() => {});
      return out;
    });
  }
  const settled = Promise.allSettled(decoded).then((all) => {
    const ok = all.flatMap((s, i) => (s.status === 'fulfilled' ? [i] : []));
    const runs = ok.length ? rudolph.runMany(found.method, ok.map((i) => (all[i] as PromiseFulfilledResult<Record<string, unknown>>).value) as never) : [];
    return all.map((s, i) => (s.status === 'rejected' ? Promise.reject(s.reason as Error) : runs[ok.indexOf(i)]));
  });
  return inputs.map((_, i) => settled.then(async (results) => toApi(await results[i])));
}
