/**
 * safetensors: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
 * then the raw little-endian data. The header is validated as strictly as the reference
 * implementation (known dtypes, sizes matching shapes, buffers tiling the data section exactly).
 * Reads go through a ByteSource (a file on Node, a URL by Range requests in a browser); the
 * writer is Node-only and lives in safetensors-writer.ts.
 */
import { CheckpointError } from '../errors.js';
import { runtime } from '../runtime/current.js';
import type { ByteSource } from '../runtime/types.js';
import { BYTES_PER_ELEMENT, numel } from '../tensor.js';
import type { DType, HostTensor } from '../tensor.js';
import { applyReadOptions, typedView } from './tensor-source.js';
import type { ReadOptions, TensorInfo, TensorSource } from './tensor-source.js';

/** `__metadata__`: free-form string → string pairs. */
export type SafetensorsMetadata = Readonly<Record<string, string>>;

export const DTYPE_OF_CODE: Readonly<Record<string, DType>> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool',
};
export const CODE_OF_DTYPE = Object.fromEntries(Object.entries(DTYPE_OF_CODE).map(([c, d]) => [d, c])) as Record<DType, string>;

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
    private readonly source: ByteSource,
    private readonly dataStart: number,
    private readonly slots: ReadonlyMap<string, Slot>,
  ) {}

  /**
   * Opens and validates the header; tensor data is read on demand. `location` is opened through
   * the runtime (a path on Node, a URL in a browser); a ByteSource is read as given and closed with the file.
   */
  static async open(location: string | ByteSource): Promise<SafetensorsFile> {
    let source: ByteSource;
    try {
      source = typeof location === 'string' ? await runtime().openBytes(location) : location;
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(`${location}: cannot open: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const path = source.name;
    try {
      const size = source.size;
      const fail = (msg: string): CheckpointError => new CheckpointError(`${path}: invalid safetensors file: ${msg}`);
      if (size < 8) throw fail(`only ${size} bytes`);
      const lenBuf = await source.read(0, 8);
      const headerLen = new DataView(lenBuf.buffer, lenBuf.byteOffset, 8).getBigUint64(0, true);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw fail(`header length ${headerLen} is too large`);
      if (8n + headerLen > BigInt(size)) throw fail(`header length ${headerLen} exceeds the file size ${size} (truncated?)`);
      const headerBuf = await source.read(8, Number(headerLen));
      const dataStart = 8 + headerBuf.length;
      const { metadata, slots } = parseHeader(headerBuf, size - dataStart, fail);
      return new SafetensorsFile(path, metadata, source, dataStart, slots);
    } catch (e) {
      await source.close();
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
    // a fresh buffer starting at offset 0 (both runtimes' ByteSources): typed views need no copy
    const buf = await this.source.read(this.dataStart + s.begin, s.end - s.begin);
    return applyReadOptions({ dtype: s.dtype, shape: [...s.shape], data: typedView(s.dtype, buf, numel(s.shape)) }, opts);
  }

  async *iterate(opts: ReadOptions = {}): AsyncGenerator<[string, HostTensor]> {
    for (const key of this.slots.keys()) yield [key, await this.read(key, opts)];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source.close();
  }

  private slot(key: string): Slot {
    const s = this.slots.get(key);
    if (!s) throw new CheckpointError(`${this.path}: no tensor "${key}" in the file`);
    return s;
  }
}

function parseHeader(
  bytes: Uint8Array,
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
