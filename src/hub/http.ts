import { AbortError } from '../errors.js';
import { normalizeEtag } from './cache-layout.js';
import { DownloadError, type HubFileRef } from './errors.js';

/** What a HEAD on the resolve URL tells us before downloading (huggingface_hub's HfFileMetadata). */
export interface FileMetadata {
  commit: string;
  /** Blob name: X-Linked-Etag (sha256 of an LFS file) or ETag (git blob id), unquoted. */
  etag: string;
  /** X-Linked-Size or Content-Length; undefined when the server announced neither. */
  size: number | undefined;
  /** Where the bytes are: the resolve URL, or the LFS/CDN host it redirects to. */
  downloadUrl: string;
}

const MAX_REDIRECTS = 5;

/** Statuses that mean "try again" (rate limit, overload, gateway trouble), as huggingface_hub retries them. */
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

/** A failure worth another attempt: dropped, stalled or silent connection, or a retryable status. */
export class TransientError extends Error {
  constructor(message: string, readonly retryAfterMs?: number, readonly status?: number) {
    super(message);
    this.name = 'TransientError';
  }
}

/** The wait a 429/503 asks for (Retry-After: seconds or an HTTP date), in ms; undefined when absent or unreadable. */
export function retryAfterMs(res: Response, now = Date.now()): number | undefined {
  const raw = res.headers.get('retry-after')?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** A TransientError for a retryable status, else undefined. The body is discarded. */
export async function transientStatus(res: Response): Promise<TransientError | undefined> {
  if (!RETRYABLE_STATUS.has(res.status)) return undefined;
  await res.body?.cancel();
  return new TransientError(`HTTP ${res.status} ${res.statusText}`.trim(), retryAfterMs(res), res.status);
}

function resolveUrl(endpoint: string, ref: HubFileRef): string {
  const file = ref.path.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${file}`;
}

/**
 * The token only ever goes to the endpoint's own origin: LFS/CDN hosts get signed URLs and must
 * not see it (huggingface_hub drops Authorization when the redirect leaves the hub's host).
 */
function requestHeaders(url: string, endpoint: string, token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'rudolph-ts', ...extra };
  if (token && new URL(url).origin === new URL(endpoint).origin) headers.Authorization = `Bearer ${token}`;
  return headers;
}

/** Errors that mean "cannot reach the host at all", as opposed to a transfer dropped midway. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

/** The system error code behind a fetch failure (fetch wraps it in TypeError('fetch failed')). */
function networkErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    if (typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
      const code = (e as { code: string }).code;
      if (code !== 'ABORT_ERR') return code;
    }
    if (e instanceof Error && e.name === 'TimeoutError') return 'ETIMEDOUT';
    e = e instanceof Error ? e.cause : undefined;
  }
  return undefined;
}

export function isUnreachable(err: unknown): boolean {
  const code = networkErrorCode(err);
  return code !== undefined && UNREACHABLE_CODES.has(code);
}

export function describeNetworkError(err: unknown): string {
  const code = networkErrorCode(err);
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
  const msg = err instanceof Error ? err.message : String(err);
  return [code, cause ?? msg].filter((x) => x).join(': ');
}

/** Turns an error status from the hub into a DownloadError that says what to do about it. */
export function hubStatusError(res: Response, ref: HubFileRef, endpoint: string): DownloadError {
  const code = res.headers.get('x-error-code') ?? '';
  const hubMessage = res.headers.get('x-error-message');
  const detail = hubMessage ? ` (hub says: ${hubMessage})` : '';
  const where = `${ref.path} of ${ref.repo} at revision ${ref.revision} on ${endpoint}`;
  const details = { ...ref, status: res.status };
  if (res.status === 401 || res.status === 403 || code === 'GatedRepo') {
    return new DownloadError(
      `access denied (HTTP ${res.status}) to ${where}${detail}: the repo is private or gated (the hub also answers 401 for a repo that does not exist), or the token is wrong. ` +
        `Give a token of an account with access: set HF_TOKEN, pass --token (CLI) or the \`token\` option (library), or log in once with \`huggingface-cli login\`; for a gated repo accept its terms at ${endpoint}/${ref.repo} first.`,
      details,
    );
  }
  if (res.status === 404) {
    if (code === 'EntryNotFound') return new DownloadError(`file ${ref.path} does not exist in ${ref.repo} at revision ${ref.revision}${detail}`, details);
    if (code === 'RevisionNotFound') return new DownloadError(`revision ${ref.revision} does not exist in ${ref.repo}${detail}`, details);
    if (code === 'RepoNotFound') return new DownloadError(`repo ${ref.repo} does not exist on ${endpoint} (or is private: set HF_TOKEN or pass --token)${detail}`, details);
    return new DownloadError(`not found (HTTP 404): ${where}${detail}`, details);
  }
  return new DownloadError(`the hub answered HTTP ${res.status} ${res.statusText} for ${where}${detail}`, details);
}

