/**
 * Tasks over JSON, the form the HTTP API and the page's local worker share: image fields arrive as
 * base64 (a data: URL is accepted) or {ids}, and result images leave as base64 PNG. The caller
 * supplies the image decoder (each names its inputs and limits), the runtime encodes the PNGs.
 */
import type { RgbImage } from '../image/rgb-image.js';
import { runtime } from '../runtime/current.js';
import { bytesToBase64 } from '../util/base64.js';
import type { ImageInput } from './inputs.js';
import { type Field, type JsonValue, resultToJson } from './spec.js';

/** An image as JSON carries it: base64 file bytes (or a data: URL), or image token ids. */
export type JsonImage = string | { ids: number[] };

/** Turns a base64 image into pixels; `field` names it in errors (e.g. "images[2]"). */
export type JsonImageDecoder = (base64: string, field: string) => Promise<RgbImage>;

/** A task's JSON input with its image fields decoded (nested objects too), ready for the task function. */
export async function taskOptionsFromJson(fields: Readonly<Record<string, Field>>, body: Readonly<Record<string, unknown>>, decode: JsonImageDecoder, path = ''): Promise<Record<string, unknown>> {
  const image = (img: JsonImage, name: string): Promise<ImageInput> | ImageInput => (typeof img === 'string' ? decode(img, name) : { ids: img.ids });
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    const f = fields[key];
    const name = `${path}${key}`;
    if (f?.type === 'image') out[key] = await image(value as JsonImage, name);
    else if (f?.type === 'images') {
      const images: ImageInput[] = [];
      for (const [i, img] of (value as JsonImage[]).entries()) images.push(await image(img, `${name}[${i}]`));
      out[key] = images;
    } else if (f?.type === 'object') out[key] = await taskOptionsFromJson(f.fields, value as Record<string, unknown>, decode, `${name}.`);
    else out[key] = value;
  }
  return out;
}

/** A task result as JSON, images as {png (base64), width, height}. */
export function taskResultToJson(result: unknown): Promise<JsonValue> {
  return resultToJson(result, async (image) => ({ png: bytesToBase64(await runtime().encodePng(image)), width: image.width, height: image.height }));
}
