/**
 * The HTTP targets' shared parts: the service in-process on 127.0.0.1 (the small random test
 * model, the product's default limits, one onnxruntime thread), seed request bodies for every
 * endpoint that takes one, and one input → one request → one outcome:
 * 2xx resolves (an accepted job is followed to its end, so its work counts for its input);
 * an error body with a code from ERROR_CODES throws a RudolphError of that code; a 5xx, a code
 * outside the table or a dropped connection throws a plain Error (a finding).
 *
 * An input is `<path>\t<content-type>\n<body bytes>`, so any input replays as it was sent.
 */
import path from 'node:path';
import sharp from 'sharp';
import { type ErrorCode, RudolphError } from '../../src/errors.js';
import { ERROR_CODES } from '../../src/server/errors.js';
import { type RunningServer, startServer } from '../../src/server/serve.js';
import { SMALL_TOKENIZER, TINY_VQGAN_DIR, writeSmallModel } from '../../test/fixtures.js';
import type { FuzzTarget } from '../target.js';
import type { FuzzRng } from './rng.js';

/** The endpoints with a body; `/v1/jobs` takes `{task, input}`. */
export const TASK_PATHS = ['/v1/dream', '/v1/caption', '/v1/classify', '/v1/text', '/v1/rank-images', '/v1/rank-texts'] as const;
export type TaskPath = (typeof TASK_PATHS)[number];

let server: RunningServer | null = null;
let base = '';

/** Images a body may carry: valid small ones, broken ones, one whose header claims 16 k × 16 k. */
export interface ImageSeeds { png: Buffer; jpeg: Buffer; webp: Buffer; wide: Buffer; broken: Buffer; huge: Buffer }
export let images: ImageSeeds;

export async function startFuzzServer(tmpDir: string): Promise<void> {
  const dir = path.join(tmpDir, 'model');
  await writeSmallModel(dir);
  server = await startServer({
    model: dir, tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(tmpDir, 'cache'),
    port: 0, handleSignals: false, threads: 1, batchSize: 4, maxQueue: 4,
  });
  base = server.url;
  const solid = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: { r: 120, g: 30, b: 200 } } });
  const png = await solid(32, 32).png().toBuffer();
  // a PNG whose IHDR claims 16384 × 16384 (its CRC fixed so the header reads): decoding it would be 800 MB
  const huge = Buffer.from(png);
  huge.writeUInt32BE(16384, 16);
  huge.writeUInt32BE(16384, 20);
  huge.writeInt32BE(crc32(huge.subarray(12, 29)), 29);
  images = {
    png, huge,
    jpeg: await solid(48, 40).jpeg().toBuffer(),
    webp: await solid(20, 20).webp({ lossless: true }).toBuffer(),
    wide: await solid(300, 12).png().toBuffer(),
    broken: Buffer.from('not an image, honestly'),
  };
  // warm-up: every endpoint once, so the first inputs do not pay for sessions and JIT
  for (const p of TASK_PATHS) await send(p, 'application/json', new TextEncoder().encode(JSON.stringify(seedBody(p, null))));
}

export async function stopFuzzServer(): Promise<void> {
  await server?.close();
  server = null;
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c;
}

/** An image field's value in JSON: base64 (sometimes a data: URL), or token ids. */
export function jsonImage(rng: FuzzRng | null): unknown {
  if (!rng) return images.png.toString('base64');
  const r = rng.next();
  if (r < 0.15) return { ids: Array.from({ length: rng.chance(0.8) ? 16 : rng.size(40) }, () => rng.int(rng.chance(0.9) ? 64 : 100_000)) };
  const img = rng.pick([images.png, images.png, images.jpeg, images.webp, images.wide, images.broken, images.huge]);
  const b64 = img.toString('base64');
  return rng.chance(0.2) ? `data:image/png;base64,${b64}` : b64;
}

const TEXTS = ['кот', 'рыжий кот на подоконнике', 'лес зимой', 'a', '', '   ', 'очень '.repeat(60), '\u0000\ud800😀', 'на картинке {}', '{', '}{'];

