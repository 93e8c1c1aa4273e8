/**
 * A local stand-in for the Hugging Face hub, for tests that must not touch the network.
 *
 * Two node:http servers on 127.0.0.1 (random ports), like huggingface.co and its LFS/CDN host:
 * - hub:  HEAD/GET /{repo}/resolve/{revision}/{path}
 *     regular file → 200 with ETag "<git blob sha1>", X-Repo-Commit, Content-Length, body (Range → 206)
 *     LFS file     → 302 to the LFS server with X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
 *     private repo without `Authorization: Bearer <token>` → 401; unknown repo/revision/file → 404
 *     (with the hub's X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound)
 * - lfs:  HEAD/GET /lfs/<sha256>?signature=... → 200 / 206 (Range) / 416
 * Faults (per repo file path) act on whichever server sends that file's bytes: drop the
 * connection after N bytes, flip one byte, slow chunks, delay the response, never answer,
 * answer with an error status (and Retry-After), ignore Range. A fault hits body GETs unless
 * `requests` says it hits the hub's HEAD (metadata) requests.
 * Every request is logged in `requests` (server, method, url, Range, Authorization, status, time).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockFile {
  content: Buffer;
  /** Serve through the LFS redirect (default: true for files over 1 KiB, like real repos' weights). */
  lfs?: boolean;
}

export interface MockRepo {
  files: Record<string, Buffer | MockFile>;
  /** Needs `Authorization: Bearer <hub token>`. */
  private?: boolean;
  /** Commit that `main` resolves to (default: sha1 of the repo name). */
  commit?: string;
  /** More branch/tag names → commit ids; the commit id itself always works as a revision. */
  refs?: Record<string, string>;
}

export interface MockFault {
  /** Close the socket after sending this many body bytes. */
  dropAfterBytes?: number;
  /** Send this many body bytes, then nothing more (the connection stays open) until the client gives up. */
  stallAfterBytes?: number;
  /** Flip the byte at this offset of the file (in whatever range is served). */
  corruptAt?: number;
  /** Send the body in `chunkSize` pieces with this pause in between. */
  chunkDelayMs?: number;
  chunkSize?: number;
  /** Wait this long before answering at all. */
  responseDelayMs?: number;
  /** Accept the request and never send anything back (not even headers). */
  noAnswer?: boolean;
  /** Answer with this status (and an empty body) instead of the file. */
  status?: number;
  /** Retry-After header value sent with `status`. */
  retryAfter?: string;
  /** Answer a Range request with 200 and the whole file, as servers without range support do. */
  ignoreRange?: boolean;
  /** Which requests the fault hits: body GETs (default) or the hub's HEAD requests. */
  requests?: 'body' | 'head';
  /** How many responses the fault affects (default: all). */
  times?: number;
}

export interface MockRequest {
  server: 'hub' | 'lfs';
  method: string;
  url: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
  /** Repo file path whose bytes this request was about (when known). */
  file: string | undefined;
  /** Date.now() when the request was answered (or, without an answer, seen). */
  at: number;
}

export interface MockHubOptions {
  repos: Record<string, MockRepo>;
  /** The one token the hub accepts for private repos. */
  token?: string;
}

