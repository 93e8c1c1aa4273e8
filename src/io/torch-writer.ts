/**
 * Writes a state dict in torch's zip checkpoint format, laid out as torch.save (1.13) does:
 * `<name>/data.pkl` (protocol 2, an OrderedDict of `_rebuild_tensor_v2` calls over persistent
 * storage ids, optionally with `_metadata`), `<name>/data/<key>` in sorted key order, `<name>/version`,
 * all stored uncompressed. Tensors are pulled from the source one at a time.
 *
 * Difference from torch: torch pads each local header with an "FB" extra field so data starts
 * 64-byte aligned (only mmap-style loading profits from it); yazl cannot write extra fields, so the
 * data entries here are unaligned. torch.load does not require the alignment.
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import yazl from 'yazl';
import { CheckpointError } from '../errors.js';
import { BYTES_PER_ELEMENT, numel } from '../tensor.js';
import type { DType, StateDict } from '../tensor.js';
import { PickleWriter } from './pickle-writer.js';
import { writeAtomically } from './files.js';
import { asTensorSource, tensorBytes } from './tensor-source.js';
import type { TensorInfo, TensorSource } from './tensor-source.js';
import { STORAGE_DTYPES } from './torch-zip.js';
import type { ModuleMetadata } from './torch-zip.js';

export interface SaveTorchOptions {
  /** The archive's top folder; torch uses the file name without extension (`pytorch_model`). */
  archiveName?: string;
  /** The state_dict's `_metadata` (e.g. `TorchCheckpoint.metadata` of the file this came from). */
  metadata?: ModuleMetadata;
}

const STORAGE_OF_DTYPE = Object.fromEntries(Object.entries(STORAGE_DTYPES).map(([s, d]) => [d, s])) as Record<DType, string>;

/** torch's zip format version that torch 1.6–2.x write. */
const FORMAT_VERSION = '3\n';

/** zip entries carry DOS timestamps; torch writes zeros, the earliest yazl can express is 1980-01-01. */
const ENTRY_OPTIONS = { compress: false, forceDosTimestamp: true, mtime: new Date(1980, 0, 1) } as const;

export async function saveTorchCheckpoint(
  file: string,
  tensors: StateDict | TensorSource,
  opts: SaveTorchOptions = {},
): Promise<void> {
  const archive = opts.archiveName ?? path.basename(file).replace(/\.[^.]*$/, '');
  if (!/^[^/\\]+$/.test(archive) || archive === '.' || archive === '..') {
    throw new CheckpointError(`${file}: invalid archive name "${archive}"`);
  }
  const source = asTensorSource(tensors);
  const keys = source.keys();
  const infos = keys.map((k) => source.info(k));
  const pkl = dataPickle(keys, infos, opts.metadata);

  await writeAtomically(file, async (tmp) => {
    const zip = new yazl.ZipFile();
    const out = createWriteStream(tmp, { flags: 'wx' });
    const done = new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      out.on('error', reject);
      out.on('close', resolve);
    });
    zip.outputStream.pipe(out);
    zip.addBuffer(Buffer.from(pkl), `${archive}/data.pkl`, ENTRY_OPTIONS);
    // torch writes storages sorted by their (string) key.
    const order = keys.map((_, i) => i).sort((a, b) => (String(a) < String(b) ? -1 : 1));
    for (const i of order) {
      const size = numel(infos[i].shape) * BYTES_PER_ELEMENT[infos[i].dtype];
      zip.addReadStreamLazy(`${archive}/data/${i}`, { ...ENTRY_OPTIONS, size }, (cb) => {
        const stream = Readable.from(storageBytes(file, source, keys[i], infos[i]), { objectMode: false });
        stream.on('error', (e) => zip.emit('error', e));
        cb(null, stream);
      });
    }
    zip.addBuffer(Buffer.from(FORMAT_VERSION), `${archive}/version`, ENTRY_OPTIONS);
    zip.end();
    try {
      await done;
    } catch (e) {
      zip.outputStream.unpipe(out);
      await new Promise<void>((resolve) => out.destroy().once('close', () => resolve()));
      throw e instanceof CheckpointError ? e : new CheckpointError(`${file}: writing failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  });
}

async function* storageBytes(file: string, source: TensorSource, key: string, info: TensorInfo): AsyncGenerator<Uint8Array> {
  const t = await source.read(key);
  yield tensorBytes(file, key, t, info);
}

/** data.pkl: OrderedDict{key: _rebuild_tensor_v2(storage i, 0, shape, contiguous stride, False, OrderedDict())}. */
function dataPickle(keys: readonly string[], infos: readonly TensorInfo[], metadata: ModuleMetadata | undefined): Uint8Array {
  const w = new PickleWriter();
  w.global('collections', 'OrderedDict').emptyTuple().reduce();
  w.dictItems(keys.length, (i) => {
    const { dtype, shape } = infos[i];
    w.string(keys[i]);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.mark();
    w.mark().string('storage').global('torch', STORAGE_OF_DTYPE[dtype]).string(String(i)).string('cpu').int(numel(shape)).tuple(5);
    w.binpersid();
    w.int(0).intTuple(shape).intTuple(contiguousStrides(shape)).bool(false);
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.tuple(6).reduce();
  });
  if (metadata) {
    w.emptyDict().string('_metadata');
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    const modules = [...metadata];
    w.dictItems(modules.length, (i) => {
      const [module, fields] = modules[i];
      w.string(module).emptyDict();
      w.dictItems(Object.keys(fields).length, (j) => {
        const [k, v] = Object.entries(fields)[j];
        w.string(k).int(v);
      });
    });
    w.setitem().build();
  }
  return w.finish();
}

function contiguousStrides(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
  return stride;
}
