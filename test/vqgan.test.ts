import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, InputError, WeightsError } from '../src/errors.js';
import { fromFloatCHW, toFloatCHW, type RgbImage } from '../src/image/index.js';
import { loadStateDict } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import type { HostTensor, StateDict } from '../src/tensor.js';
import {
  decoderLevels, downsamplingFactor, encoderLevels, readVqganConfigFile, SBER_VQGAN_CONFIG, Vqgan,
  vqganConfigFromYaml, vqganParameterSpecs, type VqganConfig,
} from '../src/vqgan/index.js';
import { configBeside, loadVqgan } from '../src/pretrained/vqgan-files.js';
import { GOLDEN_DIR } from './helpers.js';

const TINY_DIR = path.join(GOLDEN_DIR, 'vqgan-tiny');
const TINY_CKPT = path.join(TINY_DIR, 'vqgan.ckpt');
const TINY_ST = path.join(TINY_DIR, 'vqgan.safetensors');
const TINY_YAML = path.join(TINY_DIR, 'config.yaml');

interface ManifestModel { ddconfig: Record<string, unknown>; embed_dim: number; n_embed: number }
interface ManifestCase { id: string; inputs: Record<string, { tensor: string }>; outputs: Record<string, { tensor: string }> }

let tmp = '';
let manifest: { models: Record<string, ManifestModel>; cases: ManifestCase[] };
let cfg: VqganConfig;
let model: Vqgan;
let golden: Map<string, HostTensor>;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rudolph-vqgan-test-'));
  manifest = JSON.parse(await readFile(path.join(GOLDEN_DIR, 'manifest.json'), 'utf8'));
  cfg = await readVqganConfigFile(TINY_YAML);
  model = await loadVqgan(TINY_CKPT, { threads: 2 });
  const st = await SafetensorsFile.open(path.join(TINY_DIR, 'golden.safetensors'));
  golden = new Map();
  for (const k of st.keys()) golden.set(k, await st.read(k));
  await st.close();
});
after(async () => {
  await model?.release();
  await rm(tmp, { recursive: true, force: true });
});

