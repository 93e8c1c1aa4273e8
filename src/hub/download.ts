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
import {
  abortErrorFor, describeNetworkError, fetchFileBody, fetchFileMetadata, hubStatusError, isUnreachable, transientStatus, TransientError,
  type FileMetadata,
} from './http.js';
import { verifyBlobFile } from './integrity.js';
import { acquireLock, sleep } from './lock.js';
import { cachedCommitFor, offlineError } from './offline.js';
import { ProgressTracker, type ProgressCallback } from './progress.js';
import { Deadline, seconds } from './deadline.js';
import {
  MAX_RETRY_AFTER_MS, resolveHubSettings, resolveNetworkSettings,
  type HubOptions, type HubSettings, type NetworkOptions, type NetworkSettings,
} from './settings.js';

export interface DownloadOptions extends HubOptions, NetworkOptions {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /**
   * Ask the hub where a branch/tag points now even when the cache already has the file for it
   * (huggingface_hub's default). Off by default: a cached file is used without any network.
   */
  refresh?: boolean;
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
  const network = resolveNetworkSettings(options);
  let meta: FileMetadata;
  try {
    meta = await fetchMetadata({ ...ref, revision: lookup }, settings, network, signal);
  } catch (err) {
    const abortErr = abortErrorFor(signal, `download of ${label}`);
    if (abortErr) throw abortErr;
    if (err instanceof RudolphError) throw err;
    const silent = err instanceof TransientError && err.status === undefined;
    if (silent || isUnreachable(err)) {
      // huggingface_hub's fallback: a hub that cannot be used does not stop a cached file
      if (cached !== null) return fromCache(cached);
      const why = silent ? err.message : `cannot be reached (${describeNetworkError(err)})`;
      throw await offlineError([ref], cacheDir, `the hub at ${settings.endpoint} ${why}`, err);
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
          await downloadBlob(ref, meta, blob, settings, network, options, tracker);
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
async function downloadBlob(
  ref: HubFileRef, meta: FileMetadata, blob: string, settings: HubSettings, network: NetworkSettings, options: DownloadOptions, tracker: ProgressTracker,
): Promise<void> {
  const part = incompletePath(blob);
  const label = `${ref.path} of ${ref.repo}@${ref.revision}`;
  for (let fromScratch = false; ; fromScratch = true) {
    const resumed = ((await sizeOf(part)) ?? 0) > 0;
    await transfer(ref, meta, part, settings, network, options, tracker);
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

/** What to tell the user about a failed attempt, timeouts named with the setting that controls them. */
function attemptFailure(err: unknown, deadline: Deadline): string {
  const timeout = deadline.timeout;
  if (timeout) return `${timeout.message} (HF_HUB_DOWNLOAD_TIMEOUT or timeoutMs sets the limit)`;
  return err instanceof TransientError ? err.message : describeNetworkError(err);
}

/** The pause before the next attempt: what a 429/503 asked for (bounded), else exponential backoff. */
function retryDelay(err: unknown, failures: number, label: string, ref: HubFileRef): number {
  const asked = err instanceof TransientError ? err.retryAfterMs : undefined;
  if (asked === undefined) return Math.min(4000, 250 * 2 ** (failures - 1));
  if (asked > MAX_RETRY_AFTER_MS) {
    throw new DownloadError(
      `${label}: the server answered ${(err as TransientError).message} and asks to retry after ${seconds(asked)} s, longer than the ${seconds(MAX_RETRY_AFTER_MS)} s we wait; try again later`,
      { ...ref, status: (err as TransientError).status, cause: err },
    );
  }
  return asked;
}

/** Waits, then throws AbortError if the caller aborted meanwhile. */
async function pause(ms: number, signal: AbortSignal | undefined, label: string): Promise<void> {
  await sleep(ms, signal);
  const aborted = abortErrorFor(signal, `download of ${label}`);
  if (aborted) throw aborted;
}

/**
 * The HEAD that resolves commit, etag and size, under its own timeout; 429 and 5xx answers are
 * retried (honouring Retry-After). A silent hub ends in a TransientError without a status.
 */
async function fetchMetadata(ref: HubFileRef, settings: HubSettings, network: NetworkSettings, signal: AbortSignal | undefined): Promise<FileMetadata> {
  const label = `${ref.path} of ${ref.repo}@${ref.revision}`;
  for (let failures = 0; ; ) {
    const deadline = new Deadline(network.metadataTimeoutMs, signal);
    let failure: unknown;
    try {
      return await fetchFileMetadata(ref, settings, deadline.signal);
    } catch (err) {
      failure = err;
    } finally {
      deadline.dispose();
    }
    if (signal?.aborted) throw failure;
    if (deadline.timeout) {
      throw new TransientError(
        `accepted the connection but gave no answer within ${seconds(network.metadataTimeoutMs)} s (set HF_HUB_DOWNLOAD_TIMEOUT, in seconds, or timeoutMs to wait longer)`,
      );
    }
    if (!(failure instanceof TransientError)) throw failure;
    failures += 1;
    if (failures > network.retries) {
      throw new DownloadError(`the hub at ${settings.endpoint} answered ${failure.message} for ${label} ${failures} times in a row; try again later`, {
        ...ref, status: failure.status, cause: failure,
      });
    }
    await pause(retryDelay(failure, failures, label, ref), signal, label);
  }
}

/**
 * Appends the missing bytes to `part`, resuming with Range. Every request runs under a Deadline
 * (connect + headers, then idle between chunks). Attempts are bounded twice: `retries` failures
 * in a row that bring no byte beyond the farthest point reached so far (a server that sends a
 * little, stalls and ignores Range makes no such progress), and `retryBudget` retries in all.
 */
async function transfer(
  ref: HubFileRef, meta: FileMetadata, part: string, settings: HubSettings, network: NetworkSettings, options: DownloadOptions, tracker: ProgressTracker,
): Promise<void> {
  const label = `${ref.path} of ${ref.repo}@${ref.revision}`;
  let failures = 0;
  let retried = 0;
  let reached = (await sizeOf(part)) ?? 0;
  for (;;) {
    let offset = (await sizeOf(part)) ?? 0;
    if (meta.size !== undefined && offset > meta.size) {
      await rm(part, { force: true });
      offset = 0;
    }
    if (meta.size !== undefined && offset === meta.size) return;

    const deadline = new Deadline(network.downloadTimeoutMs, options.signal);
    let handle: FileHandle | undefined;
    let received = 0;
    try {
      const res = await fetchFileBody(meta.downloadUrl, offset, settings, deadline.signal);
      deadline.touch();
      const rangeStart = Number(/^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
      if (res.status === 416 || (offset > 0 && (res.status === 200 || (res.status === 206 && rangeStart !== offset)))) {
        // the server will not continue our partial: start over
        await res.body?.cancel();
        await rm(part, { force: true });
        throw new TransientError(`the server did not resume at byte ${offset} (HTTP ${res.status})`);
      }
      const transient = await transientStatus(res);
      if (transient) throw transient;
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
          deadline.touch();
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
      if (offset + received > reached) {
        reached = offset + received;
        failures = 0;
      }
      failures += 1;
      retried += 1;
      const last = attemptFailure(err, deadline);
      const kept = async (): Promise<string> =>
        `${(await sizeOf(part)) ?? 0} of ${meta.size ?? '?'} bytes are kept in ${part} and the next run resumes from there`;
      if (failures > network.retries) {
        throw new DownloadError(`download of ${label} failed ${failures} times in a row with no new bytes (last: ${last}); ${await kept()}`, { ...ref, cause: err });
      }
      if (retried > network.retryBudget) {
        throw new DownloadError(
          `download of ${label} failed ${retried} times, over its retry budget of ${network.retryBudget} retries (last: ${last}); ${await kept()}`,
          { ...ref, cause: err },
        );
      }
      await pause(retryDelay(err, failures, label, ref), options.signal, label);
    } finally {
      deadline.dispose();
      await handle?.close();
    }
  }
}
