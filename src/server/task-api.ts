/**
 * API requests → facade calls → API responses (runs inside the inference worker), derived from
 * the task registry: image fields are decoded from base64 here (one image at a time) and images
 * in results are encoded back to base64 PNG, so the HTTP thread only moves JSON.
 */
import { LimitError } from '../errors.js';
import type { TokenControl } from '../generation/streaming.js';
import { preprocessImage } from '../image/index.js';
import type { RgbImage } from '../image/rgb-image.js';
import type { Rudolph } from '../rudolph.js';
import { imageDimensions, readImage } from '../runtime/node/image-files.js';
import { taskOptionsFromJson, taskResultToJson } from '../tasks/json-io.js';
import { taskByName } from '../tasks/registry.js';
import type { Field } from '../tasks/spec.js';
import type { RunControl } from '../util/progress.js';
import { HttpError } from './errors.js';
import type { ApiInput, ApiOutput } from './schemas.js';

/** What a job's run takes besides its input: cancel, progress and (text tasks) tokens. */
export type JobRunControl = RunControl & TokenControl;

export interface TaskLimits {
  /** decoded pixels (width × height) of all the images of one request together (`serve --max-pixels`) */
  maxPixels: number;
  /** the side of the square every image is reduced to as soon as it is decoded (the VQGAN input, 8·n) */
  imageSize: number;
}

const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;

/** What is left of a request's pixel budget while its images are decoded. */
interface PixelBudget { left: number }

/**
 * An API image (base64 file bytes, or a data: URL) decoded; `field` names it in errors (e.g.
 * "images[2]"). Its size is read from the header and taken from the request's budget before
 * anything is decoded; then it is decoded alone and reduced at once to the model's input square
 * (the official preprocessing, which every task applies anyway), so a request's images never sit
 * in memory at full size together.
 */
export async function decodeApiImage(base64: string, field: string, limits: TaskLimits, budget: PixelBudget = { left: limits.maxPixels }): Promise<RgbImage> {
  // Buffer's base64 decoder is faster than the portable one and tolerates the same inputs the schema lets through
  const bytes = Buffer.from(base64.replace(DATA_URL, ''), 'base64');
  const { width, height } = await imageDimensions(bytes, field);
  if (width * height > budget.left) {
    const used = limits.maxPixels - budget.left;
    throw new LimitError(`${field}: ${width}×${height} pixels${used ? ` after ${used} pixels of earlier images` : ''} is over the limit of ${limits.maxPixels} decoded pixels per request (serve --max-pixels)`);
  }
  budget.left -= width * height;
  const decoded = await readImage(bytes, { name: field, maxPixels: limits.maxPixels });
  return preprocessImage(decoded, limits.imageSize);
}

/** A validated request body with its image fields decoded (nested objects too), one image at a time within one pixel budget. */
function decodeFields(fields: Readonly<Record<string, Field>>, body: ApiInput, limits: TaskLimits): Promise<Record<string, unknown>> {
  const budget: PixelBudget = { left: limits.maxPixels };
  return taskOptionsFromJson(fields, body, (img, field) => decodeApiImage(img, field, limits, budget));
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
  // one job's images after another's: a batch never decodes two images at once
  let decoding: Promise<unknown> = Promise.resolve();
  const decoded = inputs.map((input, i) => {
    const options = decoding.then(() => decodeFields(fields, input, limits)).then((o) => ({ ...o, ...controlOptions(found, controls[i]) }));
    decoding = options.catch(() => {});
    return options;
  });
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
