/**
 * Files over HTTP as ByteSources: the size from a one-byte Range probe, then each read one Range
 * request (the hub and its CDN answer them; a server that ignores Range is refused rather than
 * streamed whole). With a `FetchCache`, every answer is kept, keyed by URL and byte range, and a
 * later visit reads the same ranges without touching the network (the loader's reads are
 * deterministic for a given file).
 */
import { AbortError, RudolphError } from '../../errors.js';
import type { ByteSource } from '../types.js';

/** Somewhere to keep fetched bytes between visits (Cache API by default; see cache.ts). */
export interface FetchCache {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, bytes: Uint8Array): Promise<void>;
}

export interface UrlSourceOptions {
  /** extra request headers (e.g. Authorization for gated repos) */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  cache?: FetchCache;
  /** never touch the network: everything must come from the cache */
  offline?: boolean;
  /** bytes that arrived over the network (not from the cache), for progress */
  onNetworkBytes?: (n: number) => void;
  /** how the source is named in errors (default: the URL without its query) */
  name?: string;
}

/** An HTTP status (or network failure) met while fetching a file. */
export class FetchError extends RudolphError {
  constructor(readonly url: string, readonly status: number | null, message: string, options?: { cause?: unknown }) {
    super(status === null && /offline/.test(message) ? 'OFFLINE' : 'DOWNLOAD', message, options);
    this.name = 'FetchError';
  }
}

const rangeKey = (url: string, from: number, to: number) => `${url}${url.includes('?') ? '&' : '?'}rudolph-range=${from}-${to}`;

async function request(url: string, init: RequestInit, name: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (init.signal?.aborted) throw new AbortError(`${name}: download aborted`);
    throw new FetchError(url, null, `${name}: network error: ${(e as Error).message}`, { cause: e });
  }
  if (res.status === 401 || res.status === 403) throw new FetchError(url, res.status, `${name}: access refused (HTTP ${res.status}); a gated or private repo needs a token`);
  if (res.status === 404) throw new FetchError(url, 404, `${name}: not found (HTTP 404)`);
  if (!res.ok) throw new FetchError(url, res.status, `${name}: HTTP ${res.status} ${res.statusText}`);
  return res;
}

async function bodyBytes(res: Response, expected: number, name: string, signal: AbortSignal | undefined): Promise<Uint8Array> {
  let buf: ArrayBuffer;
  try {
    buf = await res.arrayBuffer();
  } catch (e) {
    if (signal?.aborted) throw new AbortError(`${name}: download aborted`);
    throw new FetchError(res.url, res.status, `${name}: connection lost while reading (${(e as Error).message})`, { cause: e });
  }
  if (buf.byteLength !== expected) {
    throw new FetchError(res.url, res.status, `${name}: got ${buf.byteLength} bytes for a range of ${expected}`);
  }
  return new Uint8Array(buf);
}

/** Total size from `Content-Range: bytes a-b/TOTAL`. */
function totalFromContentRange(header: string | null): number | null {
  const m = header ? /\/(\d+)\s*$/.exec(header) : null;
  return m ? Number(m[1]) : null;
}

/** Opens a URL for random access; the size comes from the cache or a one-byte Range probe. */
export async function openUrlBytes(url: string, opts: UrlSourceOptions = {}): Promise<ByteSource> {
  const name = opts.name ?? url.replace(/\?.*$/, '');
  const headers = opts.headers ?? {};
  const sizeKey = rangeKey(url, -1, -1);
  let size: number | null = null;
  const cachedSize = await opts.cache?.get(sizeKey);
  const cachedText = cachedSize ? new TextDecoder().decode(cachedSize) : null;
  // a file found missing before stays missing: optional files (a repo's own bpe.model, a YAML
  // beside a checkpoint) cost no request on the next visit, and it works offline
  if (cachedText === 'missing') throw new FetchError(url, 404, `${name}: not found (HTTP 404, remembered)`);
  // "<size> <etag>": the version of the file the cached ranges belong to
  let etag: string | null = null;
  if (cachedText !== null) {
    const [n, ...tag] = cachedText.split(' ');
    size = Number(n);
    etag = tag.join(' ') || null;
  }
  if (size === null || !Number.isSafeInteger(size)) {
    if (opts.offline) throw new FetchError(url, null, `${name}: not in the browser cache and offline`);
    let res: Response;
    try {
      res = await request(url, { headers: { ...headers, Range: 'bytes=0-0' }, signal: opts.signal }, name);
    } catch (e) {
      if (e instanceof FetchError && e.status === 404) await opts.cache?.put(sizeKey, new TextEncoder().encode('missing'));
      throw e;
    }
    etag = res.headers.get('etag');
    if (res.status === 206) {
      size = totalFromContentRange(res.headers.get('content-range'));
      await res.body?.cancel();
    } else {
      // a server without Range support answered with the whole file: usable only if it is empty
      const length = Number(res.headers.get('content-length'));
      await res.body?.cancel();
      if (length === 0) size = 0;
      else throw new FetchError(url, res.status, `${name}: the server does not answer HTTP Range requests (needed to read large files piece by piece)`);
    }
    if (size === null || !Number.isSafeInteger(size)) throw new FetchError(url, res.status, `${name}: the server's Content-Range gives no file size`);
    await opts.cache?.put(sizeKey, new TextEncoder().encode(etag ? `${size} ${etag}` : String(size)));
  }
  const total = size;
  return {
    name,
    size: total,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= total)) {
        throw new RudolphError('CHECKPOINT', `${name}: read of ${length} bytes at ${offset} is outside the file's ${total} bytes`);
      }
      if (length === 0) return new Uint8Array(0);
      if (opts.signal?.aborted) throw new AbortError(`${name}: download aborted`);
      const key = rangeKey(url, offset, offset + length - 1);
      const hit = await opts.cache?.get(key);
      if (hit) return hit;
      if (opts.offline) throw new FetchError(url, null, `${name}: bytes ${offset}–${offset + length - 1} are not in the browser cache and offline`);
      const res = await request(url, { headers: { ...headers, Range: `bytes=${offset}-${offset + length - 1}` }, signal: opts.signal }, name);
      if (res.status !== 206 && !(res.status === 200 && offset === 0 && length === total)) {
        await res.body?.cancel();
        throw new FetchError(url, res.status, `${name}: the server ignored the Range request (HTTP ${res.status})`);
      }
      // ranges of two versions must never mix (a visit cut short, the file replaced on the hub since)
      const got = res.headers.get('etag');
      if (etag && got && got !== etag) {
        await res.body?.cancel();
        throw new FetchError(url, res.status, `${name}: the file changed on the server (ETag ${got}, cached parts are of ${etag}); clear the browser cache (clearBrowserCache()) to fetch the new version`);
      }
      const bytes = await bodyBytes(res, length, name, opts.signal);
      opts.onNetworkBytes?.(length);
      await opts.cache?.put(key, bytes);
      return bytes;
    },
    async close() { /* nothing held open */ },
  };
}
