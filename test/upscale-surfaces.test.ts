/**
 * Super-resolution where users reach it: `rudolph.upscale` (weights from the hub on first use,
 * offline rules, no upscaler), `dream({ upscale })`, the network size read off the weights, the
 * `rudolph upscale` and `rudolph dream --upscale --grid` commands (mock hub through HF_ENDPOINT),
 * and POST /v1/upscale. The tiny ×2/×4/×8 Real-ESRGAN files of the golden set stand in for the
 * hub's full-size ones.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { InputError, WeightsError } from '../src/errors.js';
import { OfflineError } from '../src/hub/index.js';
import type { RgbImage } from '../src/image/index.js';
import { loadStateDict } from '../src/io/checkpoint.js';
import { REALESRGAN_REPO } from '../src/pretrained/upscaler-files.js';
import { Rudolph } from '../src/rudolph.js';
import { encodePng, readImage } from '../src/runtime/node/index.js';
import { inferRrdbNetConfig, randomRrdbNetStateDict, realEsrganConfig, Upscaler, type UpscaleScale } from '../src/upscale/index.js';
import { SMALL_TOKENIZER, tempDir, TINY_UPSCALER_SIZE, TINY_UPSCALERS, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { builtCli } from './helpers.js';
import { type MockHub, startMockHub } from './mock-hub.js';
import { postJson, startSmallServer, testImage, testPngBase64, type TestServer } from './server-fixture.js';


/** The tiny network of a scale opened directly: what every surface must agree with. */
async function direct(scale: UpscaleScale, image: RgbImage): Promise<RgbImage> {
  const up = await Upscaler.fromCheckpoint(TINY_UPSCALERS[scale], { scale, config: TINY_UPSCALER_SIZE, threads: 1 });
  try { return await up.upscale(image); } finally { await up.release(); }
}

let tmp: { dir: string; cleanup: () => Promise<void> };
let modelDir: string;
let hub: MockHub;
/** a folder with the three tiny files under their hub names */
let folder: string;

before(async () => {
  tmp = await tempDir('rudolph-upscale-surfaces-');
  modelDir = path.join(tmp.dir, 'model');
  await writeSmallModel(modelDir);
  folder = path.join(tmp.dir, 'realesrgan');
  await fsp.mkdir(folder);
  const files: Record<string, Buffer> = {};
  for (const scale of [2, 4, 8] as const) {
    files[`RealESRGAN_x${scale}.pth`] = await fsp.readFile(TINY_UPSCALERS[scale]);
    await fsp.copyFile(TINY_UPSCALERS[scale], path.join(folder, `RealESRGAN_x${scale}.pth`));
  }
  hub = await startMockHub({ repos: { [REALESRGAN_REPO]: { files } } });
});
after(async () => { await hub.close(); await tmp.cleanup(); });

describe('the network size read off the weights', () => {
  it('finds the tiny and the full size, and refuses what is not an RRDBNet', async () => {
    for (const scale of [2, 4, 8] as const) {
      const sd = await loadStateDict(TINY_UPSCALERS[scale], { toFloat32: true, stateDictKeys: ['params', 'params_ema'] });
      assert.deepEqual(inferRrdbNetConfig(sd, scale), { scale, ...TINY_UPSCALER_SIZE });
    }
    assert.deepEqual(inferRrdbNetConfig(randomRrdbNetStateDict(realEsrganConfig(2)), 2), realEsrganConfig(2));
    const notNet = new Map([['weight', { dtype: 'float32' as const, shape: [3], data: new Float32Array(3) }]]);
    assert.throws(() => inferRrdbNetConfig(notNet, 4, 'x.pth'), (e: unknown) => e instanceof WeightsError && /x\.pth: not an RRDBNet .* no conv_first\.weight/.test(e.message));
    // ×2 weights opened as ×4: the inferred size is consistent, the strict check names the odd tensor
    await assert.rejects(Upscaler.fromCheckpoint(TINY_UPSCALERS[2], { scale: 4, config: 'fromWeights' }), (e: unknown) => e instanceof WeightsError && /RealESRGAN_x2\.pth: as ×4 the network must take and give RGB .* got 12 → 3 \(weights of another scale\?\)/.test(e.message));
    const up = await Upscaler.fromCheckpoint(TINY_UPSCALERS[8], { scale: 8, config: 'fromWeights', threads: 1 });
    assert.deepEqual(up.config, { scale: 8, ...TINY_UPSCALER_SIZE });
    await up.release();
  });
});

