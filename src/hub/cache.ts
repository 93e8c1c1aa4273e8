import { lstat, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { repoDir, repoFolderName, validateRepoId, validateRevision } from './cache-layout.js';
import { hashFile } from '../io/hash.js';
import { hashKindOf, type HashKind } from './integrity.js';
import { cachedCommitFor } from './offline.js';
import { resolveHubSettings } from './settings.js';

/** Listing, removal and verification of a hub cache, for `rudolph cache ls|rm|verify`. */

export interface CachedFileEntry {
  /** Path inside the repo. */
  path: string;
  /** The snapshot entry (a symlink to the blob, or a plain copy). */
  localPath: string;
  size: number;
  /** Blob name the snapshot entry links to; null for a plain copy. */
  blob: string | null;
}

export interface CachedRevisionEntry {
  commit: string;
  /** Branch/tag names in refs/ that point at this commit. */
  refs: string[];
  files: CachedFileEntry[];
  /** Sum of the file sizes (blobs shared with other revisions count in each). */
  size: number;
}

export interface CachedRepoEntry {
  /** "org/name" (datasets/spaces keep their type in `type`). */
  repo: string;
  type: string;
  dir: string;
  revisions: CachedRevisionEntry[];
  /** Bytes on disk: every complete blob once, plus snapshot files that are plain copies. */
  size: number;
  /** Bytes in blobs/*.incomplete (interrupted downloads that the next run resumes). */
  incompleteBytes: number;
}

export interface CacheListing {
  cacheDir: string;
  repos: CachedRepoEntry[];
  size: number;
  /** Things that look wrong (dangling links, refs to missing snapshots, unreadable folders). */
  warnings: string[];
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/** "models--org--name" → {type: 'model', repo: 'org/name'}; undefined for other folders. */
function parseRepoFolder(name: string): { type: string; repo: string } | undefined {
  const [typePlural, ...parts] = name.split('--');
  if (parts.length === 0 || !['models', 'datasets', 'spaces'].includes(typePlural)) return undefined;
  return { type: typePlural.slice(0, -1), repo: parts.join('/') };
}

async function readRefs(refsDir: string, prefix = ''): Promise<Map<string, string[]>> {
  const byCommit = new Map<string, string[]>();
  for (const name of await readdirOrEmpty(refsDir)) {
    const full = path.join(refsDir, name);
    if ((await lstat(full)).isDirectory()) {
      for (const [commit, refs] of await readRefs(full, `${prefix}${name}/`)) byCommit.set(commit, [...(byCommit.get(commit) ?? []), ...refs]);
    } else if (!name.endsWith('.tmp')) {
      const commit = (await readFile(full, 'utf8')).trim();
      byCommit.set(commit, [...(byCommit.get(commit) ?? []), `${prefix}${name}`]);
    }
  }
  return byCommit;
}

async function scanSnapshot(dir: string, blobsDir: string, warnings: string[], prefix = ''): Promise<CachedFileEntry[]> {
  const files: CachedFileEntry[] = [];
  for (const name of await readdirOrEmpty(dir)) {
    if (name.endsWith('.tmp')) continue; // a link being created right now
    const full = path.join(dir, name);
    const st = await lstat(full);
    if (st.isDirectory()) {
      files.push(...(await scanSnapshot(full, blobsDir, warnings, `${prefix}${name}/`)));
    } else if (st.isSymbolicLink()) {
      const target = path.resolve(dir, await readlink(full));
      try {
        const size = (await stat(full)).size;
        files.push({ path: `${prefix}${name}`, localPath: full, size, blob: path.dirname(target) === blobsDir ? path.basename(target) : null });
      } catch {
        warnings.push(`dangling link ${full} → ${target} (its blob is gone; download the file again)`);
      }
    } else if (st.isFile()) {
      files.push({ path: `${prefix}${name}`, localPath: full, size: st.size, blob: null });
    }
  }
  return files;
}

async function scanRepo(cacheDir: string, folder: string, warnings: string[]): Promise<CachedRepoEntry | undefined> {
  const parsed = parseRepoFolder(folder);
  if (!parsed) return undefined;
  const dir = path.join(cacheDir, folder);
  const blobsDir = path.join(dir, 'blobs');
  const refs = await readRefs(path.join(dir, 'refs'));

  const revisions: CachedRevisionEntry[] = [];
  let copiedBytes = 0;
  for (const commit of await readdirOrEmpty(path.join(dir, 'snapshots'))) {
    const files = await scanSnapshot(path.join(dir, 'snapshots', commit), blobsDir, warnings);
    copiedBytes += files.filter((f) => f.blob === null).reduce((s, f) => s + f.size, 0);
    revisions.push({ commit, refs: refs.get(commit) ?? [], files, size: files.reduce((s, f) => s + f.size, 0) });
    refs.delete(commit);
  }
  for (const [commit, names] of refs) warnings.push(`${parsed.repo}: ref ${names.join(', ')} points to ${commit}, which has no snapshot in the cache`);

  let blobBytes = 0;
  let incompleteBytes = 0;
  for (const name of await readdirOrEmpty(blobsDir)) {
    const st = await lstat(path.join(blobsDir, name));
    if (!st.isFile()) continue;
    if (name.endsWith('.incomplete')) incompleteBytes += st.size;
    else blobBytes += st.size;
  }
  return { repo: parsed.repo, type: parsed.type, dir, revisions, size: blobBytes + copiedBytes, incompleteBytes };
}

/** What the cache holds: repos, their revisions (with refs) and files, and sizes. Reads only. */
export async function listCache(cacheDir?: string): Promise<CacheListing> {
  const root = resolveHubSettings({ cacheDir }).cacheDir;
  const warnings: string[] = [];
  const repos: CachedRepoEntry[] = [];
  for (const folder of await readdirOrEmpty(root)) {
    if (folder.startsWith('.')) continue;
    try {
      const entry = await scanRepo(root, folder, warnings);
      if (entry) repos.push(entry);
    } catch (err) {
      warnings.push(`cannot read ${path.join(root, folder)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { cacheDir: root, repos, size: repos.reduce((s, r) => s + r.size, 0), warnings };
}

export interface RemoveResult {
  repo: string;
  /** The commit whose snapshot was removed; undefined when the whole repo was removed. */
  commit: string | undefined;
  removedBytes: number;
  removedPaths: string[];
}

async function diskBytes(p: string): Promise<number> {
  const st = await lstat(p);
  if (!st.isDirectory()) return st.isFile() ? st.size : 0;
  let total = 0;
  for (const name of await readdirOrEmpty(p)) total += await diskBytes(path.join(p, name));
  return total;
}

/**
 * Removes a repo from the cache, or one revision of it: its snapshot, the refs pointing at it,
 * and the blobs no remaining snapshot uses.
 */
export async function removeFromCache(cacheDir: string | undefined, repo: string, revision?: string): Promise<RemoveResult> {
  validateRepoId(repo);
  const root = resolveHubSettings({ cacheDir }).cacheDir;
  const dir = repoDir(root, repo);
  const listing = await scanRepo(root, repoFolderName(repo), []).catch(() => undefined);
  if (!listing) throw new InputError(`${repo} is not in the cache at ${root}`);

  if (revision === undefined) {
    const removedBytes = await diskBytes(dir);
    await rm(dir, { recursive: true, force: true });
    await rm(path.join(root, '.locks', repoFolderName(repo)), { recursive: true, force: true });
    return { repo, commit: undefined, removedBytes, removedPaths: [dir] };
  }

  validateRevision(revision);
  const commit = await cachedCommitFor(root, repo, revision);
  const target = listing.revisions.find((r) => r.commit === commit);
  if (!commit || !target) {
    const known = listing.revisions.map((r) => [r.commit, ...r.refs].join(' / ')).join('; ') || 'none';
    throw new InputError(`revision ${revision} of ${repo} is not in the cache at ${root} (cached revisions: ${known})`);
  }
  const removedPaths: string[] = [];
  let removedBytes = target.files.filter((f) => f.blob === null).reduce((s, f) => s + f.size, 0);
  const snapshot = path.join(dir, 'snapshots', commit);
  await rm(snapshot, { recursive: true, force: true });
  removedPaths.push(snapshot);
  for (const ref of target.refs) {
    const refFile = path.join(dir, 'refs', ...ref.split('/'));
    await rm(refFile, { force: true });
    removedPaths.push(refFile);
  }
  const stillUsed = new Set(listing.revisions.filter((r) => r !== target).flatMap((r) => r.files.map((f) => f.blob)));
  for (const blob of new Set(target.files.map((f) => f.blob))) {
    if (blob === null || stillUsed.has(blob)) continue;
    const blobFile = path.join(dir, 'blobs', blob);
    removedBytes += (await lstat(blobFile)).size;
    await rm(blobFile, { force: true });
    removedPaths.push(blobFile);
  }
  return { repo, commit, removedBytes, removedPaths };
}

export interface BlobCheck {
  repo: string;
  /** Blob file name (its etag). */
  blob: string;
  localPath: string;
  size: number;
  kind: HashKind;
  /** 'unverifiable': the name is not a sha256 / git sha1, so there is nothing to compare with. */
  status: 'ok' | 'corrupt' | 'unverifiable';
  /** The hash computed from the bytes (for checked blobs). */
  actual: string | undefined;
  /** "<commit>/<path>" of every snapshot entry that links to this blob. */
  usedBy: string[];
}

export interface VerifyReport {
  cacheDir: string;
  blobs: BlobCheck[];
  corrupt: BlobCheck[];
  /** Same as listCache's warnings: dangling links, refs to missing snapshots. */
  warnings: string[];
  ok: boolean;
}

export interface VerifyOptions {
  /** Only this repo. */
  repo?: string;
  /** Called after each blob is checked (for a progress display). */
  onBlob?: (check: BlobCheck, index: number, count: number) => void;
}

/** Re-hashes every blob whose name is a sha256 (LFS) or git sha1 (regular file) and reports mismatches. */
export async function verifyCache(cacheDir?: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  if (options.repo !== undefined) validateRepoId(options.repo);
  const listing = await listCache(cacheDir);
  const repos = listing.repos.filter((r) => options.repo === undefined || (r.type === 'model' && r.repo === options.repo));
  if (options.repo !== undefined && repos.length === 0) throw new InputError(`${options.repo} is not in the cache at ${listing.cacheDir}`);

  const todo: Array<{ repo: CachedRepoEntry; blob: string; usedBy: string[] }> = [];
  for (const repo of repos) {
    const usedBy = new Map<string, string[]>();
    for (const rev of repo.revisions) {
      for (const f of rev.files) if (f.blob !== null) usedBy.set(f.blob, [...(usedBy.get(f.blob) ?? []), `${rev.commit}/${f.path}`]);
    }
    for (const blob of await readdirOrEmpty(path.join(repo.dir, 'blobs'))) {
      if (!blob.endsWith('.incomplete')) todo.push({ repo, blob, usedBy: usedBy.get(blob) ?? [] });
    }
  }

  const blobs: BlobCheck[] = [];
  for (const [index, item] of todo.entries()) {
    const localPath = path.join(item.repo.dir, 'blobs', item.blob);
    const kind = hashKindOf(item.blob);
    const actual = kind === 'none' ? undefined : await hashFile(localPath, kind);
    const check: BlobCheck = {
      repo: item.repo.repo,
      blob: item.blob,
      localPath,
      size: (await stat(localPath)).size,
      kind,
      status: actual === undefined ? 'unverifiable' : actual === item.blob ? 'ok' : 'corrupt',
      actual,
      usedBy: item.usedBy,
    };
    blobs.push(check);
    options.onBlob?.(check, index, todo.length);
  }
  const corrupt = blobs.filter((b) => b.status === 'corrupt');
  const warnings = listing.warnings.filter((w) => options.repo === undefined || repos.some((r) => w.includes(r.dir) || w.startsWith(`${r.repo}:`)));
  return { cacheDir: listing.cacheDir, blobs, corrupt, warnings, ok: corrupt.length === 0 && warnings.length === 0 };
}
