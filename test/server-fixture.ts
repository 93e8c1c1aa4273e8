/**
 * Helpers for the HTTP service tests: a server on 127.0.0.1 with the small random model,
 * requests, a test image, and a Server-Sent Events reader.
 */
import path from 'node:path';
import type { RgbImage } from '../src/image/index.js';
import { encodePng } from '../src/runtime/node/index.js';
import { type RunningServer, type ServeOptions, startServer } from '../src/server/serve.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';

export interface TestServer extends RunningServer {
  modelDir: string;
  cacheDir: string;
}

/** Writes the small model to a temp folder and serves it on a free port; close() removes it. */
export async function startSmallServer(opts: Partial<ServeOptions> = {}): Promise<TestServer> {
  const { dir, cleanup } = await tempDir('rudolph-server-');
  await writeSmallModel(dir);
  const cacheDir = path.join(dir, 'cache');
  const server = await startServer({
    model: dir, tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir, port: 0, handleSignals: false, ...opts,
  });
  return {
    url: server.url, modelDir: dir, cacheDir,
    async close() {
      await server.close();
      await cleanup();
    },
  };
}

/** A 32×32 colour gradient (the small model's image size). */
export function testImage(size = 32): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      data[o] = (x * 255) / (size - 1);
      data[o + 1] = (y * 255) / (size - 1);
      data[o + 2] = ((x + y) * 127) / (size - 1);
    }
  }
  return { width: size, height: size, data };
}

export async function testPngBase64(): Promise<string> {
  return (await encodePng(testImage())).toString('base64');
}

export interface JsonResponse<T = unknown> { status: number; body: T; headers: Headers; ms: number }

export async function request<T = unknown>(url: string, init: RequestInit = {}): Promise<JsonResponse<T>> {
  const t0 = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  const ms = performance.now() - t0;
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(text);
  return { status: res.status, body: body as T, headers: res.headers, ms };
}

export function postJson<T = unknown>(url: string, body: unknown, init: RequestInit = {}): Promise<JsonResponse<T>> {
  return request<T>(url, { ...init, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

export interface SseEvent { id: number; event: string; data: unknown }

/** Reads a whole event stream (until the server ends it), calling `onEvent` as events arrive. */
export async function readEvents(url: string, onEvent: (e: SseEvent) => void = () => {}, signal?: AbortSignal): Promise<SseEvent[]> {
  const res = await fetch(url, { signal });
  if (res.status !== 200) throw new Error(`events: HTTP ${res.status}: ${await res.text()}`);
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) throw new Error('events: not an event stream');
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        fields[line.slice(0, i)] = line.slice(i + 1).trimStart();
      }
      if (!fields.event) continue;
      const e = { id: Number(fields.id), event: fields.event, data: JSON.parse(fields.data) as unknown };
      events.push(e);
      onEvent(e);
    }
  }
  return events;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
