/**
 * A raw zip writer for hostile test inputs: every size and the compression method are whatever
 * the caller says, so an entry can claim (or really inflate to) far more than it stores.
 * yazl cannot do that; torch checkpoints are zips, so their reader must survive it.
 */
import { constants, crc32, deflateRawSync } from 'node:zlib';

export interface RawZipEntry {
  name: string;
  /** The bytes stored in the archive (already deflated when method is 8). */
  stored: Uint8Array;
  /** 0 stored, 8 deflate (default: 0). */
  method?: number;
  /** Recorded uncompressed size (default: stored.length). */
  size?: number;
  /** Recorded CRC-32 (default: of `stored`, right for method 0). */
  crc?: number;
}

/** Local headers + data, central directory, end record: the plain (non-zip64) layout. */
export function rawZip(entries: readonly RawZipEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 0;
    const size = e.size ?? e.stored.length;
    const crc = e.crc ?? crc32(e.stored);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(e.stored.length, 18);
    local.writeUInt32LE(size >>> 0, 22);
    local.writeUInt16LE(name.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt16LE(0x0800, 8);
    dir.writeUInt16LE(method, 10);
    dir.writeUInt32LE(crc >>> 0, 16);
    dir.writeUInt32LE(e.stored.length, 20);
    dir.writeUInt32LE(size >>> 0, 24);
    dir.writeUInt16LE(name.length, 28);
    dir.writeUInt32LE(offset, 42);
    central.push(dir, name);
    parts.push(local, name, Buffer.from(e.stored));
    offset += local.length + name.length + e.stored.length;
  }
  const dirBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dirBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, dirBytes, end]);
}

/**
 * A raw deflate stream that inflates to `size` zero bytes (a multiple of 1 MiB) while storing
 * about a thousandth of that: one sync-flushed 1 MiB block repeated (its back-references stay
 * inside zeros), then an empty final block. Also returns the CRC-32 of the inflated bytes.
 */
export function zeroBomb(size: number): { stored: Buffer; crc: number } {
  const MiB = 1 << 20;
  if (size % MiB !== 0) throw new RangeError('zeroBomb size must be a multiple of 1 MiB');
  const zeros = Buffer.alloc(MiB);
  const block = deflateRawSync(zeros, { finishFlush: constants.Z_SYNC_FLUSH });
  const final = deflateRawSync(Buffer.alloc(0));
  const blocks = size / MiB;
  const stored = Buffer.concat([...Array.from({ length: blocks }, () => block), final]);
  let crc = 0;
  for (let i = 0; i < blocks; i++) crc = crc32(zeros, crc);
  return { stored, crc };
}
