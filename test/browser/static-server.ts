/**
 * The browser tests' web server on 127.0.0.1: static folders under URL prefixes, answering HTTP
 * Range requests like the hub (206 + Content-Range), with the COOP/COEP headers multi-threaded
 * WASM needs, and a hub layout (`/<repo>/resolve/<revision>/<file>`) over local folders. Every
 * request is logged so tests can assert what reached the network.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface ServedRequest { method: string; url: string; range: string | undefined; status: number }

export interface StaticServer {
  url: string;
  requests: ServedRequest[];
  close(): Promise<void>;
}

export interface StaticServerOptions {
  /** URL prefix ('/', '/golden/') → folder */
  mounts: Record<string, string>;
  /** hub repo id → folder: served at /<repo>/resolve/<any revision>/<file> */
  repos?: Record<string, string>;
  /** a fixed port (to restart "the same" server); default: a free one */
  port?: number;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.map': 'application/json',
};

/** COOP + COEP: cross-origin isolation, so SharedArrayBuffer (WASM threads) is available. */
export const ISOLATION_HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
};

/** What the hub sends so pages on other origins can read files by Range (CORS). */
const CORS_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'content-range, content-length, accept-ranges, etag',
  'cross-origin-resource-policy': 'cross-origin',
};

function resolveFile(opts: StaticServerOptions, pathname: string): string | null {
  const hub = /^\/([\w.-]+\/[\w.-]+)\/resolve\/[^/]+\/(.+)$/.exec(pathname);
  if (hub && opts.repos?.[hub[1]]) return safeJoin(opts.repos[hub[1]], hub[2]);
  const prefixes = Object.keys(opts.mounts).sort((a, b) => b.length - a.length);
  for (const p of prefixes) {
    if (pathname.startsWith(p)) return safeJoin(opts.mounts[p], pathname.slice(p.length) || 'index.html');
  }
  return null;
}

function safeJoin(root: string, rel: string): string | null {
  const file = path.resolve(root, decodeURIComponent(rel));
  return file === root || file.startsWith(root + path.sep) ? file : null;
}

export async function startStaticServer(opts: StaticServerOptions): Promise<StaticServer> {
  const requests: ServedRequest[] = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const range = req.headers.range;
    const log = (status: number) => requests.push({ method: req.method ?? 'GET', url: url.pathname, range, status });
    const headers: Record<string, string> = { ...ISOLATION_HEADERS, ...CORS_HEADERS, 'accept-ranges': 'bytes', 'cache-control': 'no-store' };
    if (req.method === 'OPTIONS') {
      log(204);
      res.writeHead(204, { ...headers, 'access-control-allow-headers': 'range, authorization', 'access-control-allow-methods': 'GET, HEAD' }).end();
      return;
    }
    let file = resolveFile(opts, url.pathname);
    let st = file ? await fsp.stat(file).catch(() => null) : null;
    if (st?.isDirectory() && file) { file = path.join(file, 'index.html'); st = await fsp.stat(file).catch(() => null); }
    if (!file || !st?.isFile()) { log(404); res.writeHead(404, headers).end('not found'); return; }
    headers['content-type'] = TYPES[path.extname(file)] ?? 'application/octet-stream';
    headers.etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    let start = 0, end = st.size - 1, status = 200;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === '' && m[2] === '')) { log(416); res.writeHead(416, headers).end(); return; }
      if (m[1] === '') { start = Math.max(0, st.size - Number(m[2])); } else { start = Number(m[1]); end = m[2] === '' ? end : Math.min(end, Number(m[2])); }
      if (start > end || start >= st.size) { log(416); res.writeHead(416, { ...headers, 'content-range': `bytes */${st.size}` }).end(); return; }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
    }
    headers['content-length'] = String(end - start + 1);
    log(status);
    res.writeHead(status, headers);
    if (req.method === 'HEAD' || st.size === 0) { res.end(); return; }
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
