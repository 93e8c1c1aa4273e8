/**
 * Writing files and folders so that nothing partial is ever visible: everything goes to a
 * temporary name in the same folder and is renamed into place only when complete. A process
 * killed mid-write leaves its temporary (`<name>.tmp-<pid>…`, `<name>.old-<pid>…`) behind; the
 * next writer in that folder removes the ones whose process is gone. Reading a file a user
 * named, bounded: only a regular file, and only up to a size.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fsp } from 'node:fs';
import { mkdir, open, rename, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `dest` through a temporary file in the same folder: `write` creates and fills `tmpPath`,
 * which is flushed to disk and renamed into place only afterwards; on failure it is removed and
 * `dest` is left untouched.
 */
export async function writeAtomically(dest: string, write: (tmpPath: string) => Promise<void>): Promise<void> {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await write(tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, dest);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** FileHandle.write may write less than asked; this loops until all of `bytes` is written. */
export async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done);
    done += bytesWritten;
  }
}

/** `data` written to `file` atomically (its folder is created when missing). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeAtomically(file, (tmp) => writeFile(tmp, data));
}

export interface FolderWriteOptions {
  /**
   * 'replace': an existing folder is swapped out (kept complete until the new one is in place,
   * as `<name>.old-<pid>` between the two renames: see `recoverFolder`).
   * 'keep-existing': if the folder appeared meanwhile (another process finished the same work
   * first), theirs is kept and ours dropped.
   */
  existing: 'replace' | 'keep-existing';
}

/**
 * Writes the folder `dir` through a temporary sibling: `fill` creates its content in `tmpDir`,
 * which is renamed into place only when `fill` succeeded; on failure it is removed and `dir` is
 * left as it was. Afterwards, stale temporaries of dead processes beside `dir` are swept.
 */
export async function writeFolderAtomically(dir: string, fill: (tmpDir: string) => Promise<void>, opts: FolderWriteOptions): Promise<void> {
  const parent = path.dirname(dir);
  await fsp.mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${dir}.tmp-${tag}`;
  try {
    await fsp.mkdir(tmp);
    await fill(tmp);
    if (opts.existing === 'replace') {
      const old = `${dir}.old-${tag}`;
      const hadOld = await fsp.rename(dir, old).then(() => true, () => false);
      await fsp.rename(tmp, dir);
      if (hadOld) await fsp.rm(old, { recursive: true, force: true });
    } else {
      try {
        await fsp.rename(tmp, dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      }
    }
    // leftovers of killed writers go only once a complete folder is in place (an `.old` one may be all there is)
    await removeStaleTemps(parent);
  } finally {
    await fsp.rm(tmp, { recursive: true, force: true });
  }
}

/**
 * `dir`, or — when a process was killed between the two renames of a 'replace' write — the
 * complete previous version it left as `<name>.old-<pid>…` (the newest such), or null.
 */
export async function recoverFolder(dir: string): Promise<string | null> {
  if (await fsp.stat(dir).then(() => true, () => false)) return dir;
  const olds = (await staleTemps(path.dirname(dir))).filter((t) => t.kind === 'old' && path.basename(t.path).startsWith(`${path.basename(dir)}.`));
  olds.sort((a, b) => b.mtimeMs - a.mtimeMs);
  return olds[0]?.path ?? null;
}

const TEMP_RE = /\.(tmp|old)-(\d+)(?:-[0-9a-f]+)?$/;

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
async function staleTemps(parent: string): Promise<{ path: string; kind: 'tmp' | 'old'; mtimeMs: number }[]> {
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
async function removeStaleTemps(parent: string): Promise<void> {
  for (const t of await staleTemps(parent)) await fsp.rm(t.path, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * Opens `file` for reading only if it is a regular file: a path a user gives may name
 * /dev/zero or /dev/urandom (endless), a FIFO (opening one blocks until a writer comes;
 * O_NONBLOCK avoids that) or a folder. Errors are plain (code EISDIR for a folder, ENOTREG for
 * anything else that is not a file, or the system's), for the caller to wrap in its typed error.
 */
export async function openRegularFile(file: string): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file';
      throw Object.assign(new Error(`is ${kind}, not a regular file`), { code: st.isDirectory() ? 'EISDIR' : 'ENOTREG' });
    }
    return { fh, size: st.size };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** The whole content of a regular file of at most `maxBytes` (see openRegularFile; EFBIG when larger). */
export async function readBoundedFile(file: string, maxBytes: number): Promise<Buffer> {
  const { fh, size } = await openRegularFile(file);
  try {
    if (size > maxBytes) throw Object.assign(new Error(`${size} bytes, more than the ${maxBytes} accepted here`), { code: 'EFBIG' });
    const out = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < out.length) {
      const { bytesRead } = await fh.read(out, done, out.length - done, done);
      if (bytesRead === 0) break; // shrank while we read
      done += bytesRead;
    }
    return out.subarray(0, done);
  } finally {
    await fh.close();
  }
}