function seededImage(width: number, height: number, seed: number): RgbImage {
  let s = seed >>> 0 || 1;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { width, height, data };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function goldenImages(name: string): RgbImage[] {
  const t = golden.get(name)!;
  const [B, H, W] = t.shape;
  const per = H * W * 3;
  return Array.from({ length: B }, (_, b) => ({ width: W, height: H, data: (t.data as Uint8Array).subarray(b * per, (b + 1) * per) }));
}

async function tinyStateDict(): Promise<StateDict> {
  return loadStateDict(TINY_CKPT, { toFloat32: true });
}

describe('config', () => {
  it('reads the official YAML format (values as the manifest records them)', () => {
    const m = manifest.models['vqgan-tiny'];
    assert.equal(cfg.ch, m.ddconfig.ch);
    assert.deepEqual(cfg.chMult, m.ddconfig.ch_mult);
    assert.equal(cfg.numResBlocks, m.ddconfig.num_res_blocks);
    assert.deepEqual(cfg.attnResolutions, m.ddconfig.attn_resolutions);
    assert.equal(cfg.resolution, m.ddconfig.resolution);
    assert.equal(cfg.zChannels, m.ddconfig.z_channels);
    assert.equal(cfg.embedDim, m.embed_dim);
    assert.equal(cfg.nEmbed, m.n_embed);
    assert.equal(cfg.doubleZ, false);
    assert.equal(downsamplingFactor(cfg), 8);
  });

  it('the Sber preset has exactly the tensors of the official gumbelf8-sber checkpoint', async () => {
    const keys = (await readFile(path.join(GOLDEN_DIR, 'KEYS-vqgan.txt'), 'utf8')).split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => { const [name, , shape] = l.split('\t'); return `${name} ${shape.replace(/\s/g, '')}`; })
      .filter((l) => !l.startsWith('loss.'));
    const specs = vqganParameterSpecs(SBER_VQGAN_CONFIG).map((s) => `${s.name} [${s.shape.join(',')}]`);
    assert.deepEqual([...specs].sort(), [...keys].sort());
  });

  it('places attention by the config resolution (Sber: lowest level only)', () => {
    assert.deepEqual(encoderLevels(SBER_VQGAN_CONFIG).map((l) => l.attn), [false, false, false, true]);
    assert.deepEqual(decoderLevels(SBER_VQGAN_CONFIG).map((l) => [l.index, l.attn]), [[3, true], [2, false], [1, false], [0, false]]);
    const moved = { ...SBER_VQGAN_CONFIG, attnResolutions: [64] };
    assert.deepEqual(encoderLevels(moved).map((l) => l.attn), [false, false, true, false]);
  });

  it('rejects bad YAML configs with ConfigError naming the problem', () => {
    const yaml = (dd: string, extra = 'embed_dim: 32\n    n_embed: 64') =>
      `model:\n  params:\n    ${extra}\n    ddconfig:\n${dd}`;
    const good = '      ch: 32\n      ch_mult: [1, 1, 2]\n      num_res_blocks: 1\n      attn_resolutions: []\n      resolution: 32\n      z_channels: 32\n';
    assert.equal(vqganConfigFromYaml(yaml(good)).chMult.length, 3);
    assert.throws(() => vqganConfigFromYaml('model: [unclosed', 'x.yaml'), (e: Error) => e instanceof ConfigError && /x\.yaml: not valid YAML/.test(e.message));
    assert.throws(() => vqganConfigFromYaml('model:\n  params:\n    embed_dim: 3\n'), (e: Error) => e instanceof ConfigError && /ddconfig/.test(e.message));
    assert.throws(() => vqganConfigFromYaml(yaml(good.replace('[1, 1, 2]', '4'))), (e: Error) => e instanceof ConfigError && /ch_mult/.test(e.message));
    assert.throws(() => vqganConfigFromYaml(yaml(good.replace('ch: 32', 'ch: 48'))), (e: Error) => e instanceof ConfigError && /ch \(48\)/.test(e.message));
    assert.throws(() => vqganConfigFromYaml(yaml(good, 'embed_dim: 16\n    n_embed: 64')), (e: Error) => e instanceof ConfigError && /embed_dim/.test(e.message));
    assert.throws(() => vqganConfigFromYaml(yaml(good, 'embed_dim: 32')), (e: Error) => e instanceof ConfigError && /n_embed/.test(e.message));
    assert.throws(() => vqganConfigFromYaml(yaml(good + '      double_z: true\n')), (e: Error) => e instanceof ConfigError && /double_z/.test(e.message));
  });

  it('bounds every field of the YAML config, naming it, before anything is sized from it', async () => {
    const doc = (dd: Record<string, unknown>, params: Record<string, unknown> = {}): string =>
      JSON.stringify({ model: { params: { embed_dim: 32, n_embed: 64, ...params, ddconfig: { ch: 32, ch_mult: [1, 1, 2], num_res_blocks: 1, attn_resolutions: [], resolution: 32, z_channels: 32, ...dd } } } });
    assert.equal(vqganConfigFromYaml(doc({})).ch, 32);
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, RegExp]> = [
      [{ ch: 1e9 }, {}, /ch must be a positive integer ≤ 1024, got 1000000000/],
      [{ ch_mult: new Array(100).fill(1) }, {}, /ch_mult must be a non-empty list of at most 8/],
      [{ ch_mult: [1, 1e6] }, {}, /ch_mult\[1\] must be a positive integer ≤ 16/],
      [{ num_res_blocks: 1e9 }, {}, /num_res_blocks must be a positive integer ≤ 16/],
      [{ attn_resolutions: new Array(1000).fill(16) }, {}, /attn_resolutions must be a list of at most 32/],
      [{ resolution: 1e12 }, {}, /resolution must be a positive integer ≤ 8192/],
      [{ z_channels: 1e6 }, { embed_dim: 1e6 }, /z_channels must be a positive integer ≤ 4096/],
      [{}, { n_embed: 1e10 }, /n_embed must be a positive integer ≤ 1048576/],
      [{ in_channels: 1000 }, {}, /in_channels must be a positive integer ≤ 16/],
      [{ out_ch: 0 }, {}, /out_ch must be a positive integer/],
      [{ ch: 1024, ch_mult: [1, 16] }, {}, /ch × max\(ch_mult\) is 16384 channels/],
      [{ ch: 512, ch_mult: [1, 2, 4, 8, 8, 8, 8, 8], num_res_blocks: 16 }, {}, /describes about .* parameters .*over the 2e\+9/],
    ];
    for (const [dd, params, pattern] of cases) {
      assert.throws(() => vqganConfigFromYaml(doc(dd, params), 'v.yaml'), (e: Error) => e instanceof ConfigError && e.message.startsWith('v.yaml: ') && pattern.test(e.message), pattern.source);
    }
    const huge = path.join(tmp, 'huge.yaml');
    await writeFile(huge, `# ${'x'.repeat(2 << 20)}\n${doc({})}`);
    await assert.rejects(readVqganConfigFile(huge), (e: Error) => e instanceof ConfigError && /huge\.yaml: cannot read the VQGAN config: \d+ bytes, more than the 65536 accepted/.test(e.message));
    // deep flow nesting: 1 MB of it cost the YAML parser 5.5 s and 550 MB before the bound
    const nested = `model: ${'['.repeat(500_000)}1${']'.repeat(500_000)}`;
    const t0 = performance.now();
    assert.throws(() => vqganConfigFromYaml(nested, 'n.yaml'), (e: Error) => e instanceof ConfigError && /n\.yaml: 1000008 characters, over the 65536 a VQGAN config may have/.test(e.message));
    assert.ok(performance.now() - t0 < 100);
    const nearCap = `model: ${'['.repeat(32_000)}1${']'.repeat(32_000)}`;
    assert.throws(() => vqganConfigFromYaml(nearCap, 'c.yaml'), ConfigError);
  });

  it('takes the YAML beside a checkpoint, else the Sber preset', async () => {
    assert.deepEqual(await configBeside(TINY_CKPT), cfg);
    const lone = path.join(tmp, 'lone');
    await rm(lone, { recursive: true, force: true });
    await mkdir(lone);
    await copyFile(TINY_CKPT, path.join(lone, 'vqgan.ckpt'));
    assert.deepEqual(await configBeside(path.join(lone, 'vqgan.ckpt')), { ...SBER_VQGAN_CONFIG });
    // The tiny weights do not fit the Sber preset: the first misshapen tensor is named.
    await assert.rejects(loadVqgan(path.join(lone, 'vqgan.ckpt')),
      (e: Error) => e instanceof WeightsError && /encoder\.conv_in\.weight has shape \[32, 3, 3, 3\], expected \[128, 3, 3, 3\]/.test(e.message));
    await writeFile(path.join(lone, 'a.yaml'), await readFile(TINY_YAML));
    await writeFile(path.join(lone, 'b.yml'), await readFile(TINY_YAML));
    await assert.rejects(configBeside(path.join(lone, 'vqgan.ckpt')), (e: Error) => e instanceof ConfigError && /several YAML/.test(e.message));
  });
});

