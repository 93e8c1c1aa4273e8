/**
 * Real-ESRGAN: parameter layout, checkpoint validation, input limits, the predict pipeline's
 * tiling against a literal (canvas-building) transcription of the official utils.py, determinism,
 * cancellation, the per-scale cache and the hub download. Parity with PyTorch itself is the
 * golden set (npm run test:golden-upscale).
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AbortError, CheckpointError, ConfigError, InputError, RudolphError, WeightsError } from '../src/errors.js';
import { OfflineError } from '../src/hub/index.js';
import { ImageError, type RgbImage } from '../src/image/index.js';
import { loadStateDict } from '../src/io/checkpoint.js';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import type { StateDict } from '../src/tensor.js';
import {
  padSymmetric, randomRrdbNetStateDict, realEsrganConfig, rrdbNetConfigFromArgs, rrdbNetParameterCount, rrdbNetParameterSpecs,
  RrdbNet, SuperResolution, Upscaler, type RrdbNetConfig, type UpscaleScale,
} from '../src/upscale/index.js';
import { hubUpscalerWeights, REALESRGAN_REPO } from '../src/pretrained/upscaler-files.js';
import { tempDir, TINY_UPSCALER_SIZE, TINY_UPSCALERS, UPSCALE_DATA } from './fixtures.js';
import { startMockHub } from './mock-hub.js';

const tinyConfig = (scale: UpscaleScale): RrdbNetConfig => ({ scale, ...TINY_UPSCALER_SIZE });

function seededImage(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0 || 1;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

/** A tiny ×4 state dict copied, so each test can break its own. */
async function tinyStateDict(scale: UpscaleScale = 4): Promise<StateDict> {
  return loadStateDict(TINY_UPSCALERS[scale], { toFloat32: true, stateDictKeys: ['params', 'params_ema'] });
}

let tmp: { dir: string; cleanup: () => Promise<void> };
before(async () => { tmp = await tempDir('rudolph-upscale-test-'); });
after(async () => { await tmp.cleanup(); });

