/** File digests, read in 1 MiB chunks (multi-GB checkpoints never sit in memory whole). */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** sha256 of the content, or git's blob id (sha1 of "blob <size>\0" + content). */
export type FileHashKind = 'sha256' | 'git-sha1';

/** Hashes a file; `onBytes` reports progress through the file. */
export async function hashFile(file: string, kind: FileHashKind, onBytes?: (read: number) => void): Promise<string> {
  let hash: Hash;
  if (kind === 'sha256') {
    hash = createHash('sha256');
  } else {
    const { size } = await stat(file);
    hash = createHash('sha1').update(`blob ${size}\0`);
  }
  let read = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    read += (chunk as Buffer).length;
    onBytes?.(read);
  }
  return hash.digest('hex');
}