describe('weights', () => {
  it('names a missing tensor', async () => {
    const sd = await tinyStateDict();
    sd.delete('decoder.up.2.block.1.conv2.bias');
    await assert.rejects(Vqgan.fromWeights(cfg, sd), (e: Error) => e instanceof WeightsError && /decoder\.up\.2\.block\.1\.conv2\.bias/.test(e.message));
  });

  it('names a misshapen tensor and its shapes', async () => {
    const sd = await tinyStateDict();
    const t = sd.get('quantize.embed.weight')!;
    sd.set('quantize.embed.weight', { ...t, shape: [32, 64] });
    await assert.rejects(Vqgan.fromWeights(cfg, sd),
      (e: Error) => e instanceof WeightsError && /quantize\.embed\.weight has shape \[32, 64\], expected \[64, 32\]/.test(e.message));
  });

  it('ignores loss.* tensors but not unknown model tensors', async () => {
    const sd = await tinyStateDict();
    sd.set('loss.discriminator.main.0.weight', { dtype: 'float32', shape: [2, 2], data: new Float32Array(4) });
    sd.set('loss.perceptual_loss.scaling_layer.shift', { dtype: 'int64', shape: [1], data: new BigInt64Array(1) });
    const m = await Vqgan.fromWeights(cfg, sd);
    await m.release();
    sd.set('encoder.down.0.attn.0.q.weight', { dtype: 'float32', shape: [32, 32, 1, 1], data: new Float32Array(1024) });
    await assert.rejects(Vqgan.fromWeights(cfg, sd), (e: Error) => e instanceof WeightsError && /unexpected tensor\(s\) encoder\.down\.0\.attn\.0\.q\.weight/.test(e.message));
  });

  it('attention placement follows the config resolution: the same weights do not fit resolution 64', async () => {
    await assert.rejects(Vqgan.fromWeights({ ...cfg, resolution: 64 }, await tinyStateDict()),
      (e: Error) => e instanceof WeightsError && /unexpected tensor\(s\) .*attn/.test(e.message));
  });
});