describe('RRDBNet parameters', () => {
  it('the full-size ×4 layout is the real checkpoint\'s (KEYS-full.txt), ×2 / ×8 differ as documented', async () => {
    const lines = (await readFile(path.join(UPSCALE_DATA, 'KEYS-full.txt'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    const keys = lines.map((l) => { const [name, , shape] = l.split('\t'); return { name, shape: JSON.parse(shape) as number[] }; });
    assert.deepEqual(rrdbNetParameterSpecs(realEsrganConfig(4)), keys);
    const manifest = JSON.parse(await readFile(path.join(UPSCALE_DATA, 'manifest.json'), 'utf8'));
    for (const scale of [2, 4, 8] as const) {
      const want = manifest.full_size_models.configs[`x${scale}`];
      assert.equal(rrdbNetParameterSpecs(realEsrganConfig(scale)).length, want.n_tensors, `x${scale} tensors`);
      assert.equal(rrdbNetParameterCount(realEsrganConfig(scale)), want.n_params, `x${scale} params`);
    }
    assert.deepEqual(rrdbNetParameterSpecs(realEsrganConfig(2))[0].shape, [64, 12, 3, 3]);
    // the tiny golden models agree with their manifest entries too
    for (const [name, m] of Object.entries(manifest.models) as [string, { rrdbnet_args: Record<string, unknown>; n_params: number }][]) {
      assert.equal(rrdbNetParameterCount(rrdbNetConfigFromArgs(m.rrdbnet_args)), m.n_params, name);
    }
  });

  it('reads all three official containers: params (×2), params_ema (×4), a plain state dict (×8)', async () => {
    for (const scale of [2, 4, 8] as const) {
      const net = await RrdbNet.fromCheckpoint(TINY_UPSCALERS[scale], tinyConfig(scale), { threads: 1 });
      const out = await net.forward({ data: new Float32Array(3 * 8 * 8).fill(0.5), shape: [1, 3, 8, 8] });
      assert.deepEqual(out.shape, [1, 3, 8 * scale, 8 * scale]);
      await net.release();
    }
  });
});

describe('bad checkpoints are refused with a typed error', () => {
  const write = async (name: string, sd: StateDict) => {
    const file = path.join(tmp.dir, name);
    await saveTorchCheckpoint(file, sd);
    return file;
  };
  const open = (file: string, scale: UpscaleScale = 4, config = TINY_UPSCALER_SIZE) => Upscaler.fromCheckpoint(file, { scale, config, threads: 1 });

  it('a tensor of the wrong shape', async () => {
    const sd = await tinyStateDict();
    const t = sd.get('body.1.rdb2.conv3.weight')!;
    sd.set('body.1.rdb2.conv3.weight', { ...t, shape: [t.shape[0], t.shape[1], 1, 9] });
    await assert.rejects(open(await write('shape.pth', sd)), (e: unknown) => e instanceof WeightsError && /body\.1\.rdb2\.conv3\.weight has shape \[8, 32, 1, 9\], expected \[8, 32, 3, 3\]/.test(e.message));
  });

  it('missing and unexpected keys (strict, like load_state_dict)', async () => {
    const sd = await tinyStateDict();
    sd.delete('conv_hr.bias');
    await assert.rejects(open(await write('missing.pth', sd)), (e: unknown) => e instanceof WeightsError && /missing conv_hr\.bias/.test(e.message));
    const extra = await tinyStateDict();
    extra.set('body.2.rdb1.conv1.weight', extra.get('body.1.rdb1.conv1.weight')!);
    await assert.rejects(open(await write('extra.pth', extra)), (e: unknown) => e instanceof WeightsError && /unexpected body\.2\.rdb1\.conv1\.weight/.test(e.message));
  });

  it('the weights of another scale or size', async () => {
    // ×4 weights opened as ×8 lack conv_up3; ×2 weights as ×4 have a 12-channel conv_first
    await assert.rejects(open(TINY_UPSCALERS[4], 8), (e: unknown) => e instanceof WeightsError && /missing conv_up3\.weight/.test(e.message));
    await assert.rejects(open(TINY_UPSCALERS[2], 4), (e: unknown) => e instanceof WeightsError && /conv_first\.weight has shape \[16, 12, 3, 3\], expected \[16, 3, 3, 3\]/.test(e.message));
    // the default is the official full size: a tiny file is not that
    await assert.rejects(Upscaler.fromCheckpoint(TINY_UPSCALERS[4], { scale: 4 }), (e: unknown) => e instanceof WeightsError && /64 features, 23 blocks, growth 32/.test(e.message));
  });

  it('non-float or non-finite weights', async () => {
    const ints = await tinyStateDict();
    ints.set('conv_last.bias', { dtype: 'int64', shape: [3], data: BigInt64Array.of(1n, 2n, 3n) });
    await assert.rejects(open(await write('int.pth', ints)), (e: unknown) => e instanceof WeightsError && /conv_last\.bias has dtype int64/.test(e.message));
    const nan = await tinyStateDict();
    const w = nan.get('conv_body.weight')!;
    const data = Float32Array.from(w.data as Float32Array);
    data[7] = Number.NaN;
    nan.set('conv_body.weight', { ...w, data });
    await assert.rejects(open(await write('nan.pth', nan)), (e: unknown) => e instanceof WeightsError && /conv_body\.weight holds a non-finite value \(NaN\) at index 7/.test(e.message));
  });

  it('files that are not checkpoints: text, a truncated zip, a missing file', async () => {
    const text = path.join(tmp.dir, 'text.pth');
    await writeFile(text, 'this is not a checkpoint\n');
    await assert.rejects(open(text), CheckpointError);
    const bytes = await readFile(TINY_UPSCALERS[4]);
    const truncated = path.join(tmp.dir, 'truncated.pth');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await assert.rejects(open(truncated), CheckpointError);
    await assert.rejects(open(path.join(tmp.dir, 'absent.pth')), CheckpointError);
  });

  it('fp16 weights are read (converted to float32)', async () => {
    const sd = await tinyStateDict();
    const half: StateDict = new Map();
    for (const [k, t] of sd) {
      const src = t.data as Float32Array;
      const bits = new Uint16Array(src.length);
      for (let i = 0; i < src.length; i++) bits[i] = toHalfBits(src[i]);
      half.set(k, { dtype: 'float16', shape: t.shape, data: bits });
    }
    const up = await open(await write('half.pth', half));
    const image = seededImage(20, 18, 3);
    const a = await up.upscale({ image, patchSize: 16, padding: 4, padSize: 3 });
    const ref = await open(TINY_UPSCALERS[4]);
    const b = await ref.upscale({ image, patchSize: 16, padding: 4, padSize: 3 });
    let differ = 0;
    for (let i = 0; i < a.data.length; i++) if (Math.abs(a.data[i] - b.data[i]) > 8) differ++;
    assert.ok(differ < a.data.length * 0.01, `${differ} values differ by more than 8 from the float32 weights' result`);
    await Promise.all([up.release(), ref.release()]);
  });
});

/** float32 → IEEE half bits, round to nearest (enough for weights of moderate size). */
function toHalfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign; // flush tiny values to zero
  if (exp >= 31) return sign | 0x7c00;
  const r = (exp << 10) | (mant >>> 13);
  return sign | (r + ((mant >>> 12) & 1));
}

describe('upscale inputs', () => {
  let up: Upscaler;
  before(async () => { up = await Upscaler.fromCheckpoint(TINY_UPSCALERS[4], { scale: 4, config: TINY_UPSCALER_SIZE, threads: 1, maxOutputPixels: 200 * 200 }); });
  after(async () => { await up?.release(); });

  it('bounds the output size', async () => {
    await assert.rejects(up.upscale(seededImage(51, 50, 1)), (e: unknown) => e instanceof InputError && /204×200 = 40800 pixels, over the limit of 40000/.test(e.message));
    const big = await up.upscale({ image: seededImage(50, 50, 1), patchSize: 32, padding: 4, padSize: 3 });
    assert.equal(big.width, 200);
  });

  it('refuses images smaller than the mirror border and malformed images', async () => {
    await assert.rejects(up.upscale(seededImage(14, 40, 1)), (e: unknown) => e instanceof InputError && /at least padSize = 15/.test(e.message));
    await assert.rejects(up.upscale({ width: 20, height: 20, data: new Uint8Array(20) }), ImageError);
    await assert.rejects(up.upscale({ width: 0, height: 20, data: new Uint8Array(0) }), ImageError);
    await assert.rejects(up.upscale({ image: undefined as unknown as RgbImage }), InputError);
  });

  it('refuses bad tiling options', async () => {
    const image = seededImage(20, 20, 1);
    await assert.rejects(up.upscale({ image, padding: 0 }), (e: unknown) => e instanceof InputError && /padding must be an integer ≥ 1/.test(e.message));
    await assert.rejects(up.upscale({ image, patchSize: 2.5 }), InputError);
    await assert.rejects(up.upscale({ image, batchSize: 1000 }), InputError);
    await assert.rejects(up.upscale({ image, patchSize: 1000, padding: 24 }), (e: unknown) => e instanceof InputError && /exceeds 1024/.test(e.message));
    const x2 = await Upscaler.fromCheckpoint(TINY_UPSCALERS[2], { scale: 2, config: TINY_UPSCALER_SIZE, threads: 1 });
    await assert.rejects(x2.upscale({ image, patchSize: 15, padding: 4, padSize: 3 }), (e: unknown) => e instanceof InputError && /multiple of 2 \(pixel-unshuffle\)/.test(e.message));
    await x2.release();
  });

  it('refuses scales without weights', async () => {
    await assert.rejects(Upscaler.fromCheckpoint(TINY_UPSCALERS[4], { scale: 3 as UpscaleScale }), (e: unknown) => e instanceof InputError && /scale must be one of 2, 4, 8/.test(e.message));
  });

  it('cancels between batches and reports progress per patch', async () => {
    const seen: number[] = [];
    const image = seededImage(40, 30, 2);
    const ac = new AbortController();
    await assert.rejects(up.upscale({
      image, patchSize: 16, padding: 4, padSize: 3, batchSize: 2, signal: ac.signal,
      onProgress: (p) => { seen.push(p.done); if (p.done >= 4) ac.abort(); },
    }), AbortError);
    assert.deepEqual(seen, [0, 2, 4]);
    const done: string[] = [];
    await up.upscale({ image, patchSize: 16, padding: 4, padSize: 3, batchSize: 4, onProgress: (p) => done.push(`${p.done}/${p.total}`) });
    assert.deepEqual(done, ['0/9', '4/9', '8/9', '9/9']); // (40+6)×(30+6) → edge-extended to 48×48 → 3×3 patches of 16
  });
});

/**
 * The official utils.py written out literally (numpy semantics, full canvases), independent of
 * the coordinate mapping in src/upscale/tiling.ts. `official` picks stich_together's row count.
 */
async function literalPredict(net: RrdbNet, img: RgbImage, P: number, p: number, q: number, bs: number, official: boolean): Promise<RgbImage> {
  const s = net.scale;
  type Arr = { h: number; w: number; v: Float64Array }; // HWC
  const at = (a: Arr, y: number, x: number, c: number) => a.v[(y * a.w + x) * 3 + c];
  const make = (h: number, w: number): Arr => ({ h, w, v: new Float64Array(h * w * 3) });
  const src: Arr = { h: img.height, w: img.width, v: Float64Array.from(img.data) };
  // pad_reflect: centre, top/bottom flipped rows, then left/right flipped columns of the result
  const pr = make(src.h + 2 * q, src.w + 2 * q);
  const set = (a: Arr, y: number, x: number, c: number, val: number) => { a.v[(y * a.w + x) * 3 + c] = val; };
  for (let y = 0; y < src.h; y++) for (let x = 0; x < src.w; x++) for (let c = 0; c < 3; c++) set(pr, y + q, x + q, c, at(src, y, x, c));
  for (let i = 0; i < q; i++) for (let x = 0; x < src.w; x++) for (let c = 0; c < 3; c++) {
    set(pr, i, x + q, c, at(src, q - 1 - i, x, c));
    set(pr, src.h + q + i, x + q, c, at(src, src.h - 1 - i, x, c));
  }
  for (let y = 0; y < pr.h; y++) for (let i = 0; i < q; i++) for (let c = 0; c < 3; c++) {
    set(pr, y, i, c, at(pr, y, 2 * q - 1 - i, c));
    set(pr, y, pr.w - q + i, c, at(pr, y, pr.w - q - 1 - i, c));
  }
  // split: np.pad edge to multiples of P (bottom/right), then edge pad p
  const ext = (n: number) => n + ((P - (n % P)) % P);
  const padded = make(ext(pr.h) + 2 * p, ext(pr.w) + 2 * p);
  const clamp = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
  for (let y = 0; y < padded.h; y++) for (let x = 0; x < padded.w; x++) for (let c = 0; c < 3; c++) {
    set(padded, y, x, c, at(pr, clamp(Math.min(y - p, ext(pr.h) - 1), pr.h), clamp(Math.min(x - p, ext(pr.w) - 1), pr.w), c));
  }
  const side = P + 2 * p;
  const origins: [number, number][] = [];
  for (let y = p; y < padded.h - p; y += P) for (let x = p; x < padded.w - p; x += P) origins.push([y - p, x - p]);
  // the network in batches (NCHW, u8 / 255)
  const outs: Float32Array[] = [];
  for (let b = 0; b < origins.length; b += bs) {
    const group = origins.slice(b, b + bs);
    const x = new Float32Array(group.length * 3 * side * side);
    group.forEach(([oy, ox], n) => {
      for (let c = 0; c < 3; c++) for (let y = 0; y < side; y++) for (let xx = 0; xx < side; xx++) {
        x[((n * 3 + c) * side + y) * side + xx] = at(padded, oy + y, ox + xx, c) / 255;
      }
    });
    const out = await net.forward({ data: x, shape: [group.length, 3, side, side] });
    const per = 3 * side * s * side * s;
    for (let n = 0; n < group.length; n++) outs.push(out.data.slice(n * per, (n + 1) * per));
  }
  // stich_together on a zero canvas of the padded size × s
  const T = side * s, t = P * s, crop = p * s;
  const canvas = make(padded.h * s, padded.w * s);
  const perRow = official ? Math.floor(canvas.w / t) : ext(pr.w) / P;
  outs.forEach((o, i) => {
    const row = Math.floor(i / perRow), col = i % perRow;
    for (let y = 0; y < t; y++) for (let x = 0; x < t; x++) for (let c = 0; c < 3; c++) {
      const v = Math.min(Math.max(o[(c * T + y + crop) * T + x + crop], 0), 1);
      set(canvas, row * t + y, col * t + x, c, v);
    }
  });
  // crop to the mirror-padded size × s, ×255 truncated, drop the border
  const H = img.height * s, W = img.width * s;
  const data = new Uint8Array(H * W * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < 3; c++) {
    data[(y * W + x) * 3 + c] = Math.trunc(at(canvas, y + q * s, x + q * s, c) * 255);
  }
  return { width: W, height: H, data };
}

describe('predict tiling', () => {
  const nets = new Map<UpscaleScale, RrdbNet>();
  const ups = new Map<UpscaleScale, Upscaler>();
  before(async () => {
    for (const scale of [2, 4, 8] as const) {
      nets.set(scale, await RrdbNet.fromCheckpoint(TINY_UPSCALERS[scale], tinyConfig(scale), { threads: 1 }));
      ups.set(scale, await Upscaler.fromCheckpoint(TINY_UPSCALERS[scale], { scale, config: TINY_UPSCALER_SIZE, threads: 1 }));
    }
  });
  after(async () => { for (const m of [...nets.values(), ...ups.values()]) await m.release(); });

  it('pad_reflect is numpy\'s symmetric pad, border as wide as the image included', () => {
    const img = seededImage(5, 3, 9);
    for (const q of [1, 3]) {
      const out = padSymmetric(img, q);
      assert.equal(out.width, 5 + 2 * q);
      assert.equal(out.height, 3 + 2 * q);
      const mirror = (i: number, n: number) => (i < 0 ? -i - 1 : i >= n ? 2 * n - 1 - i : i);
      for (let y = 0; y < out.height; y++) for (let x = 0; x < out.width; x++) {
        const s = (mirror(y - q, 3) * 5 + mirror(x - q, 5)) * 3;
        const d = (y * out.width + x) * 3;
        assert.deepEqual([...out.data.subarray(d, d + 3)], [...img.data.subarray(s, s + 3)], `q=${q} (${x}, ${y})`);
      }
    }
  });

  const cases: { name: string; scale: UpscaleScale; w: number; h: number; P: number; p: number; q: number; bs: number }[] = [
    { name: 'non-square, not a multiple of the patch', scale: 4, w: 37, h: 23, P: 16, p: 4, q: 3, bs: 3 },
    { name: 'smaller than one patch (one patch, edge-extended)', scale: 4, w: 21, h: 17, P: 64, p: 8, q: 5, bs: 4 },
    { name: 'tall, ×2', scale: 2, w: 12, h: 41, P: 10, p: 3, q: 4, bs: 2 },
    { name: 'border as wide as the image, ×8', scale: 8, w: 6, h: 9, P: 8, p: 2, q: 6, bs: 5 },
  ];
  for (const c of cases) {
    it(`matches the literal utils.py: ${c.name}`, async () => {
      const image = seededImage(c.w, c.h, c.w * 31 + c.h);
      const want = await literalPredict(nets.get(c.scale)!, image, c.P, c.p, c.q, c.bs, true);
      const got = await ups.get(c.scale)!.upscale({ image, patchSize: c.P, padding: c.p, padSize: c.q, batchSize: c.bs });
      assert.equal(got.width, c.w * c.scale);
      assert.equal(got.height, c.h * c.scale);
      assert.ok(Buffer.from(got.data).equals(Buffer.from(want.data)), 'bytes differ from the literal transcription');
    });
  }

  it('2·padding ≥ patchSize: tiles where they were cut by default, the official misplacement on request', async () => {
    const image = seededImage(20, 20, 5);
    const opts = { image, patchSize: 8, padding: 4, padSize: 2, batchSize: 4 };
    const net = nets.get(4)!;
    const fixed = await ups.get(4)!.upscale(opts);
    const official = await ups.get(4)!.upscale({ ...opts, officialStitch: true });
    assert.ok(Buffer.from(fixed.data).equals(Buffer.from((await literalPredict(net, image, 8, 4, 2, 4, false)).data)), 'default stitching differs from the literal one with the true tile count');
    assert.ok(Buffer.from(official.data).equals(Buffer.from((await literalPredict(net, image, 8, 4, 2, 4, true)).data)), 'officialStitch differs from the literal utils.py');
    // officially 4 tiles per row although there are 3: the third tile row holds one tile, the
    // rest of it stays black (output x ≥ 24 of the last row); the default covers everything
    const lastRowRight = (img: RgbImage) => img.data.subarray(((img.height - 1) * img.width + 24) * 3, img.height * img.width * 3);
    assert.ok(lastRowRight(official).every((v) => v === 0), 'officialStitch: the uncovered area is not black');
    assert.ok(!lastRowRight(fixed).every((v) => v === 0), 'default stitching left an area black');
  });

  it('is deterministic, and batching only changes float rounding', async () => {
    const image = seededImage(45, 38, 11);
    const opts = { image, patchSize: 16, padding: 4, padSize: 3 };
    const up = ups.get(4)!;
    const a = await up.upscale({ ...opts, batchSize: 4 });
    const b = await up.upscale({ ...opts, batchSize: 4 });
    assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data)), 'two identical calls differ');
    const c = await up.upscale({ ...opts, batchSize: 1 });
    let differ = 0;
    for (let i = 0; i < a.data.length; i++) {
      assert.ok(Math.abs(a.data[i] - c.data[i]) <= 1, `value ${i}: ${a.data[i]} vs ${c.data[i]}`);
      if (a.data[i] !== c.data[i]) differ++;
    }
    assert.ok(differ <= a.data.length * 0.001, `${differ} values differ between batch 4 and batch 1`);
  });

  it('uses the whole [0, 255] range: clamped values become 0 and 255, 1.0 maps to 255', async () => {
    const r = await ups.get(4)!.predict({ image: seededImage(30, 30, 4), patchSize: 16, padding: 4, padSize: 3 }, { keepFloat: true });
    let zeros = 0, full = 0;
    for (let i = 0; i < r.float!.length; i++) {
      const v = r.float![i];
      assert.equal(r.image.data[i], Math.trunc(v * 255));
      if (v === 0) zeros++;
      if (v === 1) full++;
    }
    assert.ok(zeros > 0 && full > 0, `expected clamped values at both ends (0: ${zeros}, 1: ${full})`);
  });
});