describe('rudolph.upscale and dream({ upscale })', () => {
  const cacheDir = () => path.join(tmp.dir, 'lib-cache');
  const open = (extra: object = {}) => Rudolph.fromPretrained(modelDir, {
    tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: cacheDir(), endpoint: hub.endpoint, threads: 1, ...extra,
  });

  it('fetches RealESRGAN_x{S}.pth on the first upscale at S (not at load), once, and matches the network run directly', async () => {
    const before4 = hub.count({ file: 'RealESRGAN_x4.pth', body: true });
    const r = await open();
    try {
      assert.equal(hub.count({ file: 'RealESRGAN_x4.pth', body: true }), before4, 'nothing is downloaded at load');
      const image = testImage(32);
      const stages = new Set<string>();
      const res = await r.upscale({ image, scale: 4, onProgress: (p) => stages.add(p.stage) });
      assert.equal(res.scale, 4);
      assert.deepEqual([res.image.width, res.image.height], [128, 128]);
      assert.deepEqual(res.image.data, (await direct(4, image)).data);
      assert.ok(stages.has('download RealESRGAN_x4.pth') && stages.has('patches'), [...stages].join(', '));
      assert.equal(hub.count({ file: 'RealESRGAN_x4.pth', body: true }), before4 + 1);
      // the session stays open; the default scale is 4
      const again = await r.upscale({ image });
      assert.deepEqual(again.image.data, res.image.data);
      assert.equal(hub.count({ file: 'RealESRGAN_x4.pth', body: true }), before4 + 1);
      // image token ids are decoded by the VQGAN first
      const ids = Array.from({ length: 16 }, (_, i) => (i * 7) % 64);
      const fromIds = await r.upscale({ image: { ids }, scale: 2 });
      const [decoded] = await r.vqgan!.decodeToImages(ids, 1);
      assert.deepEqual(fromIds.image.data, (await direct(2, decoded)).data);
      await assert.rejects(r.upscale({ image, scale: 3 as UpscaleScale }), (e: unknown) => e instanceof InputError && /scale must be one of 2, 4, 8, got 3/.test(e.message));
    } finally {
      await r.release();
    }
  });

  it('offline: a cached scale works, a missing one is an OfflineError naming the file; upscaler: false refuses', async () => {
    const r = await open({ offline: true });
    try {
      const image = testImage(32);
      assert.equal((await r.upscale({ image, scale: 4 })).image.width, 128);
      await assert.rejects(r.upscale({ image, scale: 8 }), (e: unknown) => e instanceof OfflineError && /RealESRGAN_x8\.pth/.test(e.message));
    } finally {
      await r.release();
    }
    const none = await open({ upscaler: false });
    try {
      await assert.rejects(none.upscale({ image: testImage(32) }), (e: unknown) => e instanceof InputError && /upscaler: false/.test(e.message));
      await assert.rejects(none.dream({ text: 'кот', candidates: 1, upscale: 2 }), (e: unknown) => e instanceof InputError && /upscaler: false/.test(e.message));
    } finally {
      await none.release();
    }
  });

  it('dream upscales the chosen images: the same images as without, each made larger', async () => {
    const r = await open({ upscaler: folder });
    try {
      const plain = await r.dream({ text: 'рыжий кот', images: 2, candidates: 3, seed: 11 });
      const big = await r.dream({ text: 'рыжий кот', images: 2, candidates: 3, seed: 11, upscale: 2 });
      assert.deepEqual(big.images.map((i) => i.candidate), plain.images.map((i) => i.candidate));
      for (const [i, img] of big.images.entries()) {
        assert.deepEqual([img.image.width, img.image.height], [64, 64]);
        assert.deepEqual(img.image.data, (await direct(2, plain.images[i].image)).data);
        assert.deepEqual(img.codebook, plain.images[i].codebook);
      }
      await assert.rejects(r.dream({ text: 'кот', upscale: 5 as UpscaleScale }), (e: unknown) => e instanceof InputError && /dream upscale: scale must be one of 2, 4, 8/.test(e.message));
    } finally {
      await r.release();
    }
  });
});

