/** Files on disk as ByteSources: positional reads through one file handle. */
import { RudolphError } from '../../errors.js';
import { openRegularFile } from '../../io/files.js';
import type { ByteSource } from '../types.js';

export async function openFileBytes(file: string): Promise<ByteSource> {
  // regular files only: a device never ends, a FIFO blocks, a folder has no bytes
  const { fh, size } = await openRegularFile(file);
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
