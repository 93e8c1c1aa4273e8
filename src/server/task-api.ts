/**
 * API requests → facade calls → API responses (runs inside the inference worker), derived from
 * the task registry: image fields are decoded from base64 here (one image at a time) and images
 * in results are encoded back to base64 PNG, so the HTTP thread only moves JSON.
 */
import type { Rudolph } from '../rudolph.js';
import { readImage } from '../runtime/node/image-files.js';
import { taskByName } from '../tasks/registry.js';
import { taskOptionsFromJson, taskResultToJson } from '../tasks/json-io.js';
import type { Field } from '../tasks/spec.js';
import type { RunControl } from '../util/progress.js';
import { HttpError } from './errors.js';
import type { ApiInput, ApiOutput } from './schemas.js';

export interface TaskLimits {
  /** largest width × height of an uploaded image */
  maxPixels: number;
}

const DATA_URL = /^data:[\w/+.-]*(;[\w=.-]+)*;base64,/;

export async function runTask(rudolph: Rudolph, taskName: string, input: ApiInput, control: RunControl, limits: TaskLimits): Promise<ApiOutput> {
  const found = taskByName(taskName);
  if (!found) throw new HttpError(404, 'NOT_FOUND', `no task ${taskName}`);
  // Buffer's base64 decoder is faster than the portable one and tolerates the same inputs the schema lets through
  const decode = (img: string, field: string) => readImage(Buffer.from(img.replace(DATA_URL, ''), 'base64'), { name: field, maxPixels: limits.maxPixels });
  const options = await taskOptionsFromJson(found.task.fields as Readonly<Record<string, Field>>, input, decode);
  const result = await rudolph.run(found.method, { ...options, ...control } as never);
  return await taskResultToJson(result) as ApiOutput;
}
