import { stat } from 'node:fs/promises';
import { hashFile, type FileHashKind } from '../io/hash.js';
import { IntegrityError } from './errors.js';

/**
 * How a blob's name can be checked against its bytes: LFS blobs are named by the sha256 of
 * the content, regular git files by their git blob id (sha1 of "blob <size>\0" + content).
 * Anything else (a mirror's opaque ETag) can only be size-checked.
 */
export type HashKind = FileHashKind | 'none';

export function hashKindOf(etag: string): HashKind {
  if (/^[0-9a-f]{64}$/.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/.test(etag)) return 'git-sha1';
  return 'none';
}

/** Throws IntegrityError unless `file` has the announced size and (where the name allows) hash. */
export async function verifyBlobFile(file: string, etag: string, expectedSize: number | undefined, label: string): Promise<void> {
  const { size } = await stat(file);
  if (expectedSize !== undefined && size !== expectedSize) {
    throw new IntegrityError(`${label}: downloaded ${size} bytes but the hub announced ${expectedSize}`, {
      file,
      expected: `${expectedSize} bytes`,
      actual: `${size} bytes`,
    });
  }
  const kind = hashKindOf(etag);
  if (kind === 'none') return;
  const actual = await hashFile(file, kind);
  if (actual !== etag) {
    throw new IntegrityError(`${label}: ${kind} of the downloaded bytes is ${actual}, expected ${etag} (corrupted transfer)`, {
      file,
      expected: etag,
      actual,
    });
  }
}
