/**
 * Folders written under a temporary name (`<name>.tmp-<pid>…`, `<name>.old-<pid>…`) are renamed
 * into place when complete; a process killed mid-write leaves them behind. These helpers find
 * and remove the ones whose writer is gone.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';

const TEMP_RE = /\.(tmp|old)-(\d+)(?:-\d+)?$/;

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temporary siblings of `parent/*` left by processes that no longer run. */
export async function staleTemps(parent: string): Promise<{ path: string; kind: 'tmp' | 'old'; mtimeMs: number }[]> {
  let names: string[];
  try {
    names = await fsp.readdir(parent);
  } catch {
    return [];
  }
  const out: { path: string; kind: 'tmp' | 'old'; mtimeMs: number }[] = [];
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m || alive(Number(m[2]))) continue;
    const full = path.join(parent, name);
    const st = await fsp.stat(full).catch(() => null);
    if (st) out.push({ path: full, kind: m[1] as 'tmp' | 'old', mtimeMs: st.mtimeMs });
  }
  return out;
}

/** Removes the stale temporaries of `parent` (best effort). */
export async function removeStaleTemps(parent: string): Promise<void> {
  for (const t of await staleTemps(parent)) await fsp.rm(t.path, { recursive: true, force: true }).catch(() => undefined);
}
