import { RudolphError } from '../errors.js';

/** Where a hub failure happened, so callers can show or log it without parsing the message. */
export interface HubFileRef {
  repo: string;
  path: string;
  revision: string;
}

/** A hub or network failure: HTTP error status, missing repo/file/revision, too many dropped connections. */
export class DownloadError extends RudolphError {
  readonly repo: string | undefined;
  readonly path: string | undefined;
  readonly revision: string | undefined;
  /** HTTP status when the hub answered with an error; undefined for network failures. */
  readonly status: number | undefined;
  constructor(message: string, details: Partial<HubFileRef> & { status?: number; cause?: unknown } = {}) {
    super('DOWNLOAD', message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'DownloadError';
    this.repo = details.repo;
    this.path = details.path;
    this.revision = details.revision;
    this.status = details.status;
  }
}

/** Files are needed, are not in the cache, and the hub cannot be used (offline mode or unreachable). */
export class OfflineError extends RudolphError {
  /** The first missing file (all of them are in `missing`). */
  readonly repo: string;
  readonly path: string;
  readonly revision: string;
  readonly missing: readonly HubFileRef[];
  readonly cacheDir: string;
  /** Why the hub was not used, e.g. "HF_HUB_OFFLINE=1 is set". */
  readonly reason: string;
  constructor(message: string, details: HubFileRef & { missing?: HubFileRef[]; cacheDir: string; reason: string; cause?: unknown }) {
    super('OFFLINE', message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'OfflineError';
    this.repo = details.repo;
    this.path = details.path;
    this.revision = details.revision;
    this.missing = details.missing ?? [{ repo: details.repo, path: details.path, revision: details.revision }];
    this.cacheDir = details.cacheDir;
    this.reason = details.reason;
  }
}

/** Downloaded or cached bytes do not match the size or hash the hub announced. */
export class IntegrityError extends RudolphError {
  readonly file: string;
  readonly expected: string;
  readonly actual: string;
  constructor(message: string, details: { file: string; expected: string; actual: string }) {
    super('INTEGRITY', message);
    this.name = 'IntegrityError';
    this.file = details.file;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}
