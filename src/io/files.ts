/**
 * Writing files so that no partial file is ever visible: everything goes to a temporary name in
 * the same folder, is flushed, and is renamed into place only when complete. Reading a file a
 * user named, bounded: only a regular file, and only up to a size.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
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

/**
 * The whole content of `file`, refusing anything but a regular file of at most `maxBytes`: a
 * path may name /dev/zero, /dev/urandom (endless), a FIFO (opening blocks until a writer comes;
 * O_NONBLOCK avoids that) or a folder. Errors are plain (code ENOTREG / EFBIG or the system's),
 * for the caller to wrap in its own typed error.
 */
export async function readBoundedFile(file: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file';
      throw Object.assign(new Error(`is ${kind}, not a regular file`), { code: 'ENOTREG' });
    }
    if (st.size > maxBytes) {
      throw Object.assign(new Error(`${st.size} bytes, more than the ${maxBytes} accepted here`), { code: 'EFBIG' });
    }
    const out = Buffer.allocUnsafe(st.size);
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
