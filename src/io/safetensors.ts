/**
 * safetensors: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
 * then the raw little-endian data. The header is validated as strictly as the reference
 * implementation (known dtypes, sizes matching shapes, buffers tiling the data section exactly).
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../errors.js';
import { BYTES_PER_ELEMENT, numel } from '../tensor.js';
import type { DType, HostTensor, StateDict } from '../tensor.js';
import { writeAtomically, writeFully } from './files.js';
import { applyReadOptions, asTensorSource, tensorBytes, typedView } from './tensor-source.js';
import type { ReadOptions, TensorInfo, TensorSource } from './tensor-source.js';

/** `__metadata__`: free-form string → string pairs. */
export type SafetensorsMetadata = Readonly<Record<string, string>>;

const DTYPE_OF_CODE: Readonly<Record<string, DType>> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
const CODE_OF_DTYPE = Object.fromEntries(Object.entries(DTYPE_OF_CODE).map(([c, d]) => [d, c])) as Record<DType, string>;

/**
 * The header is read whole and parsed as JSON, so its size bounds our memory: 16 MiB is far
 * beyond real headers (≈ 100 bytes a tensor, plus metadata strings) and well under the
 * reference's 100 MB, which JSON.parse would turn into gigabytes.
 */
export const MAX_HEADER_BYTES = 16 * 2 ** 20;

/** A header is {name: {dtype, shape: [...], data_offsets: [a, b]}}: three levels, short arrays. */
const MAX_HEADER_DEPTH = 3;
const MAX_HEADER_ARRAY = 64;

interface Slot extends TensorInfo {
  begin: number;
  end: number;
}

export class SafetensorsFile implements TensorSource {
  private closed = false;

  private constructor(
    readonly path: string,
    readonly metadata: SafetensorsMetadata | undefined,
    private readonly fh: FileHandle,
    private readonly dataStart: number,
    private readonly slots: ReadonlyMap<string, Slot>,
  ) {}

  /** Opens and validates the header; tensor data is read on demand. */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new CheckpointError(`${path}: cannot open: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    try {
      const size = (await fh.stat()).size;
      const fail = (msg: string): CheckpointError => new CheckpointError(`${path}: invalid safetensors file: ${msg}`);
      if (size < 8) throw fail(`only ${size} bytes`);
      const lenBuf = Buffer.alloc(8);
      await readFully(fh, lenBuf, 0, path);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw fail(`header length ${headerLen} is too large`);
      if (8n + headerLen > BigInt(size)) throw fail(`header length ${headerLen} exceeds the file size ${size} (truncated?)`);
      const headerBuf = Buffer.alloc(Number(headerLen));
      await readFully(fh, headerBuf, 8, path);
      const dataStart = 8 + headerBuf.length;
      const { metadata, slots } = parseHeader(headerBuf, size - dataStart, fail);
      return new SafetensorsFile(path, metadata, fh, dataStart, slots);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Tensor names in data order. */
  keys(): string[] {
    return [...this.slots.keys()];
  }

  info(key: string): TensorInfo {
    const s = this.slot(key);
    return { dtype: s.dtype, shape: [...s.shape] };
  }

  async read(key: string, opts: ReadOptions = {}): Promise<HostTensor> {
    const s = this.slot(key);
    if (this.closed) throw new CheckpointError(`${this.path}: file already closed`);
    const buf = Buffer.allocUnsafeSlow(s.end - s.begin);
    await readFully(this.fh, buf, this.dataStart + s.begin, this.path);
    return applyReadOptions({ dtype: s.dtype, shape: [...s.shape], data: typedView(s.dtype, buf, numel(s.shape)) }, opts);
  }

  async *iterate(opts: ReadOptions = {}): AsyncGenerator<[string, HostTensor]> {
    for (const key of this.slots.keys()) yield [key, await this.read(key, opts)];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  private slot(key: string): Slot {
    const s = this.slots.get(key);
    if (!s) throw new CheckpointError(`${this.path}: no tensor "${key}" in the file`);
    return s;
  }
}

function parseHeader(
  bytes: Buffer,
  dataSize: number,
  fail: (msg: string) => CheckpointError,
): { metadata: SafetensorsMetadata | undefined; slots: Map<string, Slot> } {
  checkHeaderShape(bytes, fail);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw fail(`header is not valid UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isRecord(header)) throw fail('header is not a JSON object');
  let metadata: SafetensorsMetadata | undefined;
  const slots: Array<[string, Slot]> = [];
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') {
      if (!isRecord(value) || !Object.values(value).every((v) => typeof v === 'string')) {
        throw fail('__metadata__ must map strings to strings');
      }
      metadata = value as Record<string, string>;
      continue;
    }
    slots.push([key, parseSlot(key, value, fail)]);
  }
  slots.sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  for (const [key, s] of slots) {
    if (s.begin !== at) {
      throw fail(s.begin < at ? `tensor "${key}" overlaps the previous one` : `gap before tensor "${key}" (bytes ${at}..${s.begin} unused)`);
    }
    at = s.end;
  }
  if (at !== dataSize) {
    throw fail(at > dataSize
      ? `tensor data ends at byte ${at} but the file holds only ${dataSize} data bytes (truncated?)`
      : `${dataSize - at} trailing data bytes belong to no tensor`);
  }
  return { metadata, slots: new Map(slots) };
}

