/**
 * multipart/form-data bodies → the six task endpoints of the service, in-process on 127.0.0.1
 * with the small random model: file parts (valid, broken and lying images), text and JSON
 * fields, repeated and unknown parts, bad boundaries, and byte mutations of the whole body.
 */
import { capCost, encodeInput, httpTarget, images, jsonImage, seedBody, TASK_PATHS } from '../lib/http.js';
import { mutate } from '../lib/mutate.js';
import { mutateTree } from '../lib/seeds.js';
import type { FuzzRng } from '../lib/rng.js';

type Part = { name: string; value: Uint8Array; file?: string };

const enc = new TextEncoder();

/** A body's fields as parts: image fields as files (or base64 / ids text), lists as repeated parts or one JSON array, the rest as JSON text. */
function parts(rng: FuzzRng, body: Record<string, unknown>): Part[] {
  const out: Part[] = [];
  const imagePart = (name: string, v: unknown): Part => {
    if (typeof v === 'string' && rng.chance(0.8)) {
      const bytes = rng.chance(0.9) ? Buffer.from(v.replace(/^data:[^,]*,/, ''), 'base64') : rng.pick([images.broken, images.huge, new Uint8Array(0)]);
      return { name, value: bytes, file: rng.pick(['a.png', 'x.jpg', '', '../../etc/passwd', 'кот.webp']) };
    }
    return { name, value: enc.encode(typeof v === 'string' ? v : JSON.stringify(v)) };
  };
  for (const [name, v] of Object.entries(body)) {
    if (name === 'image') out.push(imagePart(name, v));
    else if (name === 'images' && Array.isArray(v)) for (const img of v) out.push(imagePart(name, img));
    else if (Array.isArray(v) && rng.chance(0.7)) for (const item of v) out.push({ name, value: enc.encode(typeof item === 'string' ? item : JSON.stringify(item)) });
    else out.push({ name, value: enc.encode(typeof v === 'string' ? v : JSON.stringify(v)) });
  }
  if (rng.chance(0.05)) out.push({ name: rng.pick(['extra', '__proto__', 'image', 'images', 'constructor']), value: enc.encode(rng.pick(['1', '{}', '[]', 'x'])) });
  if (rng.chance(0.05)) out.push({ name: 'image', value: images.png, file: 'again.png' });
  return rng.chance(0.1) ? out.sort(() => rng.next() - 0.5) : out;
}

function multipart(rng: FuzzRng, list: Part[], boundary: string): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const p of list) {
    const disposition = `form-data; name="${p.name}"${p.file !== undefined ? `; filename="${p.file}"` : ''}`;
    const type = p.file !== undefined ? `\r\nContent-Type: ${rng.pick(['image/png', 'application/octet-stream', 'text/plain'])}` : '';
    chunks.push(enc.encode(`--${boundary}\r\nContent-Disposition: ${disposition}${type}\r\n\r\n`), p.value, enc.encode('\r\n'));
  }
  if (rng.chance(0.97)) chunks.push(enc.encode(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

export const target = httpTarget(
  'http-multipart',
  'multipart/form-data request bodies → POST /v1/{dream,caption,classify,text,rank-images,rank-texts} of an in-process server',
  (rng) => {
    const taskPath = rng.pick(TASK_PATHS);
    let body: unknown = seedBody(taskPath, rng);
    // images as base64 text here, so that parts() may turn them into files
    if (rng.chance(0.3)) body = mutateTree(rng, body);
    const obj = capCost(body);
    const fields = obj !== null && typeof obj === 'object' && !Array.isArray(obj) ? obj as Record<string, unknown> : { image: jsonImage(rng) };
    const boundary = rng.chance(0.95) ? `fuzz${rng.int(1e9)}` : rng.pick(['', 'a'.repeat(200), '--', 'b"c', 'x y']);
    let bytes = multipart(rng, parts(rng, fields), boundary);
    if (rng.chance(0.25)) bytes = mutate(rng, bytes);
    const contentType = rng.chance(0.95) ? `multipart/form-data; boundary=${boundary}` : rng.pick(['multipart/form-data', 'multipart/mixed; boundary=x', `multipart/form-data; boundary="${boundary}"`]);
    return encodeInput(taskPath, contentType, bytes);
  },
);