/** A valid body for `p` (the cheap end of every option: the fuzzer judges time, not the model). */
export function seedBody(p: TaskPath, rng: FuzzRng | null): Record<string, unknown> {
  const text = () => (rng ? rng.pick(TEXTS) : 'кот');
  const maybe = (o: Record<string, unknown>) => (rng ? Object.fromEntries(Object.entries(o).filter(() => rng.chance(0.3))) : {});
  const sampling = maybe({ seed: 1, topK: 8, topP: 0.9, temperature: 0.8 });
  switch (p) {
    case '/v1/dream': return {
      text: rng ? rng.pick(TEXTS.slice(0, 4)) : 'кот', candidates: rng ? rng.range(1, 3) : 2, images: 1, ...sampling,
      ...maybe({ textWeight: 0.5, template: 'картинка: {text}', guidance: { weight: 0.3, template: 'плохо' } }),
      ...(rng?.chance(0.1) ? { imagePrompt: { image: jsonImage(rng), borders: { up: 1 } } } : {}),
    };
    case '/v1/caption': return { image: jsonImage(rng), generations: rng ? rng.range(1, 6) : 2, count: 1, ...sampling, ...maybe({ template: text(), earlyStop: 8, truncate: false }) };
    case '/v1/classify': return { image: jsonImage(rng), classes: rng ? Array.from({ length: rng.range(1, 4) }, text) : ['кошка', 'собака'], ...maybe({ template: 'на картинке {}', leftTemplate: 'фото', truncate: false }) };
    case '/v1/text': return { template: text(), count: rng ? rng.range(1, 6) : 2, earlyStop: 8, ...sampling, ...maybe({ allowedTokens: [5, 6, 7, 600], officialRange: true, truncate: false }) };
    case '/v1/rank-images': return { text: text(), images: rng ? Array.from({ length: rng.range(1, 4) }, () => jsonImage(rng)) : [jsonImage(null)], ...maybe({ textWeight: 0.3, quantile: 0.7, officialNaN: true }) };
    case '/v1/rank-texts': return { image: jsonImage(rng), texts: rng ? Array.from({ length: rng.range(1, 4) }, text) : ['кот', 'дом'], ...maybe({ quantile: 0.2, truncate: false }) };
  }
}

/** Caps on what a valid request may ask of the model after mutation (schema maxima allow minutes of work). */
const COST_CAPS: Record<string, number> = { candidates: 4, images: 2, generations: 8, count: 8, earlyStop: 16 };

/** Lowers the costly counts of a (mutated) body to the caps; anything not a number is left to validation. */
export function capCost(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const out = body as Record<string, unknown>;
  for (const [k, cap] of Object.entries(COST_CAPS)) {
    if (typeof out[k] === 'number' && (out[k] as number) > cap && Number.isInteger(out[k])) out[k] = cap;
  }
  if (out.input) capCost(out.input);
  return out;
}

export function encodeInput(p: string, contentType: string, body: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`${p}\t${contentType}\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

export function decodeInput(input: Uint8Array): { path: string; contentType: string; body: Uint8Array } {
  const nl = input.indexOf(10);
  const head = new TextDecoder().decode(input.subarray(0, nl < 0 ? input.length : nl));
  const [p, contentType = 'application/json'] = head.split('\t');
  return { path: p.startsWith('/') ? p : `/${p}`, contentType, body: nl < 0 ? new Uint8Array(0) : input.subarray(nl + 1) };
}

function outcome(status: number, text: string): void {
  let body: { code?: unknown; message?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch { /* not JSON: judged below */ }
  const code = typeof body.code === 'string' ? body.code : '';
  if (status >= 500 && status !== 503) throw new Error(`HTTP ${status} ${code}: ${String(body.message ?? text).slice(0, 300)}`);
  if (!(code in ERROR_CODES)) throw new Error(`HTTP ${status} with no stable code: ${text.slice(0, 300)}`);
  // the harness counts a RudolphError as a clean refusal, by its code (the API's, a superset of the library's)
  throw new RudolphError(code as ErrorCode, `HTTP ${status}: ${String(body.message ?? '').slice(0, 300)}`);
}

/** Posts one input; follows an accepted job to its end. */
export async function send(p: string, contentType: string, body: Uint8Array): Promise<void> {
  const res = await fetch(`${base}${p}`, { method: 'POST', headers: { 'content-type': contentType }, body: Buffer.from(body.buffer, body.byteOffset, body.length) });
  const text = await res.text();
  if (res.status === 202) {
    const { id } = JSON.parse(text) as { id: string };
    for (;;) {
      const job = await fetch(`${base}/v1/jobs/${id}`);
      const view = JSON.parse(await job.text()) as { state: string; error?: { code: string; message: string } };
      if (view.state === 'done') return;
      if (view.state === 'failed' || view.state === 'cancelled') {
        const code = view.error?.code ?? '';
        if (!(code in ERROR_CODES) || ERROR_CODES[code as keyof typeof ERROR_CODES] >= 500) throw new Error(`job ${view.state}: ${code} ${view.error?.message ?? ''}`);
        throw new RudolphError(code as ErrorCode, `job: ${view.error?.message ?? ''}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  if (res.status >= 200 && res.status < 300) return;
  outcome(res.status, text);
}

/**
 * An HTTP endpoint target: the in-process service started per worker, each input (built by
 * `input` with encodeInput) posted with `send`. A target differs only by how it builds bodies.
 */
export function httpTarget(name: string, description: string, input: FuzzTarget['input']): FuzzTarget {
  return {
    name,
    description,
    setup: (ctx) => startFuzzServer(ctx.tmpDir),
    input,
    async run(bytes) {
      const { path: p, contentType, body } = decodeInput(bytes);
      await send(p, contentType, body);
    },
    teardown: stopFuzzServer,
  };
}
