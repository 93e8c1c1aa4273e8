import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { CheckpointError } from '../src/errors.js';
import { iterateTensors, loadStateDict, openCheckpoint } from '../src/io/checkpoint.js';
import { PickleWriter } from '../src/io/pickle-writer.js';
import { MAX_LONG_BYTES, PickleDict, PickleObject, unpickle } from '../src/io/pickle.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { saveSafetensors } from '../src/io/safetensors-writer.js';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import { TorchCheckpoint } from '../src/io/torch-zip.js';
import type { HostTensor, StateDict } from '../src/tensor.js';
import { GOLDEN_DIR } from './helpers.js';
import { rawZip, zeroBomb } from '../fuzz/lib/zip.js';
import { peakMemory } from '../fuzz/lib/memory.js';

const TINY_BIN = path.join(GOLDEN_DIR, 'rudolph-tiny', 'pytorch_model.bin');
const TINY_ST = path.join(GOLDEN_DIR, 'rudolph-tiny', 'model.safetensors');
const SMALL_BIN = path.join(GOLDEN_DIR, 'rudolph-small', 'pytorch_model.bin');
const SMALL_ST = path.join(GOLDEN_DIR, 'rudolph-small', 'model.safetensors');
const VQGAN_CKPT = path.join(GOLDEN_DIR, 'vqgan-tiny', 'vqgan.ckpt');
const VQGAN_ST = path.join(GOLDEN_DIR, 'vqgan-tiny', 'vqgan.safetensors');

let tmp = '';
before(async () => { tmp = await mkdtemp(path.join(os.tmpdir(), 'rudolph-ckpt-test-')); });
after(async () => { await rm(tmp, { recursive: true, force: true }); });

function bytesOf(t: HostTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function assertSameStateDict(actual: StateDict, expected: StateDict): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [key, e] of expected) {
    const a = actual.get(key) as HostTensor;
    assert.equal(a.dtype, e.dtype, key);
    assert.deepEqual(a.shape, e.shape, key);
    assert.equal(a.data.constructor, e.data.constructor, key);
    assert.ok(bytesOf(a).equals(bytesOf(e)), `tensor ${key} differs`);
  }
}

async function rejectsCheckpoint(p: Promise<unknown>, pattern: RegExp): Promise<CheckpointError> {
  let caught: unknown;
  try { await p; } catch (e) { caught = e; }
  assert.ok(caught instanceof CheckpointError, `expected a CheckpointError, got ${String(caught)}`);
  assert.equal(caught.code, 'CHECKPOINT');
  assert.match(caught.message, pattern);
  return caught;
}

/** A zip laid out like torch's (stored entries) from explicit entries. */
async function writeZip(file: string, entries: Array<[string, Uint8Array]>): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const [name, data] of entries) zip.addBuffer(Buffer.from(data), name, { compress: false });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  await writeFile(file, Buffer.concat(chunks));
}

async function zipEntries(file: string): Promise<Map<string, { method: number; data: Buffer }>> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  const out = new Map<string, { method: number; data: Buffer }>();
  try {
    for await (const entry of zip.eachEntry()) {
      const chunks: Buffer[] = [];
      for await (const c of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) chunks.push(c);
      out.set(entry.fileName, { method: entry.compressionMethod, data: Buffer.concat(chunks) });
    }
  } finally {
    zip.close();
  }
  return out;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

/** Writes one `key: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` item. */
function tensorItem(w: PickleWriter, key: string, storage: { cls: string; key: string; numel: number },
  offset: number, size: number[], stride: number[]): void {
  w.string(key).global('torch._utils', '_rebuild_tensor_v2').mark();
  w.mark().string('storage').global('torch', storage.cls).string(storage.key).string('cpu').int(storage.numel).tuple(5).binpersid();
  w.int(offset).intTuple(size).intTuple(stride).bool(false);
  w.global('collections', 'OrderedDict').emptyTuple().reduce();
  w.tuple(6).reduce();
}