/**
 * One linear pass before JSON.parse: nesting deeper, or arrays longer, than a header can have
 * would make the parse cost time and memory out of all proportion to the bytes (16 MiB of
 * nested objects or of one long array take seconds and hundreds of MB).
 */
function checkHeaderShape(bytes: Uint8Array, fail: (msg: string) => CheckpointError): void {
  const counts: number[] = []; // per open array: elements so far (-1 for an object)
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
      continue;
    }
    if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (counts.length === MAX_HEADER_DEPTH) throw fail(`header nests deeper than ${MAX_HEADER_DEPTH} levels (at byte ${8 + i})`);
      counts.push(b === 0x5b ? 1 : -1);
    } else if (b === 0x7d || b === 0x5d) counts.pop();
    else if (b === 0x2c && counts.length > 0 && counts[counts.length - 1] > 0) {
      if (++counts[counts.length - 1] > MAX_HEADER_ARRAY) throw fail(`header has an array of more than ${MAX_HEADER_ARRAY} items (at byte ${8 + i})`);
    }
  }
}

function parseSlot(key: string, value: unknown, fail: (msg: string) => CheckpointError): Slot {
  if (!isRecord(value)) throw fail(`entry "${key}" is not an object`);
  const { dtype: code, shape, data_offsets: offsets } = value;
  if (typeof code !== 'string' || !Object.hasOwn(DTYPE_OF_CODE, code)) {
    throw fail(`tensor "${key}" has unsupported dtype ${JSON.stringify(code)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) throw fail(`tensor "${key}" has an invalid shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw fail(`tensor "${key}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const dtype = DTYPE_OF_CODE[code];
  const [begin, end] = offsets as [number, number];
  const need = numel(shape as number[]) * BYTES_PER_ELEMENT[dtype];
  if (end - begin !== need) throw fail(`tensor "${key}" (${code} ${JSON.stringify(shape)}) needs ${need} bytes but data_offsets span ${end - begin}`);
  return { dtype, shape: shape as number[], begin, end };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

async function readFully(fh: FileHandle, buf: Uint8Array, position: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new CheckpointError(`${path}: unexpected end of file at byte ${position + done} (truncated?)`);
    done += bytesRead;
  }
}

export interface SaveSafetensorsOptions {
  metadata?: SafetensorsMetadata;
}

/**
 * Writes a safetensors file atomically. With a TensorSource the tensors are read and written one at a
 * time, so the whole state dict never has to be in memory.
 */
export async function saveSafetensors(
  path: string,
  tensors: StateDict | TensorSource,
  opts: SaveSafetensorsOptions = {},
): Promise<void> {
  const source = asTensorSource(tensors);
  const keys = source.keys();
  const infos = keys.map((k) => source.info(k));
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = { ...opts.metadata };
  let offset = 0;
  keys.forEach((key, i) => {
    if (key === '__metadata__') throw new CheckpointError(`${path}: "__metadata__" cannot be a tensor name`);
    const { dtype, shape } = infos[i];
    const size = numel(shape) * BYTES_PER_ELEMENT[dtype];
    header[key] = { dtype: CODE_OF_DTYPE[dtype], shape, data_offsets: [offset, offset + size] };
    offset += size;
  });
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad with spaces so the data section starts 8-byte aligned (as the reference writer does).
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  await writeAtomically(path, async (tmp) => {
    const fh = await open(tmp, 'wx');
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      await writeFully(fh, len);
      await writeFully(fh, json);
      for (let i = 0; i < keys.length; i++) {
        const t = await source.read(keys[i]);
        await writeFully(fh, tensorBytes(path, keys[i], t, infos[i]));
      }
    } finally {
      await fh.close();
    }
  });
}
