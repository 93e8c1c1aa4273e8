import { readFile } from 'node:fs/promises';
import { COMMIT_HASH_RE, refPath, snapshotFilePath } from './cache-layout.js';
import { OfflineError, type HubFileRef } from './errors.js';

/** The commit a revision resolves to in the cache, or undefined when the cache has no such ref. */
export async function cachedCommitFor(cacheDir: string, repo: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH_RE.test(revision)) return revision;
  try {
    const commit = (await readFile(refPath(cacheDir, repo, revision), 'utf8')).trim();
    return COMMIT_HASH_RE.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One error for everything that is missing, saying what is missing, why the hub was not used,
 * and the three ways to provide it (local folder, mirror, copying into the cache path).
 */
export async function offlineError(missing: HubFileRef[], cacheDir: string, reason: string, cause?: unknown): Promise<OfflineError> {
  const lines = [
    `${missing.length === 1 ? 'a needed file is' : `${missing.length} needed files are`} not in the Hugging Face cache at ${cacheDir}, and ${reason}:`,
  ];
  const copyTargets: string[] = [];
  const refsToWrite = new Set<string>();
  for (const ref of missing) {
    lines.push(`  - ${ref.path} from ${ref.repo} (revision ${ref.revision})`);
    const commit = await cachedCommitFor(cacheDir, ref.repo, ref.revision);
    copyTargets.push(`      ${snapshotFilePath(cacheDir, ref.repo, commit ?? '<COMMIT>', ref.path)}`);
    if (commit === undefined) refsToWrite.add(refPath(cacheDir, ref.repo, ref.revision));
  }
  const unsetOffline = reason.includes('HF_HUB_OFFLINE') ? ' (and unset HF_HUB_OFFLINE)' : reason.includes('offline mode') ? ' (and turn offline mode off)' : '';
  lines.push(
    `To provide ${missing.length === 1 ? 'it' : 'them'}:`,
    '  - pass --model DIR with a local folder that holds the model files, or',
    `  - set HF_ENDPOINT to a reachable hub mirror${unsetOffline}, or`,
    '  - copy the files into the cache as:',
    ...copyTargets,
  );
  if (refsToWrite.size > 0) {
    lines.push(
      '    and write that <COMMIT> (the repo\'s 40-hex commit id; any 40-hex id works offline) into:',
      ...[...refsToWrite].map((r) => `      ${r}`),
    );
  }
  const first = missing[0];
  return new OfflineError(lines.join('\n'), { ...first, missing, cacheDir, reason, cause });
}
