/**
 * A zip reader over a ByteSource (a file on Node, a URL by Range requests in a browser): the
 * central directory is read once from the end of the file, then each entry's bytes on demand with
 * one read (local header and data together). Written here rather than taken from a library because
 * checkpoints need exactly this access pattern — torch writes STORED entries, so a tensor is one
 * Range request straight into the buffer that becomes its array — and the zip libraries stream
 * entries in small chunks (a request each over HTTP). Zip64 is supported; DEFLATE entries are
 * inflated with the platform's DecompressionStream, stopping at the caller's limit.
 */
import { CheckpointError } from '../errors.js';
import type { ByteSource } from '../runtime/types.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflate */
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
  /** bytes of the name as stored (the local header repeats it) */
  readonly nameBytes: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** EOCD (22 bytes) + the longest comment (65535) */
const MAX_TAIL = 22 + 0xffff;
/** A central directory larger than this is not a checkpoint's (torch: ~100 bytes per tensor). */
const MAX_DIRECTORY_BYTES = 64 * 2 ** 20;
/** Deflate cannot expand data more than ~1032:1; an entry that claims more is forged. */
export const MAX_DEFLATE_RATIO = 1032;
/**
 * How far past the central directory's name length the local header is read ahead with the data:
 * torch's local extra field is its 64-byte alignment padding, so one read usually covers both; a
 * longer header costs a second read.
 */
const LOCAL_EXTRA_READAHEAD = 256;

/** Little-endian u64 that must fit in a safe integer. */
function u64(view: DataView, at: number): number {
  const lo = view.getUint32(at, true), hi = view.getUint32(at + 4, true);
  if (hi > 0x1fffff) return Number.MAX_SAFE_INTEGER + 1;
  return hi * 2 ** 32 + lo;
}

export class ZipArchive {
  private constructor(readonly source: ByteSource, readonly entries: ReadonlyMap<string, ZipEntry>) {}

