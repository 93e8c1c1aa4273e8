import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, open, rename, rm, stat, symlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { RudolphError } from '../errors.js';
import { writeFileAtomic, writeFully } from '../io/files.js';
import {
  COMMIT_HASH_RE,
  blobPath,
  incompletePath,
  lockPath,
  refPath,
  snapshotFilePath,
  validateRepoFilePath,
  validateRepoId,
  validateRevision,
} from './cache-layout.js';
import { DownloadError, IntegrityError, OfflineError, type HubFileRef } from './errors.js';
import { abortErrorFor, describeNetworkError, fetchFileBody, fetchFileMetadata, hubStatusError, isUnreachable, type FileMetadata } from './http.js';
import { verifyBlobFile } from './integrity.js';
import { acquireLock, sleep } from './lock.js';
import { cachedCommitFor, offlineError } from './offline.js';
import { ProgressTracker, type ProgressCallback } from './progress.js';
import { resolveHubSettings, type HubOptions, type HubSettings } from './settings.js';

export interface DownloadOptions extends HubOptions {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /**
   * Ask the hub where a branch/tag points now even when the cache already has the file for it
   * (huggingface_hub's default). Off by default: a cached file is used without any network.
   */
  refresh?: boolean;
  /** Consecutive failed attempts (dropped connection, stall, 5xx) before giving up (default 5). */
  retries?: number;
  /** Limit for the metadata request and for a body that stops sending data (default 10 s). */
  timeoutMs?: number;
}

export interface DownloadFileRequest extends DownloadOptions {
  repo: string;
  /** Path of the file inside the repo. */
  path: string;
}

export interface CachedFileRequest {
  repo: string;
  path: string;
  revision?: string;
  cacheDir?: string;
}

/** Where a downloaded (or cached) file ended up and which commit it came from. */
export interface DownloadedFile extends HubFileRef {
  commit: string;
  localPath: string;
  fromCache: boolean;
}

