/**
 * Files on disk as ByteSources: positional reads through one file handle. Only regular files:
 * opened O_NONBLOCK, so naming a FIFO never blocks, then refused unless the stat says "file".
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { RudolphError } from '../../errors.js';
import type { ByteSource } from '../types.js';

export async function openFileBytes(file: string): Promise<ByteSource> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  let size: number;
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`EISDIR: ${file} is a directory`), { code: 'EISDIR' });
    if (!st.isFile()) throw Object.assign(new Error(`${file} is not a regular file`), { code: 'ENOTREG' });
    size = st.size;
  } catch (e) {
    await fh.close();
    throw e;
  }
  return {
    name: file,
    size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= size)) {
        throw new RudolphError('CHECKPOINT', `${file}: read of ${length} bytes at ${offset} is outside the file's ${size} bytes`);
      }
      // its own ArrayBuffer, so typed views over the result need no copy
      const out = new Uint8Array(new ArrayBuffer(length));
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new RudolphError('CHECKPOINT', `${file}: ended after ${offset + done} bytes (truncated while reading?)`);
        done += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
}