describe('golden torch checkpoints', () => {
  it('reads the fp32 rudolph-tiny pytorch_model.bin exactly as model.safetensors', async () => {
    const sd = await loadStateDict(TINY_BIN);
    assertSameStateDict(sd, await loadStateDict(TINY_ST));
    assert.equal(sd.get('transformer.row_mask')?.dtype, 'bool');
    assert.equal(sd.get('text_embeddings.weight')?.dtype, 'float32');
  });

  it('reads the fp16 rudolph-small pytorch_model.bin exactly as model.safetensors', async () => {
    const sd = await loadStateDict(SMALL_BIN);
    assertSameStateDict(sd, await loadStateDict(SMALL_ST));
    assert.equal(sd.get('text_embeddings.weight')?.dtype, 'float16');
  });

  it('takes the state_dict of the Lightning vqgan.ckpt and ignores the rest', async () => {
    const sd = await loadStateDict(VQGAN_CKPT);
    assertSameStateDict(sd, await loadStateDict(VQGAN_ST));
    assert.ok(!sd.has('epoch') && !sd.has('optimizer_states'));
  });

  it('converts float16 to float32 on request, keeping bool masks', async () => {
    const half = await loadStateDict(SMALL_BIN);
    const full = await loadStateDict(SMALL_BIN, { toFloat32: true });
    for (const [key, h] of half) {
      const f = full.get(key) as HostTensor;
      if (h.dtype === 'bool') { assert.equal(f.dtype, 'bool'); continue; }
      assert.equal(f.dtype, 'float32', key);
      assert.deepEqual(f.shape, h.shape);
      // Re-encoding to float16 (independently of the library) must give back the stored bits.
      const back = Uint16Array.from(halfBitsOfExactValues(f.data as Float32Array));
      assert.ok(Buffer.from(back.buffer).equals(bytesOf(h)), key);
    }
  });

  it('exposes tensors lazily with info() and the archive name and _metadata', async () => {
    const ckpt = await TorchCheckpoint.open(TINY_BIN);
    try {
      assert.equal(ckpt.archiveName, 'pytorch_model');
      assert.deepEqual(ckpt.info('transformer.row_mask'), { dtype: 'bool', shape: [32, 32] });
      assert.deepEqual(ckpt.metadata?.get('transformer.layers.0.attention'), { version: 1 });
      const t = await ckpt.read('image_embeddings.weight');
      const reference = await SafetensorsFile.open(TINY_ST);
      try {
        assert.ok(bytesOf(t).equals(bytesOf(await reference.read('image_embeddings.weight'))));
      } finally {
        await reference.close();
      }
      await rejectsCheckpoint(ckpt.read('no.such.key'), /no tensor "no\.such\.key"/);
    } finally {
      await ckpt.close();
    }
  });
});

/** float16 bits of values known to be exactly representable in float16 (plain arithmetic, no tables). */
function halfBitsOfExactValues(values: Float32Array): number[] {
  return Array.from(values, (v) => {
    if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
    const sign = v < 0 ? 0x8000 : 0;
    const a = Math.abs(v);
    if (!Number.isFinite(a)) return sign | 0x7c00;
    let e = 15;
    while (e > -14 && a < 2 ** e) e--;
    if (a < 2 ** -14) return sign | (a / 2 ** -24); // subnormal: an exact multiple of 2^-24
    return sign | ((e + 15) << 10) | ((a / 2 ** e - 1) * 1024);
  });
}