export interface MockHub {
  /** Base URL of the hub server (what HF_ENDPOINT would be). */
  readonly endpoint: string;
  /** Base URL of the LFS server (another port, so another host for the client). */
  readonly lfsEndpoint: string;
  readonly requests: MockRequest[];
  /** Requests matching the filter (all by default). */
  count(filter?: Partial<Pick<MockRequest, 'server' | 'method' | 'file'>> & { body?: boolean }): number;
  setRepo(name: string, repo: MockRepo): void;
  setFault(file: string, fault: MockFault): void;
  clearFaults(): void;
  /** The commit `main` of a repo resolves to. */
  commitOf(repo: string): string;
  /** The blob name the cache should use for a file: sha256 (LFS) or git blob sha1. */
  etagOf(repo: string, file: string): string;
  close(): Promise<void>;
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function gitBlobSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

interface ResolvedFile {
  path: string;
  content: Buffer;
  lfs: boolean;
}

function normalizeFile(path: string, f: Buffer | MockFile): ResolvedFile {
  const spec = Buffer.isBuffer(f) ? { content: f } : f;
  return { path, content: spec.content, lfs: spec.lfs ?? spec.content.length > 1024 };
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!m) return 'invalid';
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'invalid';
  return { start, end };
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function drainOrClose(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startMockHub(options: MockHubOptions): Promise<MockHub> {
  const repos = new Map<string, MockRepo>(Object.entries(options.repos));
  const faults = new Map<string, MockFault & { used: number }>();
  const requests: MockRequest[] = [];
  const bySha = new Map<string, ResolvedFile>();

  const indexLfs = (repo: MockRepo): void => {
    for (const [path, f] of Object.entries(repo.files)) {
      const file = normalizeFile(path, f);
      if (file.lfs) bySha.set(sha256Hex(file.content), file);
    }
  };
  for (const repo of repos.values()) indexLfs(repo);

  const commitOf = (name: string): string => repos.get(name)?.commit ?? createHash('sha1').update(name).digest('hex');
  const fileOf = (repo: MockRepo, path: string): ResolvedFile | undefined => {
    const f = repo.files[path];
    return f === undefined ? undefined : normalizeFile(path, f);
  };

  function log(server: 'hub' | 'lfs', req: http.IncomingMessage, status: number, file: string | undefined): void {
    requests.push({
      server,
      method: req.method ?? '',
      url: req.url ?? '',
      range: req.headers.range,
      authorization: req.headers.authorization,
      status,
      file,
      at: Date.now(),
    });
  }

  /** This file's fault for this kind of request, counted as used; undefined when none applies. */
  function takeFault(file: string, kind: 'body' | 'head'): MockFault | undefined {
    const stored = faults.get(file);
    if (!stored || (stored.requests ?? 'body') !== kind || stored.used >= (stored.times ?? Infinity)) return undefined;
    stored.used += 1;
    return stored;
  }

  /** Applies the faults that replace an answer; true when the request was dealt with. */
  async function answerFault(server: 'hub' | 'lfs', req: http.IncomingMessage, res: http.ServerResponse, fault: MockFault | undefined, file: string): Promise<boolean> {
    if (fault?.responseDelayMs) await sleep(fault.responseDelayMs);
    if (fault?.noAnswer) {
      log(server, req, 0, file);
      return true; // the socket stays open and silent until the client gives up (or close())
    }
    if (fault?.status !== undefined) {
      res.writeHead(fault.status, fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {}).end();
      log(server, req, fault.status, file);
      return true;
    }
    return false;
  }

  /** Sends the file bytes (or the requested range), applying this file's fault if it has one left. */
  async function sendBody(server: 'hub' | 'lfs', req: http.IncomingMessage, res: http.ServerResponse, file: ResolvedFile, headers: Record<string, string>): Promise<void> {
    const size = file.content.length;
    const fault = req.method === 'GET' ? takeFault(file.path, 'body') : undefined;
    if (await answerFault(server, req, res, fault, file.path)) return;
    const range = fault?.ignoreRange ? undefined : parseRange(req.headers.range, size);
    if (range === 'invalid') {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end();
      log(server, req, 416, file.path);
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const status = range ? 206 : 200;
    const all: Record<string, string> = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Length': String(end - start + 1), 'Content-Type': 'application/octet-stream' };
    if (range) all['Content-Range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, all);
    log(server, req, status, file.path);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }

    let body = file.content.subarray(start, end + 1);
    if (fault?.corruptAt !== undefined && fault.corruptAt >= start && fault.corruptAt <= end) {
      body = Buffer.from(body);
      body[fault.corruptAt - start] ^= 0xff;
    }
    const cut = fault?.dropAfterBytes ?? fault?.stallAfterBytes;
    const limit = cut !== undefined ? Math.min(cut, body.length) : body.length;
    const chunkSize = fault?.chunkSize ?? 64 * 1024;
    for (let off = 0; off < limit && !res.destroyed; off += chunkSize) {
      const piece = body.subarray(off, Math.min(limit, off + chunkSize));
      if (!res.write(piece)) await drainOrClose(res);
      if (fault?.chunkDelayMs) await sleep(fault.chunkDelayMs);
    }
    if (limit < body.length && fault?.stallAfterBytes !== undefined) return; // hold the socket open, silent
    if (limit < body.length) {
      // flush what was written, then cut the connection mid-body
      await new Promise<void>((r) => res.write('', () => r()));
      res.socket?.destroy();
      return;
    }
    res.end();
  }

  const hub = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
      const send = (status: number, headers: Record<string, string> = {}): void => {
        res.writeHead(status, headers).end();
        log('hub', req, status, undefined);
      };
      if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return send(400);
      const [, repoName, rawRevision, rawPath] = m;
      const revision = decodeURIComponent(rawRevision);
      const filePath = rawPath.split('/').map(decodeURIComponent).join('/');
      const repo = repos.get(repoName);
      if (!repo) return send(404, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Repository not found' });
      if (repo.private && req.headers.authorization !== `Bearer ${options.token}`) {
        return send(401, { 'X-Error-Code': 'RepoNotFound', 'X-Error-Message': 'Invalid credentials in Authorization header' });
      }
      const commit = commitOf(repoName);
      const refs: Record<string, string> = { main: commit, ...repo.refs };
      const resolved = refs[revision] ?? (Object.values(refs).includes(revision) ? revision : undefined);
      if (!resolved) return send(404, { 'X-Error-Code': 'RevisionNotFound', 'X-Error-Message': 'Invalid rev id' });
      const file = fileOf(repo, filePath);
      if (!file) return send(404, { 'X-Error-Code': 'EntryNotFound', 'X-Error-Message': 'Entry not found' });
      if (req.method === 'HEAD' && (await answerFault('hub', req, res, takeFault(file.path, 'head'), file.path))) return;

      const common = { 'X-Repo-Commit': resolved };
      if (!file.lfs) {
        await sendBody('hub', req, res, file, { ...common, ETag: `"${gitBlobSha1(file.content)}"` });
        return;
      }
      const sha = sha256Hex(file.content);
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${file.content.length}\n`;
      const body = 'Found. Redirecting';
      res.writeHead(302, {
        ...common,
        Location: `${lfsEndpoint}/lfs/${sha}?signature=mock`,
        ETag: `"${gitBlobSha1(Buffer.from(pointer))}"`,
        'X-Linked-Etag': `"${sha}"`,
        'X-Linked-Size': String(file.content.length),
        'Content-Length': String(body.length),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      log('hub', req, 302, file.path);
    })().catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });

  const lfs = http.createServer((req, res) => {
    void (async () => {
      const m = /^\/lfs\/([0-9a-f]{64})$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      const file = m ? bySha.get(m[1]) : undefined;
      if (!file) {
        res.writeHead(404).end();
        log('lfs', req, 404, undefined);
        return;
      }
      await sendBody('lfs', req, res, file, { ETag: `"${m?.[1]}"` });
    })().catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });

  const endpoint = await listen(hub);
  const lfsEndpoint = await listen(lfs);

  const close = (server: http.Server): Promise<void> =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    endpoint,
    lfsEndpoint,
    requests,
    count(filter = {}) {
      return requests.filter(
        (r) =>
          (filter.server === undefined || r.server === filter.server) &&
          (filter.method === undefined || r.method === filter.method) &&
          (filter.file === undefined || r.file === filter.file) &&
          (filter.body === undefined || filter.body === (r.method === 'GET' && (r.status === 200 || r.status === 206))),
      ).length;
    },
    setRepo(name, repo) {
      repos.set(name, repo);
      indexLfs(repo);
    },
    setFault(file, fault) {
      faults.set(file, { ...fault, used: 0 });
    },
    clearFaults() {
      faults.clear();
    },
    commitOf,
    etagOf(repoName, path) {
      const repo = repos.get(repoName);
      const file = repo && fileOf(repo, path);
      if (!file) throw new Error(`mock hub has no ${path} in ${repoName}`);
      return file.lfs ? sha256Hex(file.content) : gitBlobSha1(file.content);
    },
    async close() {
      await Promise.all([close(hub), close(lfs)]);
    },
  };
}