const DEFAULT_RETRIES = 5;
const DEFAULT_TIMEOUT_MS = 10_000;

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    const st = await stat(file);
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** snapshots/<commit>/<path> → ../../blobs/<etag> (relative, like huggingface_hub); a copy where symlinks fail. */
async function linkSnapshot(blob: string, pointer: string): Promise<void> {
  await mkdir(path.dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${randomUUID()}.tmp`;
  try {
    await symlink(path.relative(path.dirname(pointer), blob), tmp);
  } catch {
    await copyFile(blob, tmp);
  }
  await rename(tmp, pointer).catch(async (err: unknown) => {
    await rm(tmp, { force: true });
    throw err;
  });
}

/** A cached file for a revision, without any network; null when the cache lacks it. */
export async function resolveCachedFile(request: CachedFileRequest): Promise<string | null> {
  const revision = request.revision ?? 'main';
  validateRepoId(request.repo);
  validateRepoFilePath(request.path);
  validateRevision(revision);
  const { cacheDir } = resolveHubSettings({ cacheDir: request.cacheDir });
  return cachedPathAt(cacheDir, request.repo, revision, request.path);
}

async function cachedPathAt(cacheDir: string, repo: string, revision: string, file: string): Promise<string | null> {
  const commit = await cachedCommitFor(cacheDir, repo, revision);
  if (commit === undefined) return null;
  const pointer = snapshotFilePath(cacheDir, repo, commit, file);
  return (await sizeOf(pointer)) === undefined ? null : pointer;
}

/** Downloads one file of a model repo into the hub cache (or finds it there) and returns its snapshot path. */
export async function downloadFile(request: DownloadFileRequest): Promise<string> {
  return (await downloadFileInfo(request)).localPath;
}

/** downloadFile with the commit it resolved to and whether the cache already had it. */
export async function downloadFileInfo(request: DownloadFileRequest): Promise<DownloadedFile> {
  const ref: HubFileRef = { repo: request.repo, path: request.path, revision: request.revision ?? 'main' };
  validateRepoId(ref.repo);
  validateRepoFilePath(ref.path);
  validateRevision(ref.revision);
  return fetchToCache(ref, resolveHubSettings(request), request, undefined);
}

/**
 * Downloads several files of one repo, all from the commit the first one resolves to, one after
 * another. Offline, one OfflineError lists every file that is missing.
 */
export async function downloadFiles(repo: string, paths: readonly string[], options: DownloadOptions = {}): Promise<string[]> {
  const revision = options.revision ?? 'main';
  validateRepoId(repo);
  validateRevision(revision);
  for (const p of paths) validateRepoFilePath(p);
  const settings = resolveHubSettings(options);
  const out: string[] = [];
  let pinned: string | undefined;
  for (const file of paths) {
    try {
      const got = await fetchToCache({ repo, path: file, revision }, settings, options, pinned);
      pinned ??= got.commit;
      out.push(got.localPath);
    } catch (err) {
      if (!(err instanceof OfflineError)) throw err;
      const missing: HubFileRef[] = [];
      for (const p of paths) {
        if ((await cachedPathAt(settings.cacheDir, repo, pinned ?? revision, p)) === null) missing.push({ repo, path: p, revision });
      }
      throw await offlineError(missing, settings.cacheDir, err.reason, err.cause);
    }
  }
  return out;
}

async function fetchToCache(ref: HubFileRef, settings: HubSettings, options: DownloadOptions, pinnedCommit: string | undefined): Promise<DownloadedFile> {
  const { cacheDir } = settings;
  const signal = options.signal;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const label = `${ref.path} of ${ref.repo}@${ref.revision}`;
  const lookup = pinnedCommit ?? ref.revision;

  const cached = await cachedPathAt(cacheDir, ref.repo, lookup, ref.path);
  const fromCache = async (localPath: string): Promise<DownloadedFile> => {
    const commit = (await cachedCommitFor(cacheDir, ref.repo, lookup)) ?? lookup;
    new ProgressTracker(ref.repo, ref.path, (await sizeOf(localPath)) ?? null, options.onProgress).finish(true);
    return { ...ref, commit, localPath, fromCache: true };
  };
  if (cached !== null && (!options.refresh || COMMIT_HASH_RE.test(lookup))) return fromCache(cached);
  if (settings.offline) {
    if (cached !== null) return fromCache(cached);
    throw await offlineError([ref], cacheDir, settings.offlineReason ?? 'offline mode is on');
  }

  const aborted = abortErrorFor(signal, `download of ${label}`);
  if (aborted) throw aborted;
  let meta: FileMetadata;
  try {
    const headSignal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]);
    meta = await fetchFileMetadata({ ...ref, revision: lookup }, settings, headSignal);
  } catch (err) {
    const abortErr = abortErrorFor(signal, `download of ${label}`);
    if (abortErr) throw abortErr;
    if (err instanceof RudolphError) throw err;
    if (isUnreachable(err)) {
      if (cached !== null) return fromCache(cached);
      throw await offlineError([ref], cacheDir, `the hub at ${settings.endpoint} cannot be reached (${describeNetworkError(err)})`, err);
    }
    throw new DownloadError(`could not get ${label} from ${settings.endpoint}: ${describeNetworkError(err)}`, { ...ref, cause: err });
  }
  if (!/^[\w.-]+$/.test(meta.etag) || !COMMIT_HASH_RE.test(meta.commit)) {
    throw new DownloadError(`the hub sent an unusable ETag "${meta.etag}" or commit "${meta.commit}" for ${label}`, ref);
  }

  const pointer = snapshotFilePath(cacheDir, ref.repo, meta.commit, ref.path);
  const blob = blobPath(cacheDir, ref.repo, meta.etag);
  const blobReady = async (): Promise<boolean> => {
    const size = await sizeOf(blob);
    return size !== undefined && (meta.size === undefined || size === meta.size);
  };
  const tracker = new ProgressTracker(ref.repo, ref.path, meta.size ?? null, options.onProgress);
  let transferred = false;
  // an existing snapshot entry is trusted as huggingface_hub does (it may be a plain copy with no blob)
  if ((await sizeOf(pointer)) === undefined) {
    if (!(await blobReady())) {
      await mkdir(path.dirname(blob), { recursive: true });
      const lock = await acquireLock(lockPath(cacheDir, ref.repo, meta.etag), { signal }).catch((err: unknown) => {
        throw abortErrorFor(signal, `download of ${label}`) ?? err;
      });
      try {
        // whoever held the lock may have just finished this blob
        if (!(await blobReady())) {
          await downloadBlob(ref, meta, blob, settings, options, tracker);
          transferred = true;
        }
      } finally {
        await lock.release();
      }
    }
    await linkSnapshot(blob, pointer);
  }
  if (ref.revision !== meta.commit) await writeFileAtomic(refPath(cacheDir, ref.repo, ref.revision), meta.commit);
  tracker.finish(!transferred);
  return { ...ref, commit: meta.commit, localPath: pointer, fromCache: !transferred };
}

/**
 * Fills blobs/<etag>.incomplete (resuming what an earlier run left), verifies size and hash,
 * and only then renames it to blobs/<etag>. A partial that was resumed and fails the hash is
 * thrown away and fetched once more from scratch: its bytes may come from a different run.
 */
async function downloadBlob(ref: HubFileRef, meta: FileMetadata, blob: string, settings: HubSettings, options: DownloadOptions, tracker: ProgressTracker): Promise<void> {
  const part = incompletePath(blob);
  const label = `${ref.path} of ${ref.repo}@${ref.revision}`;
  for (let fromScratch = false; ; fromScratch = true) {
    const resumed = ((await sizeOf(part)) ?? 0) > 0;
    await transfer(ref, meta, part, settings, options, tracker);
    try {
      await verifyBlobFile(part, meta.etag, meta.size, label);
      break;
    } catch (err) {
      await rm(part, { force: true });
      if (err instanceof IntegrityError && resumed && !fromScratch) continue;
      throw err;
    }
  }
  await rename(part, blob);
}

/** A failure worth another attempt: the connection dropped, stalled, or the server had a 5xx moment. */
class TransientError extends Error {}

async function transfer(ref: HubFileRef, meta: FileMetadata, part: string, settings: HubSettings, options: DownloadOptions, tracker: ProgressTracker): Promise<void> {
  const retries = options.retries ?? DEFAULT_RETRIES;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const label = `${ref.path} of ${ref.repo}@${ref.revision}`;
  let failures = 0;
  for (;;) {
    let offset = (await sizeOf(part)) ?? 0;
    if (meta.size !== undefined && offset > meta.size) {
      await rm(part, { force: true });
      offset = 0;
    }
    if (meta.size !== undefined && offset === meta.size) return;

    const stall = new AbortController();
    const timer = setTimeout(() => stall.abort(new Error(`no data for ${timeoutMs} ms`)), timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, stall.signal]) : stall.signal;
    let handle: FileHandle | undefined;
    let received = 0;
    try {
      const res = await fetchFileBody(meta.downloadUrl, offset, settings, signal);
      const rangeStart = Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
      if (res.status === 416 || (offset > 0 && (res.status === 200 || (res.status === 206 && rangeStart !== offset)))) {
        // the server will not continue our partial: start over
        await res.body?.cancel();
        await rm(part, { force: true });
        throw new TransientError(`the server did not resume at byte ${offset} (HTTP ${res.status})`);
      }
      if (res.status >= 500 || res.status === 429) {
        await res.body?.cancel();
        throw new TransientError(`HTTP ${res.status} ${res.statusText}`);
      }
      if (res.status >= 300) {
        await res.body?.cancel();
        throw hubStatusError(res, ref, settings.endpoint);
      }
      handle = await open(part, 'a');
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          timer.refresh();
          await writeFully(handle, value).catch((err: unknown) => {
            throw new DownloadError(`cannot write ${part}: ${err instanceof Error ? err.message : String(err)}`, { ...ref, cause: err });
          });
          received += value.length;
          tracker.update(offset + received);
        }
      }
      if (meta.size === undefined || offset + received >= meta.size) return;
      throw new TransientError(`the connection closed after ${offset + received} of ${meta.size} bytes`);
    } catch (err) {
      const abortErr = abortErrorFor(options.signal, `download of ${label}`);
      if (abortErr) throw abortErr;
      if (err instanceof RudolphError) throw err;
      if (received > 0) failures = 0; // it was making progress: only stalls in a row count
      failures += 1;
      if (failures > retries) {
        const have = (await sizeOf(part)) ?? 0;
        throw new DownloadError(
          `download of ${label} failed ${failures} times in a row (last: ${err instanceof TransientError ? err.message : describeNetworkError(err)}); ` +
            `${have} of ${meta.size ?? '?'} bytes are kept in ${part} and the next run resumes from there`,
          { ...ref, cause: err },
        );
      }
      await sleep(Math.min(4000, 250 * 2 ** (failures - 1)), options.signal);
      const abortAfterSleep = abortErrorFor(options.signal, `download of ${label}`);
      if (abortAfterSleep) throw abortAfterSleep;
    } finally {
      clearTimeout(timer);
      await handle?.close();
    }
  }
}
