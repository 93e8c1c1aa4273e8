/**
 * Writing files so that no partial file is ever visible: everything goes to a temporary name in
 * the same folder, is flushed, and is renamed into place only when complete.
 */
import { randomBytes } from 'node:crypto';
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