describe('input validation', () => {
  it('rejects image sizes that are not multiples of 8', async () => {
    await assert.rejects(model.encode([seededImage(36, 32, 1)]), (e: Error) => e instanceof InputError && /36×32 is not a multiple of 8/.test(e.message));
    await assert.rejects(model.encode({ data: new Float32Array(3 * 40 * 44), batch: 1, height: 40, width: 44 }), InputError);
    await assert.rejects(model.encode({ data: new Float32Array(3 * 4 * 4), batch: 1, height: 4, width: 4 }), InputError);
  });

  it('rejects mixed sizes, empty batches and wrong float lengths', async () => {
    await assert.rejects(model.encode([seededImage(16, 16, 1), seededImage(24, 16, 2)]), (e: Error) => e instanceof InputError && /image 1 is 24×16/.test(e.message));
    await assert.rejects(model.encode([]), InputError);
    await assert.rejects(model.encode({ data: new Float32Array(10), batch: 1, height: 16, width: 16 }), (e: Error) => e instanceof InputError && /768 values/.test(e.message));
  });

  it('rejects ids outside the codebook, and grids that do not fit', async () => {
    const ids = new Array(16).fill(3);
    for (const bad of [64, -1, 2.5, Number.NaN]) {
      ids[7] = bad;
      await assert.rejects(model.decode(ids, 1), (e: Error) => e instanceof InputError && /position 7/.test(e.message) && /\[0, 64\)/.test(e.message));
    }
    await assert.rejects(model.decode(new Array(12).fill(0), 1), (e: Error) => e instanceof InputError && /not a square grid/.test(e.message));
    await assert.rejects(model.decode(new Array(12).fill(0), 1, { rows: 5 }), InputError);
    await assert.rejects(model.decode(new Array(15).fill(0), 2), InputError);
  });
});

describe('encode / decode', () => {
  it('round-trips at several sizes, square and not, with the right shapes', async () => {
    for (const [w, h] of [[8, 8], [16, 16], [48, 48], [40, 24]]) {
      const imgs = [seededImage(w, h, w), seededImage(w, h, h + 100)];
      const ids = await model.encode(imgs);
      const rows = h / 8, cols = w / 8;
      assert.equal(ids.length, 2 * rows * cols);
      assert.ok(ids.every((id) => id >= 0 && id < cfg.nEmbed));
      const dec = await model.decode(ids, 2, { rows, cols });
      assert.deepEqual([dec.batch, dec.height, dec.width, dec.data.length], [2, h, w, 2 * 3 * h * w]);
      assert.ok(dec.data.every((v) => v >= 0 && v <= 1));
      const rgb = await model.decodeToImages(ids, 2, { cols });
      assert.deepEqual(rgb.map((r) => [r.width, r.height]), [[w, h], [w, h]]);
      assert.deepEqual(rgb[1], fromFloatCHW(dec.data.subarray(3 * h * w), w, h));
    }
  });

  it('a batch gives the same ids as its images one by one, and float input the same as RGB', async () => {
    const a = seededImage(48, 48, 5), b = seededImage(48, 48, 6);
    const both = await model.encode([a, b]);
    assert.deepEqual(both, Int32Array.from([...await model.encode([a]), ...await model.encode([b])]));
    const floats = new Float32Array(2 * 3 * 48 * 48);
    toFloatCHW(a, floats, 0);
    toFloatCHW(b, floats, 3 * 48 * 48);
    assert.deepEqual(await model.encode({ data: floats, batch: 2, height: 48, width: 48 }), both);
  });
});

describe('golden parity (official code, vqgan-tiny checkpoint)', () => {
  const tol = 1e-4;

  it('encode at 64×64 (2× the config resolution): ids exact, intermediates within 1e-4', async () => {
    const c = manifest.cases.find((x) => x.id === 'vqgan_encode_2x')!;
    const r = await model.encodeWithIntermediates(goldenImages(c.inputs.image_u8_hwc.tensor));
    assert.deepEqual(Array.from(r.ids), Array.from(golden.get(c.outputs.indices.tensor)!.data as Int32Array));
    for (const name of ['encoder_out', 'quant_conv_out', 'proj_logits'] as const) {
      const want = golden.get(c.outputs[name].tensor)!;
      assert.deepEqual(r.intermediates[name].shape, want.shape, name);
      assert.ok(maxAbs(r.intermediates[name].data, want.data as Float32Array) <= tol, name);
    }
  });

  it('decode of 8×8 grids: image and intermediates within 1e-4', async () => {
    const c = manifest.cases.find((x) => x.id === 'vqgan_decode_2x')!;
    const ids = golden.get(c.inputs.indices.tensor)!;
    const r = await model.decodeWithIntermediates(ids.data as Int32Array, ids.shape[0]);
    assert.ok(maxAbs(r.image.data, golden.get(c.outputs.image.tensor)!.data as Float32Array) <= tol, 'image');
    for (const name of ['z', 'post_quant_conv_out', 'decoder_out'] as const) {
      const want = golden.get(c.outputs[name].tensor)!;
      assert.deepEqual(r.intermediates[name].shape, want.shape, name);
      assert.ok(maxAbs(r.intermediates[name].data, want.data as Float32Array) <= tol, name);
    }
  });

  it('the safetensors copy of the weights gives the same results as the .ckpt', async () => {
    const st = await loadVqgan(TINY_ST, { config: TINY_YAML });
    try {
      const img = [seededImage(48, 48, 9)];
      assert.deepEqual(await st.encode(img), await model.encode(img));
    } finally {
      await st.release();
    }
  });
});