describe('SuperResolution', () => {
  it('opens each scale once, on first use, and retries a failed open', async () => {
    const calls: number[] = [];
    let failNext = true;
    const sr = new SuperResolution({
      config: TINY_UPSCALER_SIZE, threads: 1,
      weights: async (scale) => {
        calls.push(scale);
        if (scale === 8 && failNext) { failNext = false; throw new RudolphError('DOWNLOAD', 'hub unreachable'); }
        return TINY_UPSCALERS[scale];
      },
    });
    const image = seededImage(16, 16, 1);
    const opts = { image, patchSize: 16, padding: 4, padSize: 3 };
    const [a, b] = await Promise.all([sr.upscale({ ...opts, scale: 4 }), sr.upscale({ ...opts, scale: 4 })]);
    assert.deepEqual([a.width, b.width], [64, 64]);
    assert.equal((await sr.upscale({ ...opts, scale: 2 })).width, 32);
    await assert.rejects(sr.upscale({ ...opts, scale: 8 }), /hub unreachable/);
    assert.equal((await sr.upscale({ ...opts, scale: 8 })).width, 128);
    assert.deepEqual(calls, [4, 2, 8, 8]);
    await assert.rejects(sr.upscale({ ...opts, scale: 3 as UpscaleScale }), InputError);
    await sr.release();
    await assert.rejects(sr.upscale({ ...opts, scale: 4 }), /already released/);
  });

  it('a map of files names the scales it lacks', async () => {
    const sr = new SuperResolution({ config: TINY_UPSCALER_SIZE, weights: { 4: TINY_UPSCALERS[4] } });
    await assert.rejects(sr.upscale({ image: seededImage(16, 16, 1), scale: 2 }), (e: unknown) => e instanceof ConfigError && /no weights for ×2 \(have ×4\)/.test(e.message));
    await sr.release();
  });

  it('downloads RealESRGAN_x{S}.pth from the hub on first use; offline, the cache serves it or the error names it', async () => {
    const files: Record<string, Buffer> = { 'RealESRGAN_x4.pth': await readFile(TINY_UPSCALERS[4]), 'RealESRGAN_x2.pth': await readFile(TINY_UPSCALERS[2]) };
    const hub = await startMockHub({ repos: { [REALESRGAN_REPO]: { files } } });
    const cacheDir = path.join(tmp.dir, 'hub-cache');
    try {
      const image = seededImage(16, 16, 2);
      const online = new SuperResolution({ config: TINY_UPSCALER_SIZE, threads: 1, weights: hubUpscalerWeights({ cacheDir, endpoint: hub.endpoint }) });
      const first = await online.upscale({ image, scale: 4, patchSize: 16, padding: 4, padSize: 3 });
      await online.release();
      assert.equal(hub.count({ file: 'RealESRGAN_x4.pth', body: true }), 1);

      const offline = new SuperResolution({ config: TINY_UPSCALER_SIZE, threads: 1, weights: hubUpscalerWeights({ cacheDir, endpoint: hub.endpoint, offline: true }) });
      const again = await offline.upscale({ image, scale: 4, patchSize: 16, padding: 4, padSize: 3 });
      assert.ok(Buffer.from(first.data).equals(Buffer.from(again.data)), 'the cached weights give another result');
      assert.equal(hub.count({ file: 'RealESRGAN_x4.pth', body: true }), 1, 'offline use must not download');
      await assert.rejects(offline.upscale({ image, scale: 2 }), (e: unknown) => e instanceof OfflineError && /RealESRGAN_x2\.pth from sberbank-ai\/Real-ESRGAN/.test(e.message));
      await offline.release();
    } finally {
      await hub.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('random weights', () => {
  it('are seeded and loadable', async () => {
    const cfg = tinyConfig(4);
    const a = randomRrdbNetStateDict(cfg, 7);
    const b = randomRrdbNetStateDict(cfg, 7);
    const c = randomRrdbNetStateDict(cfg, 8);
    const w = (sd: StateDict) => sd.get('body.0.rdb1.conv1.weight')!.data as Float32Array;
    assert.deepEqual(w(a), w(b));
    assert.notDeepEqual(w(a), w(c));
    const up = await Upscaler.fromStateDict(a, { scale: 4, config: TINY_UPSCALER_SIZE, threads: 1 });
    assert.equal((await up.upscale({ image: seededImage(16, 16, 1), patchSize: 16, padding: 4, padSize: 3 })).width, 64);
    await up.release();
  });
});
