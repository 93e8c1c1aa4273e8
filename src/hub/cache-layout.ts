import path from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';
import { InputError } from '../errors.js';

/**
 * Paths of the huggingface_hub cache layout, so Python tools and we share one cache:
 *   <cache>/models--org--name/blobs/<etag>            file contents, named by sha256 (LFS) or git sha1
 *   <cache>/models--org--name/snapshots/<commit>/<p>  symlinks ../../blobs/<etag> (copies where symlinks fail)
 *   <cache>/models--org--name/refs/<revision>         the commit a branch/tag last resolved to
 *   <cache>/.locks/models--org--name/<etag>.lock
 */

export const COMMIT_HASH_RE = /^[0-9a-f]{40}$/;

const REPO_ID_RE = /^(?:[\w.-]+\/)?[\w.-]{1,96}$/;

export function validateRepoId(repo: string): void {
  if (!REPO_ID_RE.test(repo) || repo.includes('--') || repo.includes('..') || repo.endsWith('.git') || /(^|\/)[.-]|[.-]($|\/)/.test(repo)) {
    throw new InputError(`"${repo}" is not a valid Hugging Face repo id (expected "org/name", e.g. "shonenkov-AI/RuDOLPH-350M-v2")`);
  }
}

/** A repo file path must stay inside the snapshot folder. */
export function validateRepoFilePath(file: string): void {
  const parts = file.split('/');
  if (file === '' || file.includes('\\') || file.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new InputError(`"${file}" is not a valid file path inside a repo (relative, "/"-separated, no "." or ".." parts)`);
  }
}

export function validateRevision(revision: string): void {
  const parts = revision.split('/');
  if (revision === '' || revision.includes('\\') || revision.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new InputError(`"${revision}" is not a valid revision (a branch, tag or 40-hex commit id)`);
  }
}

/** The hash part of an ETag as the cache names blobs: without W/ and quotes. */
export function normalizeEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

export function repoFolderName(repo: string): string {
  return getRepoFolderName({ name: repo, type: 'model' });
}

export function repoDir(cacheDir: string, repo: string): string {
  return path.join(cacheDir, repoFolderName(repo));
}

export function blobPath(cacheDir: string, repo: string, etag: string): string {
  return path.join(repoDir(cacheDir, repo), 'blobs', etag);
}

export function incompletePath(blob: string): string {
  return `${blob}.incomplete`;
}

function snapshotDir(cacheDir: string, repo: string, commit: string): string {
  return path.join(repoDir(cacheDir, repo), 'snapshots', commit);
}

export function snapshotFilePath(cacheDir: string, repo: string, commit: string, file: string): string {
  return path.join(snapshotDir(cacheDir, repo, commit), ...file.split('/'));
}

export function refPath(cacheDir: string, repo: string, revision: string): string {
  return path.join(repoDir(cacheDir, repo), 'refs', ...revision.split('/'));
}

export function lockPath(cacheDir: string, repo: string, etag: string): string {
  return path.join(cacheDir, '.locks', repoFolderName(repo), `${etag}.lock`);
}
