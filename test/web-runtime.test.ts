/**
 * The web runtime in real headless Chromium (onnxruntime-web, WASM): the same seed, inputs and
 * options give the same token ids as Node; the image codec decodes like sharp and writes lossless
 * PNGs, refusing oversized and broken files with ImageError; files are read by HTTP Range and a
 * second open offline is served from the Cache API.
 */
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { makeConfig } from '../src/model/config.js';
import { WIDTH_STEP } from '../src/model/kv-cache.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { encodePng, readImage } from '../src/runtime/node/index.js';
import { generateText } from '../src/tasks/generate-text.js';
import { generateImageTokens } from '../src/tasks/image-tokens.js';
import { IdListTokenizer } from '../src/tokenizer/text-encoding.js';
import type { PageError, PageImage } from './browser/api.js';
import { chromiumMissing } from './browser/chromium.js';
import { openTestPage, type TestPage } from './browser/harness.js';
import { SMALL_PARAMS } from './fixtures.js';
import { runInBrowser } from './golden/browser-run.js';
import { GOLDEN_DIR } from './helpers.js';
import { testImage } from './server-fixture.js';

const skip = chromiumMissing();
let t: TestPage;
let files: string;

before(async () => {
  if (skip) return;
  files = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-web-files-'));
  const bytes = new Uint8Array(100_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 255;
  await fsp.writeFile(path.join(files, 'blob.bin'), bytes);
  t = await openTestPage({ mounts: { '/files/': files } });
});

after(async () => {
  await t?.close();
  if (files) await fsp.rm(files, { recursive: true, force: true });
});

const isError = (x: unknown): x is PageError => typeof x === 'object' && x !== null && 'error' in x;

describe('web runtime in Chromium', { skip }, () => {
  it('runs cross-origin isolated on onnxruntime-web 1.30.0, the version onnxruntime-node uses', async () => {
    const info = await t.call('info');
    assert.equal(info.runtime, 'web');
    assert.equal(info.onnxruntime, '1.30.0');
    assert.equal(info.isolated, true, 'COOP/COEP make the page cross-origin isolated (WASM threads)');
  });

  it('gives the same token ids as Node for the same seed, inputs and options (fp32, WASM)', { timeout: 120_000 }, async () => {
    // 64 image tokens: the cache's fed width grows mid-generation, so views into its buffers are fed
    const params = { ...SMALL_PARAMS, image_tokens_per_dim: 8 };
    const cfg = makeConfig(params);
    assert.ok(cfg.l + cfg.imageLength > WIDTH_STEP);
    const web = await t.call('tokensFromRandom', params, 3, 11);
    const model = await RudolphModel.fromWeights(cfg, randomWeights(cfg, 3), { threads: 2 });
    try {
      const ctx = { model, cfg, tokenizer: new IdListTokenizer(cfg.textVocab), batchSize: 2 };
      const img = await generateImageTokens(ctx, { text: '5 17 42', count: 3, topK: 8, topP: 0.9, temperature: 1, seed: 11 });
      const txt = await generateText(ctx, { template: '7 9', count: 3, topK: 8, topP: 0.9, temperature: 1, seed: 11 });
      assert.deepEqual(web.imageIds, img.codebooks.map((c) => Array.from(c)));
      assert.deepEqual(web.textIds, txt.texts.map((x) => x.text));
      assert.equal(web.imageIds.length, 3);
      assert.ok(web.imageIds.every((ids) => ids.length === cfg.imageLength), 'full codebooks');
    } finally {
      await model.release();
    }
  });

  it('runs the int8 graph (the WASM default: DynamicQuantizeMatMul, as Node\'s dq-int8) within the quantisation error of fp32', { timeout: 120_000 }, async () => {
    const cfg = makeConfig(SMALL_PARAMS);
    const ids = Array.from({ length: cfg.totalLength }, (_, i) => (i >= cfg.l && i < cfg.l + cfg.imageLength ? (i * 5) % cfg.imageVocab : 4 + ((i * 37) % 500)));
    const web8 = Float32Array.from(await t.call('forwardLogits', SMALL_PARAMS, 3, 'int8', ids));
    const web32 = Float32Array.from(await t.call('forwardLogits', SMALL_PARAMS, 3, 'fp32', ids));
    const nodeLogits = async (int8Kernel: 'dq-int8' | 'nbits8') => {
      const m = await RudolphModel.fromWeights(cfg, randomWeights(cfg, 3), { threads: 2, precision: 'int8', quant: { int8Kernel } });
      try { return (await m.forward(ids, 1)).logits!; } finally { await m.release(); }
    };
    const sameScheme = await nodeLogits('dq-int8'), blockwise = await nodeLogits('nbits8');
    const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    const scale = web32.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.equal(web8.length, sameScheme.length);
    console.log(`int8 web vs node dq-int8 ${maxAbs(web8, sameScheme).toExponential(2)}, vs node nbits8 ${maxAbs(web8, blockwise).toExponential(2)}, web int8 vs web fp32 ${maxAbs(web8, web32).toExponential(2)} (max |logit| ${scale.toFixed(3)})`);
    // the same weights and activation quantisation as Node's dq-int8 (kernels may round differently),
    // far closer to it than to the block-wise scheme: the web runtime chose its own int8 kernel
    assert.ok(maxAbs(web8, sameScheme) <= 0.2 * maxAbs(web8, blockwise), `browser int8 vs Node dq-int8: ${maxAbs(web8, sameScheme)} (vs nbits8 ${maxAbs(web8, blockwise)})`);
    assert.ok(maxAbs(web8, web32) <= 0.05 * scale, `browser int8 vs fp32: ${maxAbs(web8, web32)}`);
    assert.ok(maxAbs(web8, web32) > 0, 'int8 really ran (differs from fp32)');
  });

  it('runs the fp16 graph (float16 weights and Gemms, float32 LayerNorm/softmax) within 1% of fp32', { timeout: 120_000 }, async () => {
    const cfg = makeConfig(SMALL_PARAMS);
    const ids = Array.from({ length: cfg.totalLength }, (_, i) => (i >= cfg.l && i < cfg.l + cfg.imageLength ? (i * 5) % cfg.imageVocab : 4 + ((i * 37) % 500)));
    const web16 = Float32Array.from(await t.call('forwardLogits', SMALL_PARAMS, 3, 'fp16', ids));
    const web32 = Float32Array.from(await t.call('forwardLogits', SMALL_PARAMS, 3, 'fp32', ids));
    const scale = web32.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const err = web16.reduce((m, v, i) => Math.max(m, Math.abs(v - web32[i])), 0);
    console.log(`fp16 vs fp32 on WASM: ${err.toExponential(2)} (${(100 * err / scale).toFixed(3)} % of max |logit|)`);
    assert.ok(err <= 0.01 * scale, `fp16 vs fp32: ${err}`);
  });

  it('decodes PNG like sharp, and its PNGs decode back to the same pixels', async () => {
    const img = testImage(32);
    const png = await encodePng(img);
    const web = await t.call('decodeImage', Array.from(png));
    assert.ok(!isError(web), JSON.stringify(web));
    const decoded = web as PageImage;
    assert.deepEqual([decoded.width, decoded.height], [32, 32]);
    assert.deepEqual(Uint8Array.from(decoded.data), (await readImage(png)).data);
    const webPng = Buffer.from(await t.call('encodePng', decoded));
    assert.deepEqual((await readImage(webPng)).data, img.data, 'lossless round trip through the web encoder');
  });

  it('decodes an opaque JPEG within decoder rounding of sharp', async () => {
    const img = testImage(32);
    const jpeg = await sharp(img.data, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const web = await t.call('decodeImage', Array.from(jpeg));
    assert.ok(!isError(web), JSON.stringify(web));
    const ref = (await readImage(jpeg)).data;
    let worst = 0;
    (web as PageImage).data.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - ref[i])); });
    assert.ok(worst <= 3, `max difference to sharp's JPEG decode: ${worst}`);
  });

  it('refuses images over maxPixels from the header, and undecodable bytes, with ImageError', async () => {
    const png = await encodePng(testImage(32));
    const big = await t.call('decodeImage', Array.from(png), 1000);
    assert.ok(isError(big));
    assert.equal(big.error.code, 'IMAGE');
    assert.match(big.error.message, /32×32.*over the limit/);
    const broken = await t.call('decodeImage', Array.from(png.subarray(0, 60)));
    assert.ok(isError(broken));
    assert.equal(broken.error.code, 'IMAGE');
    const junk = await t.call('decodeImage', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.ok(isError(junk) && junk.error.code === 'IMAGE', JSON.stringify(junk));
  });

  it('reads files by HTTP Range and serves a second, offline open from the Cache API', async () => {
    const bytes = await fsp.readFile(path.join(files, 'blob.bin'));
    const before = t.server.requests.length;
    const got = await t.call('readRanges', `${t.server.url}/files/blob.bin`, [[0, 10], [99_990, 10], [4096, 5000]], 'test-ranges');
    assert.ok(!isError(got), JSON.stringify(got));
    assert.equal(got.size, bytes.length);
    assert.deepEqual(got.reads[0], Array.from(bytes.subarray(0, 10)));
    assert.deepEqual(got.reads[1], Array.from(bytes.subarray(99_990)));
    assert.deepEqual(got.reads[2], Array.from(bytes.subarray(4096, 9096)));
    assert.deepEqual(got.fromCacheOffline, Array.from(bytes.subarray(0, 10)));
    const sent = t.server.requests.slice(before).filter((r) => r.url === '/files/blob.bin');
    assert.deepEqual(sent.map((r) => [r.range, r.status]), [['bytes=0-0', 206], ['bytes=0-9', 206], ['bytes=99990-99999', 206], ['bytes=4096-9095', 206]]);
    const missing = await t.call('readRanges', `${t.server.url}/files/none.bin`, [[0, 1]], 'test-ranges');
    assert.ok(isError(missing));
    assert.equal(missing.error.code, 'DOWNLOAD');
    assert.match(missing.error.message, /not found \(HTTP 404\)/);
  });

  it('runs the golden forward and incremental cases on WebGPU (Chromium\'s SwiftShader adapter), within 1e-3', { timeout: 600_000 }, async () => {
    const lines: string[] = [];
    const sum = await runInBrowser(GOLDEN_DIR, 'rudolph-tiny/', [], (line) => lines.push(line), 'webgpu', /\/(forward|incremental)_/);
    const cases = lines.filter((l) => /\/(forward|incremental)_/.test(l));
    assert.equal(cases.length, 8, lines.join('\n'));
    for (const line of cases) {
      const err = Number(/max abs ([\d.e+-]+)/.exec(line)?.[1]);
      // GPU shaders sum in other orders than the CPU: 1e-3 here, the suite's 1e-4 on WASM
      assert.ok(err <= 1e-3, line);
    }
    assert.equal(sum.failed - cases.filter((l) => l.startsWith('FAIL')).length, 0, lines.join('\n'));
  });

  it('never mixes cached ranges of a file with ranges of a newer version', async () => {
    const file = path.join(files, 'versioned.bin');
    await fsp.writeFile(file, Buffer.alloc(50_000, 1));
    const url = `${t.server.url}/files/versioned.bin`;
    const first = await t.call('readRanges', url, [[0, 100]], 'test-versions');
    assert.ok(!isError(first), JSON.stringify(first));
    await fsp.writeFile(file, Buffer.alloc(50_000, 2));
    await fsp.utimes(file, new Date(), new Date(Date.now() + 5000));
    const mixed = await t.call('readRanges', url, [[1000, 100]], 'test-versions');
    assert.ok(isError(mixed), JSON.stringify(mixed).slice(0, 200));
    assert.equal(mixed.error.code, 'DOWNLOAD');
    assert.match(mixed.error.message, /versioned\.bin: the file changed on the server/);
  });

  it('leaves no errors in the page console', () => {
    assert.deepEqual(t.errors.filter((e) => !/404 \(Not Found\)/.test(e)), []);
  });
});