/**
 * fetch with manual redirects, so each hop gets headers for its own origin. `relativeOnly`
 * stops at the first redirect to another host (the HEAD wants that response's X-Linked-* headers).
 */
async function fetchHops(
  url: string,
  init: { method: 'HEAD' | 'GET'; endpoint: string; token: string | undefined; headers?: Record<string, string>; signal: AbortSignal; relativeOnly: boolean },
): Promise<{ res: Response; url: string }> {
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await fetch(current, {
      method: init.method,
      headers: requestHeaders(current, init.endpoint, init.token, init.headers),
      redirect: 'manual',
      signal: init.signal,
    });
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || location === null) return { res, url: current };
    const next = new URL(location, current);
    if (init.relativeOnly && next.origin !== new URL(current).origin) return { res, url: current };
    if (hop >= MAX_REDIRECTS) throw new DownloadError(`too many redirects fetching ${url}`);
    await res.body?.cancel();
    current = next.toString();
  }
}

export async function fetchFileMetadata(
  ref: HubFileRef,
  settings: { endpoint: string; token: string | undefined },
  signal: AbortSignal,
): Promise<FileMetadata> {
  const url = resolveUrl(settings.endpoint, ref);
  const { res, url: finalUrl } = await fetchHops(url, { method: 'HEAD', ...settings, signal, relativeOnly: true });
  const transient = await transientStatus(res);
  if (transient) throw transient;
  if (res.status >= 400) throw hubStatusError(res, ref, settings.endpoint);

  const commit = res.headers.get('x-repo-commit');
  const rawEtag = res.headers.get('x-linked-etag') ?? res.headers.get('etag');
  const rawSize = res.headers.get('x-linked-size') ?? res.headers.get('content-length');
  if (!commit || !rawEtag) {
    throw new DownloadError(
      `${settings.endpoint} did not answer like a Hugging Face hub for ${ref.path} of ${ref.repo} (missing ${!commit ? 'X-Repo-Commit' : 'ETag'} header); check HF_ENDPOINT or any proxy in between`,
      { ...ref, status: res.status },
    );
  }
  const size = rawSize === null ? undefined : Number(rawSize);
  const location = res.headers.get('location');
  return {
    commit,
    etag: normalizeEtag(rawEtag),
    size: size !== undefined && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
    downloadUrl: location !== null && res.status >= 300 && res.status < 400 ? new URL(location, finalUrl).toString() : finalUrl,
  };
}

/** GET of the file bytes from `offset` on, following redirects (Authorization stays on the hub's origin). */
export async function fetchFileBody(
  url: string,
  offset: number,
  settings: { endpoint: string; token: string | undefined },
  signal: AbortSignal,
): Promise<Response> {
  const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
  const { res } = await fetchHops(url, { method: 'GET', ...settings, headers, signal, relativeOnly: false });
  return res;
}

/** Maps an abort from the caller's signal to the library's AbortError. */
export function abortErrorFor(signal: AbortSignal | undefined, what: string): AbortError | undefined {
  if (!signal?.aborted) return undefined;
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
  return new AbortError(`${what} was aborted${reason}`);
}
