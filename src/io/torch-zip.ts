/**
 * Reader for torch's zip checkpoint format (torch.save since 1.6): `<prefix>/data.pkl` describes the
 * object tree, `<prefix>/data/<key>` hold raw little-endian storages. Storages are read on demand,
 * one at a time, so a converter can stream a multi-GB file tensor by tensor. Reads go through a
 * ByteSource (a file on Node, a URL by Range requests in a browser): one read per storage.
 */
import { CheckpointError } from '../errors.js';
import { runtime } from '../runtime/current.js';
import type { ByteSource } from '../runtime/types.js';
import { BYTES_PER_ELEMENT, numel, shapeToString } from '../tensor.js';
import type { DType, HostTensor } from '../tensor.js';
import { applyReadOptions, typedView } from './tensor-source.js';
import type { ReadOptions, TensorInfo, TensorSource } from './tensor-source.js';
import { ZipArchive, type ZipEntry } from './zip.js';
import {
  PickleDict, PickleGlobal, PickleHostValue, PickleTuple, PickleDataError,
  describePickleValue, unpickle,
} from './pickle.js';
import type { PickleCallable, PickleValue } from './pickle.js';

/** A state_dict's `_metadata`: module path → {version: n}, as torch's `Module.state_dict()` records it. */
export type ModuleMetadata = ReadonlyMap<string, Readonly<Record<string, number>>>;

/** torch storage class name ↔ dtype (the classes torch.save names in persistent ids). */
export const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8',
  ByteStorage: 'uint8', BoolStorage: 'bool',
};

/**
 * data.pkl only describes the tensors (their bytes live in the other entries): about 150 bytes
 * each in a torch.save state_dict. Its cap is far above that yet small next to a bomb: 4 MiB
 * plus 16 KiB per entry of the archive (a Lightning checkpoint's other entries and extras fit).
 */
export function maxPickleBytes(entryCount: number): number {
  return 4 * 2 ** 20 + 16 * 2 ** 10 * entryCount;
}


/** The largest single storage read (Node cannot hold more in one buffer anyway). */
const MAX_STORAGE_BYTES = 2 ** 32 - 1;

export interface OpenOptions {
  /**
   * Keys of the root dict tried in order: the first whose value is a dict is the state dict
   * (default `['state_dict']`, Lightning checkpoints); with none of them the root itself is.
   * Real-ESRGAN files, for one, wrap theirs as `{'params': ...}` or `{'params_ema': ...}`.
   */
  stateDictKeys?: readonly string[];
}

/** The int torch's legacy (pre-1.6) format pickles first: 0x1950a86a20f9469cfc6c, as LONG1 bytes. */
const LEGACY_MAGIC = Uint8Array.from([0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);

class StorageRef extends PickleHostValue {
  constructor(
    readonly key: string,
    readonly typeName: string,
    readonly dtype: DType | null,
    readonly numel: number,
  ) { super(); }
}

class TensorRef extends PickleHostValue {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) { super(); }
}

export class TorchCheckpoint implements TensorSource {
  private closed = false;

  private constructor(
    readonly path: string,
    /** The archive's top folder, e.g. `pytorch_model` or `archive`. */
    readonly archiveName: string,
    /** The state_dict's `_metadata`, when the file has a well-formed one. */
    readonly metadata: ModuleMetadata | undefined,
    private readonly zip: ZipArchive,
    private readonly entries: ReadonlyMap<string, ZipEntry>,
    private readonly tensors: ReadonlyMap<string, TensorRef>,
  ) {}