describe('torch zip views', () => {
  it('materialises non-contiguous views, offsets, shared storages and 8-byte elements', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    const f = { cls: 'FloatStorage', key: 'f', numel: 12 };
    const l = { cls: 'LongStorage', key: 'l', numel: 6 };
    const h = { cls: 'HalfStorage', key: 'h', numel: 4 };
    w.dictItems(7, (i) => {
      switch (i) {
        case 0: tensorItem(w, 'whole', f, 0, [3, 4], [4, 1]); break;
        case 1: tensorItem(w, 'transposed', f, 0, [4, 3], [1, 4]); break;
        case 2: tensorItem(w, 'block', f, 5, [2, 2], [4, 1]); break;
        case 3: tensorItem(w, 'scalar', f, 7, [], []); break;
        case 4: tensorItem(w, 'long_t', l, 0, [3, 2], [1, 3]); break;
        case 5: tensorItem(w, 'half_every_other', h, 1, [2], [2]); break;
        case 6: tensorItem(w, 'broadcast', f, 2, [2, 3], [0, 1]); break;
      }
    });
    const file = path.join(tmp, 'views.pt');
    const longs = new BigInt64Array([0n, 1n, 2n, -3n, 1n << 40n, -(1n << 50n)]);
    await writeZip(file, [
      ['archive/data.pkl', w.finish()],
      ['archive/data/f', f32Bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])],
      ['archive/data/l', new Uint8Array(longs.buffer)],
      ['archive/data/h', new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001]).buffer)],
      ['archive/version', new TextEncoder().encode('3\n')],
    ]);
    const sd = await loadStateDict(file);
    const values = (k: string): number[] => Array.from(sd.get(k)?.data as Float32Array);
    assert.deepEqual(values('whole'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert.deepEqual(values('transposed'), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.deepEqual(sd.get('transposed')?.shape, [4, 3]);
    assert.deepEqual(values('block'), [5, 6, 9, 10]);
    assert.deepEqual(values('scalar'), [7]);
    assert.deepEqual(sd.get('scalar')?.shape, []);
    assert.deepEqual(Array.from(sd.get('long_t')?.data as BigInt64Array), [0n, -3n, 1n, 1n << 40n, 2n, -(1n << 50n)]);
    assert.deepEqual(Array.from(sd.get('half_every_other')?.data as Uint16Array), [0xc000, 0x0001]);
    assert.deepEqual(values('broadcast'), [2, 3, 4, 2, 3, 4]);
    // Views of one storage are independent arrays: writing one leaves the others alone.
    (sd.get('whole')?.data as Float32Array)[5] = 100;
    assert.deepEqual(values('block'), [5, 6, 9, 10]);
    const conv = await loadStateDict(file, { toFloat32: true });
    assert.deepEqual(Array.from(conv.get('half_every_other')?.data as Float32Array), [-2, 2 ** -24]);
    assert.equal(conv.get('long_t')?.dtype, 'int64');
    // The streaming reader yields the same tensors in file order.
    const streamed: string[] = [];
    const fresh = await loadStateDict(file);
    for await (const [key, t] of iterateTensors(file)) {
      streamed.push(key);
      assert.ok(bytesOf(t).equals(bytesOf(fresh.get(key) as HostTensor)), key);
    }
    assert.deepEqual(streamed, ['whole', 'transposed', 'block', 'scalar', 'long_t', 'half_every_other', 'broadcast']);
  });

  it('refuses a view that reaches outside its storage, naming the tensor', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(1, () => tensorItem(w, 'too_far', { cls: 'FloatStorage', key: '0', numel: 4 }, 2, [3], [1]));
    const file = path.join(tmp, 'oob.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()], ['archive/data/0', f32Bytes([1, 2, 3, 4])]]);
    await rejectsCheckpoint(loadStateDict(file), /oob\.pt.*"too_far".*outside its storage/);
  });

  it('refuses a storage entry shorter than the storage', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(1, () => tensorItem(w, 'short', { cls: 'FloatStorage', key: '0', numel: 4 }, 0, [4], [1]));
    const file = path.join(tmp, 'short.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()], ['archive/data/0', f32Bytes([1, 2])]]);
    await rejectsCheckpoint(loadStateDict(file), /short\.pt.*archive\/data\/0 holds 8 bytes/);
  });

  it('takes state_dict from a Lightning-style dict holding placeholders, numpy scalars and callbacks', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(4, (i) => {
      if (i === 0) {
        w.string('state_dict').global('collections', 'OrderedDict').emptyTuple().reduce();
        w.dictItems(1, () => tensorItem(w, 'w', { cls: 'FloatStorage', key: '0', numel: 2 }, 0, [2], [1]));
      } else if (i === 1) {
        // numpy.core.multiarray.scalar(numpy.dtype('f8'), b'...') pickled with _codecs.encode bytes.
        w.string('best_score').global('numpy.core.multiarray', 'scalar');
        w.global('numpy', 'dtype').string('f8').bool(false).bool(true).tuple(3).reduce();
        w.global('_codecs', 'encode').string('\u0000\u0000\u0000\u0000\u0000\u0000\u00f0?').string('latin1').tuple(2).reduce();
        w.tuple(2).reduce();
      } else if (i === 2) {
        w.string('callbacks').global('pytorch_lightning.callbacks', 'ModelCheckpoint').emptyTuple().reduce();
        w.emptyDict().string('monitor').string('val_loss').setitem().build();
      } else {
        w.string('epoch').int(3);
      }
    });
    const pkl = w.finish();
    const file = path.join(tmp, 'lightning.ckpt');
    await writeZip(file, [['lightning/data.pkl', pkl], ['lightning/data/0', f32Bytes([1.5, -2])]]);
    const sd = await loadStateDict(file);
    assert.deepEqual([...sd.keys()], ['w']);
    assert.deepEqual(Array.from(sd.get('w')?.data as Float32Array), [1.5, -2]);

    const root = unpickle(pkl, { source: 'lightning', persistentLoad: () => null, callables: { 'torch._utils._rebuild_tensor_v2': () => null } });
    assert.ok(root instanceof PickleDict);
    const scalar = root.get('best_score');
    assert.ok(scalar instanceof PickleObject);
    assert.equal(`${scalar.module}.${scalar.name}`, 'numpy.core.multiarray.scalar');
    assert.deepEqual(scalar.args[1], Uint8Array.from([0, 0, 0, 0, 0, 0, 0xf0, 0x3f]));
    const cb = root.get('callbacks');
    assert.ok(cb instanceof PickleObject && cb.state instanceof PickleDict);
    assert.equal(cb.state.get('monitor'), 'val_loss');
  });

  it('takes the state dict from the first of stateDictKeys present (Real-ESRGAN: params before params_ema)', async () => {
    const w = new PickleWriter();
    w.emptyDict();
    w.dictItems(3, (i) => {
      const [name, storage] = [['params_ema', '0'], ['params', '1'], ['iter', '']][i];
      w.string(name);
      if (!storage) { w.int(7); return; }
      w.global('collections', 'OrderedDict').emptyTuple().reduce();
      w.dictItems(1, () => tensorItem(w, 'w', { cls: 'FloatStorage', key: storage, numel: 2 }, 0, [2], [1]));
    });
    const file = path.join(tmp, 'esrgan.pth');
    await writeZip(file, [['esrgan/data.pkl', w.finish()], ['esrgan/data/0', f32Bytes([1, 2])], ['esrgan/data/1', f32Bytes([3, 4])]]);
    const values = async (keys: string[]) => Array.from((await loadStateDict(file, { stateDictKeys: keys })).get('w')?.data as Float32Array);
    assert.deepEqual(await values(['params', 'params_ema']), [3, 4]);
    assert.deepEqual(await values(['params_ema', 'params']), [1, 2]);
    assert.deepEqual(await values(['missing', 'params_ema']), [1, 2]);
    // without the keys the wrapper is the state dict, and its entries are not tensors
    await rejectsCheckpoint(loadStateDict(file), /esrgan\.pth: state_dict entry "params_ema" is dict\[1\], not a tensor/);
  });

  it('refuses a state_dict entry that is not a tensor', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(1, () => { w.string('module').global('torch.nn', 'Linear').emptyTuple().reduce(); });
    const file = path.join(tmp, 'module.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()]]);
    await rejectsCheckpoint(loadStateDict(file), /module\.pt.*"module" is placeholder torch\.nn\.Linear, not a tensor/);
  });
});