  /** Reads the central directory; refuses anything that is not a well-formed zip. */
  static async open(source: ByteSource): Promise<ZipArchive> {
    const fail = (msg: string) => new CheckpointError(`${source.name}: ${msg}`);
    const size = source.size;
    if (size < 22) throw fail(`${size} bytes is too short to be a zip archive`);
    const tailLen = Math.min(size, MAX_TAIL);
    const tail = await source.read(size - tailLen, tailLen);
    const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === EOCD_SIG && i + 22 + tv.getUint16(i + 20, true) === tailLen) { eocd = i; break; }
    }
    if (eocd < 0) throw fail('no zip end-of-central-directory record (truncated or not a zip file?)');
    let count = tv.getUint16(eocd + 10, true);
    let dirSize = tv.getUint32(eocd + 12, true);
    let dirOffset = tv.getUint32(eocd + 16, true);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      // zip64: the locator sits right before the EOCD and points at the zip64 EOCD record
      const locAt = size - tailLen + eocd - 20;
      if (locAt < 0) throw fail('zip64 archive without its locator');
      const loc = await source.read(locAt, 20);
      const lv = new DataView(loc.buffer, loc.byteOffset, 20);
      if (lv.getUint32(0, true) !== ZIP64_LOCATOR_SIG) throw fail('zip64 archive without its locator');
      const recAt = u64(lv, 8);
      if (recAt + 56 > size) throw fail('zip64 end record outside the file');
      const rec = await source.read(recAt, 56);
      const rv = new DataView(rec.buffer, rec.byteOffset, 56);
      if (rv.getUint32(0, true) !== ZIP64_EOCD_SIG) throw fail('corrupt zip64 end record');
      count = u64(rv, 32);
      dirSize = u64(rv, 40);
      dirOffset = u64(rv, 48);
    }
    if (dirSize > MAX_DIRECTORY_BYTES) throw fail(`central directory of ${dirSize} bytes is larger than any checkpoint's`);
    if (dirOffset + dirSize > size) throw fail(`central directory (${dirSize} bytes at ${dirOffset}) reaches past the end of the ${size}-byte file (truncated?)`);
    if (count * 46 > dirSize) throw fail(`central directory of ${dirSize} bytes cannot hold ${count} entries`);
    const dir = await source.read(dirOffset, dirSize);
    const dv = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
    const names = new TextDecoder('utf-8');
    const entries = new Map<string, ZipEntry>();
    let at = 0;
    for (let n = 0; n < count; n++) {
      if (at + 46 > dirSize || dv.getUint32(at, true) !== CENTRAL_SIG) throw fail(`corrupt zip directory (entry ${n} of ${count})`);
      const flags = dv.getUint16(at + 8, true);
      const method = dv.getUint16(at + 10, true);
      let compressedSize = dv.getUint32(at + 20, true);
      let uncompressedSize = dv.getUint32(at + 24, true);
      const nameLen = dv.getUint16(at + 28, true), extraLen = dv.getUint16(at + 30, true), commentLen = dv.getUint16(at + 32, true);
      let localHeaderOffset = dv.getUint32(at + 42, true);
      const end = at + 46 + nameLen + extraLen + commentLen;
      if (end > dirSize) throw fail(`corrupt zip directory (entry ${n} runs past it)`);
      const name = names.decode(dir.subarray(at + 46, at + 46 + nameLen));
      // zip64 extended information: the 0xffffffff fields, in order, as u64
      for (let e = at + 46 + nameLen; e + 4 <= at + 46 + nameLen + extraLen;) {
        const id = dv.getUint16(e, true), len = dv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let f = e + 4;
          const next = () => { const v = f + 8 <= e + 4 + len ? u64(dv, f) : Number.NaN; f += 8; return v; };
          if (uncompressedSize === 0xffffffff) uncompressedSize = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + len;
      }
      if (flags & 1) throw fail(`${name} is encrypted`);
      if (method !== 0 && method !== 8) throw fail(`${name} uses zip compression method ${method} (only stored and deflate are supported)`);
      if (![compressedSize, uncompressedSize, localHeaderOffset].every(Number.isSafeInteger)) throw fail(`corrupt zip64 sizes for ${name}`);
      if (method === 0 && compressedSize !== uncompressedSize) throw fail(`${name} is stored but its sizes differ (${compressedSize} vs ${uncompressedSize})`);
      if (method === 8 && uncompressedSize > compressedSize * MAX_DEFLATE_RATIO + 1024) {
        throw fail(`${name} claims to inflate ${compressedSize} bytes into ${uncompressedSize}, more than deflate can (a forged or bomb zip)`);
      }
      if (localHeaderOffset + 30 + compressedSize > size) throw fail(`${name} reaches past the end of the file (truncated?)`);
      entries.set(name, { name, method, compressedSize, uncompressedSize, localHeaderOffset, nameBytes: nameLen });
      at = end;
    }
    return new ZipArchive(source, entries);
  }

  /**
   * An entry's bytes in one fresh buffer (its own ArrayBuffer, so typed views need no copy), never
   * more than `limit`: an entry claiming more is refused, or with `prefix` only its first `limit`
   * bytes are read (a storage needs no more). Inflation stops as soon as the limit is passed.
   */
  async read(entry: ZipEntry, limit = entry.uncompressedSize, prefix = false): Promise<Uint8Array> {
    const where = `${this.source.name}: ${entry.name}`;
    if (!prefix && entry.uncompressedSize > limit) throw new CheckpointError(`${where} claims ${entry.uncompressedSize} bytes, more than the ${limit} it may hold`);
    const want = Math.min(entry.uncompressedSize, limit);
    const stored = entry.method === 0 ? want : entry.compressedSize;
    const headAt = entry.localHeaderOffset;
    const span = Math.min(this.source.size - headAt, 30 + entry.nameBytes + LOCAL_EXTRA_READAHEAD + stored);
    const first = await this.source.read(headAt, span);
    if (first.byteLength < 30) throw new CheckpointError(`${where}: local header at ${headAt} is cut off (truncated file?)`);
    const lv = new DataView(first.buffer, first.byteOffset, first.byteLength);
    if (lv.getUint32(0, true) !== LOCAL_SIG) throw new CheckpointError(`${where}: no local header at ${headAt} (corrupt zip)`);
    const dataAt = 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    let raw: Uint8Array;
    if (dataAt + stored <= first.byteLength) {
      raw = first.subarray(dataAt, dataAt + stored);
    } else {
      // a local header longer than the read-ahead: read the data itself
      if (headAt + dataAt + stored > this.source.size) throw new CheckpointError(`${where} is truncated`);
      raw = await this.source.read(headAt + dataAt, stored);
    }
    if (entry.method === 0) {
      // its own buffer, starting at 0: aligned for any typed view
      return raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength ? raw : raw.slice();
    }
    return inflateRaw(raw, want, prefix, where);
  }
}

/** Inflates raw deflate data into exactly `want` bytes (or fewer is an error), stopping early with `prefix`. */
async function inflateRaw(raw: Uint8Array, want: number, prefix: boolean, where: string): Promise<Uint8Array> {
  const out = new Uint8Array(want);
  let at = 0;
  const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, want - at);
      if (take < value.length && !prefix) throw new Error('entry longer than its recorded size');
      out.set(value.subarray(0, take), at);
      at += take;
      if (at === want) break;
    }
  } catch (e) {
    throw new CheckpointError(`${where}: cannot inflate (truncated or corrupt file?): ${(e as Error).message}`, { cause: e });
  } finally {
    await reader.cancel().catch(() => {});
  }
  if (at !== want) throw new CheckpointError(`${where} is truncated (${at} of ${want} bytes)`);
  return out;
}
