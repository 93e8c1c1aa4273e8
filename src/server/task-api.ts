/**
 * API requests → facade calls → API responses (runs inside the inference worker), derived from
 * the task registry: image fields are decoded from base64 here (one image at a time) and images
 * in results are encoded back to base64 PNG, so the HTTP thread only moves JSON.
 */
import type { TokenControl } from '../generation/streaming.js';
import type { Rudolph } from '../rudolph.js';
import { encodePng, readImage } from '../runtime/node/image-files.js';
import type { ImageInput } from '../tasks/inputs.js';
import { taskByName } from '../tasks/registry.js';
import { type Field, resultToJson } from '../tasks/spec.js';
import type { RunControl } from '../util/progress.js';
import { HttpError } from './errors.js';
import type { ApiInput, ApiOutput } from './schemas.js';

export interface TaskLimits {
  /** largest width × height of an uploaded image */
  maxPixels: number;
}

type ApiImage = string | { ids: number[] };

const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;

/** An API image as the facade takes it; `field` names it in errors (e.g. "images[2]"). */
export async function decodeApiImage(img: ApiImage, field: string, limits: TaskLimits): Promise<ImageInput> {
  if (typeof img !== 'string') return { ids: img.ids };
  const bytes = Buffer.from(img.replace(DATA_URL, ''), 'base64');
  return readImage(bytes, { name: field, maxPixels: limits.maxPixels });
}

/** A validated request body with its image fields decoded (nested objects too). */
async function decodeFields(fields: Readonly<Record<string, Field>>, body: ApiInput, limits: TaskLimits, path = ''): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const f = fields[key];
    const name = `${path}${key}`;
    if (f?.type === 'image') out[key] = await decodeApiImage(value as ApiImage, name, limits);
    else if (f?.type === 'images') {
      const images: ImageInput[] = [];
      for (const [i, img] of (value as ApiImage[]).entries()) images.push(await decodeApiImage(img, `${name}[${i}]`, limits));
      out[key] = images;
    } else if (f?.type === 'object') out[key] = await decodeFields(f.fields, value as ApiInput, limits, `${name}.`);
    else out[key] = value;
  }
  return out;
}

/** Runs a task on an API request; `onToken` reaches only the tasks that stream text. */
export async function runTask(rudolph: Rudolph, taskName: string, input: ApiInput, control: RunControl & TokenControl, limits: TaskLimits): Promise<ApiOutput> {
  const found = taskByName(taskName);
  if (!found) throw new HttpError(404, 'NOT_FOUND', `no task ${taskName}`);
  const options = await decodeFields(found.task.fields as Readonly<Record<string, Field>>, input, limits);
  const { onToken, ...run } = control;
  const streams = (found.task as { streams?: true }).streams === true;
  const result = await rudolph.run(found.method, { ...options, ...run, ...(streams && onToken ? { onToken } : {}) } as never);
  return await resultToJson(result, async (image) => ({
    png: Buffer.from(await encodePng(image)).toString('base64'), width: image.width, height: image.height,
  })) as ApiOutput;
}