describe('unsafe and malformed input', () => {
  it('turns a non-allow-listed GLOBAL + REDUCE (os.system) into an inert placeholder', () => {
    const marker = path.join(os.tmpdir(), `rudolph-pwned-${process.pid}`);
    const cmd = `touch ${marker}`;
    const bytes = Buffer.concat([
      Buffer.from([0x80, 0x02]),
      Buffer.from('cos\nsystem\n', 'latin1'),
      Buffer.from([0x58]), Buffer.from(new Uint32Array([cmd.length]).buffer), Buffer.from(cmd, 'latin1'),
      Buffer.from([0x85, 0x52, 0x2e]), // TUPLE1 REDUCE STOP
    ]);
    const v = unpickle(bytes, { source: 'evil.pkl' });
    assert.ok(v instanceof PickleObject);
    assert.equal(v.module, 'os');
    assert.equal(v.name, 'system');
    assert.deepEqual(v.args, [cmd]);
    assert.equal(existsSync(marker), false);
  });

  it('refuses the same payload as a checkpoint without running it', async () => {
    const marker = path.join(os.tmpdir(), `rudolph-pwned2-${process.pid}`);
    const w = new PickleWriter();
    w.global('builtins', 'eval').string(`require('fs').writeFileSync('${marker}', '')`).tuple(1).reduce();
    const file = path.join(tmp, 'evil.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()]]);
    await rejectsCheckpoint(loadStateDict(file), /evil\.pt.*placeholder builtins\.eval, not a state_dict/);
    assert.equal(existsSync(marker), false);
  });

  it('reports truncated pickles, unknown opcodes and stack underflow with the byte offset', () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    const full = w.finish();
    assert.throws(() => unpickle(full.subarray(0, 10), { source: 'x.pkl' }),
      (e: unknown) => e instanceof CheckpointError && /x\.pkl: bad pickle at byte 2: truncated/.test(e.message));
    assert.throws(() => unpickle(full.subarray(0, full.length - 1), { source: 'y.pkl' }),
      (e: unknown) => e instanceof CheckpointError && /y\.pkl: bad pickle at byte \d+: truncated/.test(e.message));
    assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0xff]), { source: 'z.pkl' }),
      (e: unknown) => e instanceof CheckpointError && /z\.pkl: bad pickle at byte 2: unknown or unsupported opcode 0xff/.test(e.message));
    assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x4e, 0x73, 0x2e]), { source: 'u.pkl' }),
      (e: unknown) => e instanceof CheckpointError && /u\.pkl: bad pickle at byte 3: stack underflow/.test(e.message));
    assert.throws(() => unpickle(Uint8Array.from([0x80, 0x02, 0x68, 0x05, 0x2e]), { source: 'm.pkl' }),
      (e: unknown) => e instanceof CheckpointError && /memo entry 5/.test(e.message));
  });

  it('recognises and refuses the legacy (pre-zip) torch format', async () => {
    const file = path.join(tmp, 'legacy.pt');
    await writeFile(file, Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02]));
    await rejectsCheckpoint(loadStateDict(file), /legacy\.pt: legacy torch format.*re-save it with torch>=1\.6/);
  });

  it('reports a truncated torch checkpoint and a truncated safetensors file by path', async () => {
    const bin = path.join(tmp, 'cut.bin');
    await copyFile(TINY_BIN, bin);
    await truncate(bin, 600_000);
    await rejectsCheckpoint(loadStateDict(bin), /cut\.bin: .*truncated or corrupt/);
    const st = path.join(tmp, 'cut.safetensors');
    await copyFile(TINY_ST, st);
    await truncate(st, 600_000);
    await rejectsCheckpoint(loadStateDict(st), /cut\.safetensors: invalid safetensors file: .*truncated/);
    const st2 = path.join(tmp, 'cut-header.safetensors');
    await copyFile(TINY_ST, st2);
    await truncate(st2, 100);
    await rejectsCheckpoint(loadStateDict(st2), /cut-header\.safetensors: .*exceeds the file size/);
  });

  it('refuses files of unknown format and missing files', async () => {
    const file = path.join(tmp, 'text.txt');
    await writeFile(file, 'hello world, not weights');
    await rejectsCheckpoint(loadStateDict(file), /text\.txt: unrecognised checkpoint format/);
    await rejectsCheckpoint(loadStateDict(path.join(tmp, 'missing.bin')), /missing\.bin: cannot open/);
  });
});