  /**
   * Opens a torch zip checkpoint and parses its data.pkl (no tensor data is read yet). A Lightning
   * checkpoint's `state_dict` (or the dict under `opts.stateDictKeys`) is taken and everything
   * else in it ignored. `location` is opened
   * through the runtime (a path on Node, a URL in a browser); a ByteSource is read as given and
   * closed with the checkpoint.
   */
  static async open(location: string | ByteSource, opts: OpenOptions = {}): Promise<TorchCheckpoint> {
    const source = typeof location === 'string' ? await openSource(location) : location;
    const path = source.name;
    let zip: ZipArchive;
    try {
      zip = await ZipArchive.open(source);
    } catch (e) {
      const err = await notAZipError(source, e);
      await source.close();
      throw err;
    }
    try {
      const entries = zip.entries;
      const archiveName = findArchiveName(path, entries);
      const byteorder = entries.get(`${archiveName}/byteorder`);
      if (byteorder) {
        const order = new TextDecoder().decode(await readEntry(path, zip, byteorder, 64)).trim();
        if (order !== 'little') throw new CheckpointError(`${path}: storages are ${JSON.stringify(order.slice(0, 20))}-endian; only little-endian checkpoints are supported`);
      }
      const pklName = `${archiveName}/data.pkl`;
      const pklEntry = entries.get(pklName) as ZipEntry;
      const pklCap = maxPickleBytes(entries.size);
      if (pklEntry.uncompressedSize > pklCap) {
        throw new CheckpointError(
          `${path}: ${pklName} claims ${pklEntry.uncompressedSize} bytes, more than the ${pklCap} a state_dict of ${entries.size} entries can need (a zip bomb?)`,
        );
      }
      const pkl = await readEntry(path, zip, pklEntry, pklCap);
      const storages = new Map<string, StorageRef>();
      const root = unpickle(pkl, {
        source: `${path} (${pklName})`,
        persistentLoad: (pid) => loadStorage(pid, storages),
        callables: TORCH_CALLABLES,
      });
      const dict = stateDictOf(path, root, opts.stateDictKeys ?? ['state_dict']);
      const tensors = new Map<string, TensorRef>();
      for (const [key, value] of dict) {
        if (typeof key !== 'string') throw new CheckpointError(`${path}: state_dict has a non-string key (${describePickleValue(key)})`);
        if (!(value instanceof TensorRef)) throw new CheckpointError(`${path}: state_dict entry "${key}" is ${describePickleValue(value)}, not a tensor`);
        validateTensor(path, archiveName, key, value, entries);
        tensors.set(key, value);
      }
      return new TorchCheckpoint(path, archiveName, metadataOf(dict), zip, entries, tensors);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  info(key: string): TensorInfo {
    const t = this.ref(key);
    return { dtype: t.storage.dtype as DType, shape: [...t.shape] };
  }

  /** Reads one tensor (its whole storage, then the view), contiguous, independent of other tensors. */
  async read(key: string, opts: ReadOptions = {}): Promise<HostTensor> {
    const t = this.ref(key);
    return materialise(t, await this.readStorage(t.storage), opts);
  }

  /**
   * Yields every tensor in file order. A storage shared by several tensors is read once and kept
   * only until its last tensor has been yielded (tensors that each span a whole shared storage,
   * i.e. tied weights, then share one array).
   */
  async *iterate(opts: ReadOptions = {}): AsyncGenerator<[string, HostTensor]> {
    const users = new Map<string, number>();
    for (const t of this.tensors.values()) users.set(t.storage.key, (users.get(t.storage.key) ?? 0) + 1);
    const cache = new Map<string, Uint8Array>();
    for (const [key, t] of this.tensors) {
      const sk = t.storage.key;
      const bytes = cache.get(sk) ?? await this.readStorage(t.storage);
      const left = (users.get(sk) as number) - 1;
      users.set(sk, left);
      if (left > 0) cache.set(sk, bytes); else cache.delete(sk);
      yield [key, materialise(t, bytes, opts)];
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.zip.source.close();
  }

  private ref(key: string): TensorRef {
    const t = this.tensors.get(key);
    if (!t) throw new CheckpointError(`${this.path}: no tensor "${key}" in the checkpoint`);
    return t;
  }

  /** The storage's bytes: exactly what its element count needs, however long the entry claims to be. */
  private async readStorage(s: StorageRef): Promise<Uint8Array> {
    if (this.closed) throw new CheckpointError(`${this.path}: checkpoint already closed`);
    const need = s.numel * BYTES_PER_ELEMENT[s.dtype as DType];
    return readEntry(this.path, this.zip, this.entries.get(`${this.archiveName}/data/${s.key}`) as ZipEntry, need, true);
  }
}

const TORCH_CALLABLES: Readonly<Record<string, PickleCallable>> = {
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': rebuildParameter,
  'torch._utils._rebuild_parameter_with_state': rebuildParameter,
};

/** (storage, storage_offset, size, stride, ...) → a lazy view; the trailing args (grad, hooks) do not matter. */
function rebuildTensor(args: readonly PickleValue[]): TensorRef {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof StorageRef)) throw new PickleDataError(`tensor storage is ${describePickleValue(storage)}`);
  if (!isCount(offset)) throw new PickleDataError(`tensor storage offset is ${describePickleValue(offset)}`);
  return new TensorRef(storage, offset, intTuple(size, 'size'), intTuple(stride, 'stride'));
}

function rebuildParameter(args: readonly PickleValue[]): PickleValue {
  if (!(args[0] instanceof TensorRef)) throw new PickleDataError(`parameter data is ${describePickleValue(args[0])}`);
  return args[0];
}

/** Persistent id ('storage', <storage class>, key, location, numel). */
function loadStorage(pid: PickleValue, storages: Map<string, StorageRef>): StorageRef {
  const items = pid instanceof PickleTuple ? pid.items : null;
  if (!items || items.length < 5 || items[0] !== 'storage') {
    throw new PickleDataError(`unsupported persistent id ${describePickleValue(pid)}`);
  }
  const [, type, key, , count] = items;
  if (!(type instanceof PickleGlobal) || typeof key !== 'string' || !isCount(count)) {
    throw new PickleDataError('malformed storage persistent id');
  }
  const known = storages.get(key);
  if (known) return known;
  const dtype = type.module === 'torch' && Object.hasOwn(STORAGE_DTYPES, type.name) ? STORAGE_DTYPES[type.name] : null;
  const ref = new StorageRef(key, type.qualifiedName, dtype, count);
  storages.set(key, ref);
  return ref;
}

function isCount(v: PickleValue | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function intTuple(v: PickleValue | undefined, what: string): number[] {
  const items = v instanceof PickleTuple ? v.items : null;
  if (!items || !items.every(isCount)) throw new PickleDataError(`tensor ${what} is not a tuple of non-negative ints`);
  return items as number[];
}

function findArchiveName(path: string, entries: ReadonlyMap<string, ZipEntry>): string {
  const names = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (names.length !== 1) {
    throw new CheckpointError(names.length === 0
      ? `${path}: zip archive without <name>/data.pkl: not a torch checkpoint`
      : `${path}: zip archive with several data.pkl files (${names.join(', ')})`);
  }
  return names[0].slice(0, -'/data.pkl'.length);
}

/** The first of the root's `keys` that holds a dict (Lightning: `state_dict`), else the root itself. */
function stateDictOf(path: string, root: PickleValue, keys: readonly string[]): PickleDict {
  if (!(root instanceof PickleDict)) {
    throw new CheckpointError(`${path}: data.pkl holds ${describePickleValue(root)}, not a state_dict (TorchScript and pickled modules are not supported)`);
  }
  for (const key of keys) {
    const inner = root.get(key);
    if (inner instanceof PickleDict) return inner;
  }
  return root;
}

function metadataOf(dict: PickleDict): ModuleMetadata | undefined {
  const state = dict.state;
  const meta = state instanceof PickleDict ? state.get('_metadata') : undefined;
  if (!(meta instanceof PickleDict)) return undefined;
  const out = new Map<string, Record<string, number>>();
  for (const [module, fields] of meta) {
    if (typeof module !== 'string' || !(fields instanceof PickleDict)) return undefined;
    const rec: Record<string, number> = {};
    for (const [k, v] of fields) {
      if (typeof k !== 'string' || typeof v !== 'number') return undefined;
      rec[k] = v;
    }
    out.set(module, rec);
  }
  return out;
}

function validateTensor(path: string, archive: string, key: string, t: TensorRef, entries: ReadonlyMap<string, ZipEntry>): void {
  const s = t.storage;
  if (s.dtype === null) throw new CheckpointError(`${path}: tensor "${key}" uses unsupported storage type ${s.typeName}`);
  if (t.shape.length !== t.stride.length) {
    throw new CheckpointError(`${path}: tensor "${key}" has size ${shapeToString(t.shape)} but stride ${shapeToString(t.stride)}`);
  }
  const n = numel(t.shape);
  let last = t.offset;
  for (let d = 0; d < t.shape.length; d++) last += (t.shape[d] - 1) * t.stride[d];
  if (n > 0 ? last >= s.numel : t.offset > s.numel) {
    throw new CheckpointError(`${path}: tensor "${key}" (size ${shapeToString(t.shape)}, stride ${shapeToString(t.stride)}, offset ${t.offset}) reaches outside its storage of ${s.numel} elements`);
  }
  const name = `${archive}/data/${s.key}`;
  const entry = entries.get(name);
  if (!entry) throw new CheckpointError(`${path}: tensor "${key}" needs ${name}, which the archive lacks`);
  const need = s.numel * BYTES_PER_ELEMENT[s.dtype];
  if (need > MAX_STORAGE_BYTES) {
    throw new CheckpointError(`${path}: tensor "${key}" declares a storage of ${need} bytes, more than one tensor can hold (${MAX_STORAGE_BYTES})`);
  }
  if (n * BYTES_PER_ELEMENT[s.dtype] > MAX_STORAGE_BYTES) {
    // an expanded view (stride 0) may declare far more elements than its storage holds
    throw new CheckpointError(`${path}: tensor "${key}" (size ${shapeToString(t.shape)}) has ${n} elements, more than one tensor can hold (${MAX_STORAGE_BYTES} bytes)`);
  }
  if (entry.uncompressedSize < need) {
    throw new CheckpointError(`${path}: ${name} holds ${entry.uncompressedSize} bytes, tensor "${key}" needs ${need}`);
  }
}

/** Opens a location through the runtime, naming it in the error when it cannot be opened. */
async function openSource(location: string): Promise<ByteSource> {
  try {
    return await runtime().openBytes(location);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${location}: cannot open: ${errorText(e)}`, { cause: e });
  }
}

/**
 * An entry's bytes, never more than `limit` (zip.ts: sized by the limit, not by what the entry
 * claims; inflation stops at the limit); `prefix` reads only the first `limit` bytes of a longer entry.
 */
async function readEntry(path: string, zip: ZipArchive, entry: ZipEntry, limit: number, prefix = false): Promise<Uint8Array> {
  try {
    return await zip.read(entry, limit, prefix);
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${path}: cannot read ${entry.name} (truncated or corrupt file?): ${errorText(e)}`, { cause: e });
  }
}

async function notAZipError(source: ByteSource, cause: unknown): Promise<CheckpointError> {
  const path = source.name;
  let head: Uint8Array;
  try {
    head = await source.read(0, Math.min(32, source.size));
  } catch (e) {
    return new CheckpointError(`${path}: cannot read: ${errorText(e)}`, { cause: e });
  }
  if (isLegacyTorchHeader(head)) {
    return new CheckpointError(`${path}: legacy torch format (torch.save before 1.6 or _use_new_zipfile_serialization=False) is not supported: re-save it with torch>=1.6, e.g. torch.save(torch.load(p), p2)`);
  }
  if (head[0] === 0x80) {
    return new CheckpointError(`${path}: a bare pickle stream, not a torch zip checkpoint (only torch.save zip files are supported)`);
  }
  return new CheckpointError(`${path}: not a readable torch zip checkpoint (truncated or corrupt?): ${errorText(cause)}`, { cause });
}

/** True for the first bytes of a legacy torch file: a pickled LONG1 magic number right after PROTO. */
function isLegacyTorchHeader(head: Uint8Array): boolean {
  if (head.length < 4 + LEGACY_MAGIC.length || head[0] !== 0x80) return false;
  const at = head.indexOf(0x8a);
  if (at < 0 || at > 12 || head[at + 1] !== LEGACY_MAGIC.length) return false;
  return LEGACY_MAGIC.every((b, i) => head[at + 2 + i] === b);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Builds the contiguous tensor a view describes; the storage buffer is reused when the view is all of it. */
function materialise(t: TensorRef, storage: Uint8Array, opts: ReadOptions): HostTensor {
  const dtype = t.storage.dtype as DType;
  const el = BYTES_PER_ELEMENT[dtype];
  const n = numel(t.shape);
  let bytes: Uint8Array;
  if (isContiguous(t.shape, t.stride)) {
    const start = t.offset * el;
    const whole = start === 0 && n * el === storage.byteLength;
    // Uint8Array#slice copies, so a partial view does not pin the storage.
    bytes = whole ? storage : new Uint8Array(storage.buffer, storage.byteOffset + start, n * el).slice();
  } else {
    bytes = stridedCopy(storage, el, t.shape, t.stride, t.offset, n);
  }
  return applyReadOptions({ dtype, shape: [...t.shape], data: typedView(dtype, bytes, n) }, opts);
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/**
 * Gathers a strided view into a new contiguous buffer. Elements are moved as raw 1/2/4-byte words
 * (8-byte elements as two 4-byte words) so float bit patterns, NaN payloads included, survive.
 */
function stridedCopy(storage: Uint8Array, el: number, shape: number[], stride: number[], offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n * el);
  if (n === 0) return out;
  const words = el === 8 ? 2 : 1;
  const unit = el === 8 ? 4 : el;
  const dims = words === 2 ? [...shape, 2] : shape;
  const strides = words === 2 ? [...stride.map((s) => s * 2), 1] : stride;
  const src = wordView(storage, unit);
  const dst = wordView(out, unit);
  const start = offset * words;
  if (dims.length === 0) { dst[0] = src[start]; return out; }
  const last = dims.length - 1;
  const lastSize = dims[last];
  const lastStride = strides[last];
  const idx = new Array<number>(dims.length).fill(0);
  let base = start;
  let o = 0;
  for (;;) {
    for (let i = 0, s = base; i < lastSize; i++, s += lastStride) dst[o++] = src[s];
    let d = last - 1;
    for (; d >= 0; d--) {
      idx[d]++;
      base += strides[d];
      if (idx[d] < dims[d]) break;
      base -= strides[d] * dims[d];
      idx[d] = 0;
    }
    if (d < 0) return out;
  }
}

function wordView(b: Uint8Array, unit: number): Uint8Array | Uint16Array | Uint32Array {
  if (unit === 1) return b;
  if (unit === 2) return new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  return new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}