describe('CLI: rudolph upscale, dream --upscale --grid', () => {
  const exec = promisify(execFile);
  let CLI = '';
  before(async () => { CLI = await builtCli(); });

  async function rudolph(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { maxBuffer: 16 << 20, env: { ...process.env, HF_ENDPOINT: hub.endpoint, ...env } });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }

  it('upscale downloads the weights once, writes <name>-x<S>.png or the --out file, and loads no RUDOLPH model', async () => {
    const cacheDir = path.join(tmp.dir, 'cli-cache');
    const input = path.join(tmp.dir, 'кот.png');
    await fsp.writeFile(input, await encodePng(testImage(32)));
    const out = path.join(tmp.dir, 'cli-out');
    const r = await rudolph(['upscale', input, '--scale', '8', '--out', out, '--cache-dir', cacheDir, '--threads', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { file: string; scale: number };
    assert.equal(res.file, path.join(out, 'кот-x8.png'));
    assert.equal(res.scale, 8);
    const written = await readImage(res.file);
    assert.deepEqual(written.data, (await direct(8, testImage(32))).data);
    assert.equal(hub.count({ file: 'RealESRGAN_x8.pth', body: true }), 1);
    // offline now: served from the cache; a file name as --out
    const named = path.join(tmp.dir, 'cli-out', 'большой.png');
    const again = await rudolph(['upscale', input, '--scale', '8', '--out', named, '--cache-dir', cacheDir, '--offline', '-q']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /большой\.png\t256×256\t×8/);
    assert.deepEqual(await fsp.readFile(named), await fsp.readFile(res.file));
    assert.equal(hub.count({ file: 'RealESRGAN_x8.pth', body: true }), 1);
    const offlineMissing = await rudolph(['upscale', input, '--scale', '2', '--cache-dir', path.join(tmp.dir, 'empty-cache'), '--offline', '--out', out]);
    assert.equal(offlineMissing.code, 3);
    assert.match(offlineMissing.stderr, /RealESRGAN_x2\.pth/);
    const badScale = await rudolph(['upscale', input, '--scale', '3']);
    assert.equal(badScale.code, 2);
    assert.match(badScale.stderr, /--scale must be one of 2, 4, 8, got "3"/);
    const missing = await rudolph(['upscale', path.join(tmp.dir, 'nope.png')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.png/);
  });

  it('dream --upscale 2 --grid writes the chosen images and the grid at the new size', async () => {
    const out = path.join(tmp.dir, 'dream-out');
    const model = ['--model', modelDir, '--tokenizer', SMALL_TOKENIZER, '--vqgan', TINY_VQGAN_DIR, '--cache-dir', path.join(tmp.dir, 'cli-cache'), '--threads', '1'];
    const r = await rudolph(['dream', 'кот', '-n', '2', '--candidates', '2', '--seed', '4', '--upscale', '2', '--grid', '--out', out, '--upscaler', folder, '--json', ...model]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { images: { file: string; width: number }[]; grid: string };
    const images = await Promise.all(res.images.map((i) => readImage(i.file)));
    assert.deepEqual(images.map((i) => [i.width, i.height]), [[64, 64], [64, 64]]);
    assert.equal(res.grid, path.join(out, 'dream-4-grid.png'));
    const grid = await readImage(res.grid);
    // torchvision make_grid's layout (as ruDALL-E's show): 2 px padding around and between
    assert.deepEqual([grid.width, grid.height], [2 + 64 + 2 + 64 + 2, 2 + 64 + 2]);
    const row = (img: RgbImage, y: number, x0: number, w: number) => img.data.subarray((y * img.width + x0) * 3, (y * img.width + x0 + w) * 3);
    for (let y = 0; y < 64; y += 7) {
      assert.deepEqual(row(grid, y + 2, 2, 64), row(images[0], y, 0, 64));
      assert.deepEqual(row(grid, y + 2, 68, 64), row(images[1], y, 0, 64));
    }
    const noWeights = await rudolph(['dream', 'кот', '--candidates', '1', '--upscale', '4', '--upscaler', path.join(tmp.dir, 'empty'), '--out', out, ...model]);
    assert.equal(noWeights.code, 2);
    assert.match(noWeights.stderr, /no RealESRGAN_x4\.pth in .*empty/);
  });
});

describe('HTTP: /v1/upscale and dream with upscale', () => {
  let server: TestServer;
  before(async () => { server = await startSmallServer({ upscaler: folder, threads: 1 }); });
  after(async () => { await server?.close(); });

  it('upscales a base64 image, dream returns larger images, OpenAPI and /v1/tasks list it', async () => {
    const res = await postJson<{ png: string; width: number; height: number; scale: number }>(`${server.url}/v1/upscale`, { image: await testPngBase64(), scale: 2 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.width, res.body.height, res.body.scale], [64, 64, 2]);
    const png = await readImage(Buffer.from(res.body.png, 'base64'));
    assert.deepEqual(png.data, (await direct(2, testImage(32))).data);
    const bad = await postJson<{ code: string; message: string }>(`${server.url}/v1/upscale`, { image: await testPngBase64(), scale: 3 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /scale/);
    const dream = await postJson<{ images: { width: number }[] }>(`${server.url}/v1/dream`, { text: 'дом', candidates: 1, seed: 2, upscale: 4 });
    assert.equal(dream.status, 200, JSON.stringify(dream.body));
    assert.equal(dream.body.images[0].width, 128);
    const openapi = await (await fetch(`${server.url}/openapi.json`)).json() as { paths: Record<string, unknown> };
    assert.ok('/v1/upscale' in openapi.paths);
    const tasks = await (await fetch(`${server.url}/v1/tasks`)).json() as { tasks: { name: string; fields: { path: string; enum?: number[] }[] }[] };
    const scale = tasks.tasks.find((t) => t.name === 'upscale')?.fields.find((f) => f.path === 'scale');
    assert.deepEqual(scale?.enum, [2, 4, 8]);
  });
});
