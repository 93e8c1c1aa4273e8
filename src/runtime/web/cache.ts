/**
 * The browser's copy of fetched model bytes: the Cache API (available in windows and workers of
 * secure contexts, 127.0.0.1 included). One cache named `rudolph-ts`; entries are keyed by URL and
 * byte range (byte-source.ts), so a second visit reads the same ranges without a request.
 */
import type { FetchCache } from './byte-source.js';

export const CACHE_NAME = 'rudolph-ts';

/** The Cache API store, or undefined where the browser has none (insecure context). */
export async function openBrowserCache(name = CACHE_NAME): Promise<FetchCache | undefined> {
  if (typeof caches === 'undefined') return undefined;
  const cache = await caches.open(name);
  return {
    async get(key) {
      const res = await cache.match(key);
      return res ? new Uint8Array(await res.arrayBuffer()) : undefined;
    },
    async put(key, bytes) {
      try {
        await cache.put(key, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
      } catch {
        // quota exceeded or storage disabled: the model still runs, it is just fetched again next time
      }
    },
  };
}

/** Forgets every cached model byte (the page's "clear cache"). */
export async function clearBrowserCache(name = CACHE_NAME): Promise<boolean> {
  return typeof caches === 'undefined' ? false : caches.delete(name);
}