/** Runs `fn` and reports how long it took and how far the process's memory peaked above its start. */
async function measured<T>(fn: () => Promise<T>): Promise<{ ms: number; peakGrowthMB: number; result: PromiseSettledResult<T> }> {
  const memory = peakMemory();
  const t0 = performance.now();
  const [result] = await Promise.allSettled([fn()]);
  return { ms: performance.now() - t0, peakGrowthMB: memory.growthMB(), result };
}

function rejection(r: PromiseSettledResult<unknown>): Error {
  assert.equal(r.status, 'rejected', 'expected an error');
  return (r as PromiseRejectedResult).reason as Error;
}

describe('hostile sizes', () => {
  it('a LONG4 of 512 KB is refused at once, naming its size; small LONGs still decode', () => {
    const n = 512 * 1024;
    const long4 = Buffer.concat([Buffer.from([0x80, 0x02, 0x8b]), Buffer.from(new Uint32Array([n]).buffer), Buffer.alloc(n, 0x7f), Buffer.from([0x2e])]);
    const t0 = performance.now();
    assert.throws(() => unpickle(long4, { source: 'big.pkl' }),
      (e: unknown) => e instanceof CheckpointError && /big\.pkl: bad pickle at byte 2: an integer of 524288 bytes/.test(e.message));
    assert.ok(performance.now() - t0 < 200, `took ${performance.now() - t0} ms`);
    // the widest accepted LONG decodes (linearly), two's complement
    const widest = Buffer.concat([Buffer.from([0x80, 0x02, 0x8a, MAX_LONG_BYTES]), Buffer.alloc(MAX_LONG_BYTES, 0xff), Buffer.from([0x2e])]);
    assert.equal(unpickle(widest, { source: 'w.pkl' }), -1);
    const big = Buffer.from([0x80, 0x02, 0x8a, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x2e]);
    assert.equal(unpickle(big, { source: 'b.pkl' }), 1n << 64n);
    assert.equal(unpickle(Buffer.from([0x80, 0x02, 0x8a, 0x02, 0x00, 0x80, 0x2e]), { source: 'n.pkl' }), -32768);
  });

  it('a data.pkl within its size cap that builds millions of objects is stopped by the work budget', { timeout: 30_000 }, async () => {
    const n = 4 * 2 ** 20; // EMPTY_DICT × 4 Mi: 900 MB and 11 s before the budget
    const pkl = new Uint8Array(n + 3);
    pkl.set([0x80, 0x02]);
    pkl.fill(0x7d, 2, n + 2);
    pkl[n + 2] = 0x2e;
    const file = path.join(tmp, 'dicts.pt');
    await writeZip(file, [['archive/data.pkl', pkl]]);
    const m = await measured(() => TorchCheckpoint.open(file));
    const err = rejection(m.result);
    assert.ok(err instanceof CheckpointError, String(err));
    assert.match(err.message, /dicts\.pt \(archive\/data\.pkl\): bad pickle at byte \d+: more than 1048576 operations/);
    assert.ok(m.peakGrowthMB < 150, `peak RSS grew by ${m.peakGrowthMB} MB`);
  });

  it('a 1 MB zip whose data.pkl inflates to 1 GiB fails fast with little memory', { timeout: 30_000 }, async () => {
    const { stored, crc } = zeroBomb(2 ** 30);
    const file = path.join(tmp, 'bomb.pt');
    await writeFile(file, rawZip([{ name: 'archive/data.pkl', stored, method: 8, size: 2 ** 30, crc }]));
    const m = await measured(() => TorchCheckpoint.open(file));
    const err = rejection(m.result);
    assert.ok(err instanceof CheckpointError, String(err));
    assert.match(err.message, /bomb\.pt: archive\/data\.pkl claims 1073741824 bytes, more than the \d+ a state_dict of 1 entries can need/);
    assert.ok(m.ms < 2000, `took ${m.ms} ms`);
    assert.ok(m.peakGrowthMB < 100, `peak RSS grew by ${m.peakGrowthMB} MB`);
  });

  it('a data.pkl that records a small size but inflates to 1 GiB is cut off at the recorded size', { timeout: 30_000 }, async () => {
    const { stored, crc } = zeroBomb(2 ** 30);
    const file = path.join(tmp, 'liar.pt');
    await writeFile(file, rawZip([{ name: 'archive/data.pkl', stored, method: 8, size: 1000, crc }]));
    const m = await measured(() => TorchCheckpoint.open(file));
    assert.ok(rejection(m.result) instanceof CheckpointError);
    assert.ok(m.ms < 2000, `took ${m.ms} ms`);
    assert.ok(m.peakGrowthMB < 100, `peak RSS grew by ${m.peakGrowthMB} MB`);
  });

  it('an entry claiming more than deflate can produce is refused before reading', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    const file = path.join(tmp, 'forged.pt');
    await writeFile(file, rawZip([
      { name: 'archive/data.pkl', stored: w.finish() },
      { name: 'archive/data/0', stored: Buffer.alloc(100), method: 8, size: 3 * 2 ** 30 },
    ]));
    await rejectsCheckpoint(TorchCheckpoint.open(file), /forged\.pt: archive\/data\/0 claims to inflate 100 bytes into 3221225472, more than deflate can/);
  });

  it('a storage is read for exactly the bytes its tensors need, however long its entry', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(1, () => tensorItem(w, 'x', { cls: 'FloatStorage', key: '0', numel: 2 }, 0, [2], [1]));
    const file = path.join(tmp, 'long-entry.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()], ['archive/data/0', Buffer.concat([f32Bytes([1, 2]), Buffer.alloc(1 << 20)])]]);
    const sd = await loadStateDict(file);
    const x = sd.get('x') as HostTensor;
    assert.deepEqual([...(x.data as Float32Array)], [1, 2]);
    assert.equal(x.data.buffer.byteLength, 8);
  });

  it('an expanded view (stride 0) larger than one tensor can be is refused by its declaration', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(1, () => tensorItem(w, 'wide', { cls: 'FloatStorage', key: '0', numel: 1 }, 0, [2 ** 20, 2 ** 20], [0, 0]));
    const file = path.join(tmp, 'expanded.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()], ['archive/data/0', f32Bytes([1])]]);
    // before: an untyped RangeError (Invalid typed array length) on read
    await rejectsCheckpoint(loadStateDict(file), /expanded\.pt: tensor "wide" \(size \[1048576, 1048576\]\) has 1099511627776 elements/);
    // a modest expanded view still materialises
    const ok = new PickleWriter();
    ok.global('collections', 'OrderedDict').emptyTuple().reduce();
    ok.dictItems(1, () => tensorItem(ok, 'row', { cls: 'FloatStorage', key: '0', numel: 1 }, 0, [3], [0]));
    await writeZip(file, [['archive/data.pkl', ok.finish()], ['archive/data/0', f32Bytes([7])]]);
    assert.deepEqual([...((await loadStateDict(file)).get('row') as HostTensor).data as Float32Array], [7, 7, 7]);
  });

  it('a storage larger than one tensor can be is refused by its declaration', async () => {
    const w = new PickleWriter();
    w.global('collections', 'OrderedDict').emptyTuple().reduce();
    w.dictItems(1, () => tensorItem(w, 'huge', { cls: 'FloatStorage', key: '0', numel: 2 ** 40 }, 0, [2 ** 40], [1]));
    const file = path.join(tmp, 'huge.pt');
    await writeZip(file, [['archive/data.pkl', w.finish()], ['archive/data/0', f32Bytes([1])]]);
    await rejectsCheckpoint(TorchCheckpoint.open(file), /huge\.pt: tensor "huge" declares a storage of 4398046511104 bytes/);
  });
});

function allDtypes(): StateDict {
  return new Map<string, HostTensor>([
    ['f32', { dtype: 'float32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, NaN, Infinity, -0]) }],
    ['f16', { dtype: 'float16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7e01]) }],
    ['bf16', { dtype: 'bfloat16', shape: [2], data: new Uint16Array([0x3f80, 0xc040]) }],
    ['f64', { dtype: 'float64', shape: [2], data: new Float64Array([Math.PI, -1e300]) }],
    ['i64', { dtype: 'int64', shape: [2], data: new BigInt64Array([-(1n << 62n), 7n]) }],
    ['i32', { dtype: 'int32', shape: [1, 2], data: new Int32Array([-5, 2 ** 31 - 1]) }],
    ['i16', { dtype: 'int16', shape: [2], data: new Int16Array([-32768, 5]) }],
    ['i8', { dtype: 'int8', shape: [2], data: new Int8Array([-128, 127]) }],
    ['u8', { dtype: 'uint8', shape: [2], data: new Uint8Array([0, 255]) }],
    ['mask', { dtype: 'bool', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) }],
    ['scalar', { dtype: 'float32', shape: [], data: new Float32Array([42]) }],
    ['empty', { dtype: 'float32', shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

describe('safetensors', () => {
  it('round-trips every dtype with metadata', async () => {
    const file = path.join(tmp, 'all.safetensors');
    await saveSafetensors(file, allDtypes(), { metadata: { format: 'pt', note: 'ё' } });
    assertSameStateDict(await loadStateDict(file), allDtypes());
    const f = await SafetensorsFile.open(file);
    try {
      assert.deepEqual(f.metadata, { format: 'pt', note: 'ё' });
      assert.deepEqual(f.info('i32'), { dtype: 'int32', shape: [1, 2] });
    } finally {
      await f.close();
    }
    const raw = await readFile(file);
    assert.equal(Number(raw.readBigUInt64LE(0)) % 8, 0);
    const conv = await loadStateDict(file, { toFloat32: true });
    assert.deepEqual(Array.from(conv.get('bf16')?.data as Float32Array), [1, -3]);
    assert.deepEqual(Array.from(conv.get('f64')?.data as Float32Array), [Math.fround(Math.PI), -Infinity]);
  });

  it('streams tensors from a TensorSource (torch checkpoint → safetensors)', async () => {
    const file = path.join(tmp, 'converted.safetensors');
    const ckpt = await TorchCheckpoint.open(SMALL_BIN);
    try {
      await saveSafetensors(file, ckpt, { metadata: { format: 'pt' } });
    } finally {
      await ckpt.close();
    }
    assertSameStateDict(await loadStateDict(file), await loadStateDict(SMALL_ST));
  });

  it('validates headers strictly', async () => {
    const cases: Array<[string, unknown, number, RegExp]> = [
      ['dtype', { a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8, /"a" has unsupported dtype "C64"/],
      ['size', { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8, /"a" \(F32 \[3\]\) needs 12 bytes/],
      ['gap', { a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8, /gap before tensor "a"/],
      ['overlap', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8, /overlaps/],
      ['trailing', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8, /4 trailing data bytes/],
      ['shape', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4, /invalid shape/],
      ['meta', { __metadata__: { n: 1 } }, 0, /__metadata__ must map strings to strings/],
    ];
    for (const [name, header, dataBytes, pattern] of cases) {
      const json = Buffer.from(JSON.stringify(header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      const file = path.join(tmp, `bad-${name}.safetensors`);
      await writeFile(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
      await rejectsCheckpoint(loadStateDict(file), pattern);
    }
  });

  it('refuses headers that would cost out of proportion to parse: too long, too deep, long arrays', { timeout: 30_000 }, async () => {
    const write = async (name: string, json: Buffer, extra = 0): Promise<string> => {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      const file = path.join(tmp, `${name}.safetensors`);
      await writeFile(file, Buffer.concat([len, json, Buffer.alloc(extra)]));
      return file;
    };
    // 16 MiB of nesting: JSON.parse alone took seconds and hundreds of MB
    const depth = 2_500_000;
    const deep = await write('deep', Buffer.from(`{"a":${'{"b":'.repeat(depth)}1${'}'.repeat(depth)}}`));
    const m = await measured(() => loadStateDict(deep));
    const err = rejection(m.result);
    assert.ok(err instanceof CheckpointError);
    assert.match(err.message, /deep\.safetensors: invalid safetensors file: header nests deeper than 3 levels/);
    assert.ok(m.ms < 1000, `took ${m.ms} ms`);
    assert.ok(m.peakGrowthMB < 100, `peak RSS grew by ${m.peakGrowthMB} MB`);
    const longShape = await write('long-shape', Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: new Array(1000).fill(1), data_offsets: [0, 4] } })));
    await rejectsCheckpoint(loadStateDict(longShape), /header has an array of more than 64 items/);
    // brackets inside names and metadata strings are text, not structure
    const quoted = await write('quoted', Buffer.from(JSON.stringify({ __metadata__: { note: '[[[[{{{{ \\" ,,,' }, 'a[0]{': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } })), 4);
    assert.deepEqual([...(await loadStateDict(quoted)).keys()], ['a[0]{']);
    const big = await write('big-header', Buffer.concat([Buffer.from('{}'), Buffer.alloc(16 * 2 ** 20 - 1, 0x20)]));
    await rejectsCheckpoint(loadStateDict(big), /header length 16777217 is too large/);
  });

  it('leaves no file behind when a tensor does not match its announced size', async () => {
    const dir = await mkdtemp(path.join(tmp, 'atomic-'));
    const bad = new Map<string, HostTensor>([['x', { dtype: 'float32', shape: [3], data: new Float32Array(2) }]]);
    await rejectsCheckpoint(saveSafetensors(path.join(dir, 'x.safetensors'), bad), /"x": 2 values for shape \[3\]/);
    await rejectsCheckpoint(saveTorchCheckpoint(path.join(dir, 'x.bin'), bad), /"x": 2 values for shape \[3\]/);
    const wrongType = new Map<string, HostTensor>([['y', { dtype: 'float16', shape: [1], data: new Float32Array(1) }]]);
    await rejectsCheckpoint(saveTorchCheckpoint(path.join(dir, 'y.bin'), wrongType), /float16 data must be a Uint16Array/);
    assert.deepEqual(await readdir(dir), []);
  });
});

describe('torch writer', () => {
  it('round-trips every dtype through the reader', async () => {
    const file = path.join(tmp, 'all.pt');
    await saveTorchCheckpoint(file, allDtypes());
    assertSameStateDict(await loadStateDict(file), allDtypes());
    const entries = await zipEntries(file);
    assert.deepEqual([...entries.keys()].slice(0, 2), ['all/data.pkl', 'all/data/0']);
    assert.equal(entries.get('all/version')?.data.toString(), '3\n');
  });

  for (const [model, file] of [['rudolph-tiny', TINY_BIN], ['rudolph-small', SMALL_BIN]] as const) {
    it(`rewrites the golden ${model} pytorch_model.bin with torch's layout`, async () => {
      const out = path.join(tmp, `${model}.bin`);
      const src = await TorchCheckpoint.open(file);
      try {
        await saveTorchCheckpoint(out, src, { archiveName: src.archiveName, metadata: src.metadata });
      } finally {
        await src.close();
      }
      const [mine, golden] = [await zipEntries(out), await zipEntries(file)];
      assert.deepEqual([...mine.keys()], [...golden.keys()]);
      for (const [name, g] of golden) {
        const m = mine.get(name);
        assert.equal(m?.method, 0, `${name} is stored`);
        assert.ok(m?.data.equals(g.data), `${name} has torch's bytes`);
      }
      assertSameStateDict(await loadStateDict(out), await loadStateDict(file));
    });
  }

  it('writes a Lightning checkpoint out as a plain state dict named after the file', async () => {
    const out = path.join(tmp, 'vqgan.pt');
    await saveTorchCheckpoint(out, await loadStateDict(VQGAN_CKPT));
    assertSameStateDict(await loadStateDict(out), await loadStateDict(VQGAN_ST));
    const reader = await openCheckpoint(out);
    try {
      assert.ok(reader instanceof TorchCheckpoint);
      assert.equal(reader.archiveName, 'vqgan');
      assert.equal(reader.metadata, undefined);
    } finally {
      await reader.close();
    }
  });
});
