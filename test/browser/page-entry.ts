/**
 * What the browser tests run inside the page: the library through its browser entry, plus small
 * drivers the Node side calls with `page.evaluate(() => rudolphTest.x(...))`. Bundled by esbuild.
 */
import { generateText } from '../../src/tasks/generate-text.js';
import { generateImageTokens } from '../../src/tasks/image-tokens.js';
import { openBrowserCache } from '../../src/runtime/web/cache.js';
import { openUrlBytes } from '../../src/runtime/web/byte-source.js';
import { decodeImageWeb, encodePngWeb } from '../../src/runtime/web/image-codec.js';
import type { PageError, PageImage, PageInfo, RangeReads, RudolphTestApi, TokenRun } from './api.js';
import { IdListTokenizer, makeConfig, RudolphModel, randomWeights, runtime, type RudolphParams } from '../../src/web.js';

async function tokensFromRandom(params: RudolphParams, weightSeed: number, taskSeed: number): Promise<TokenRun> {
  const cfg = makeConfig(params);
  const model = await RudolphModel.fromWeights(cfg, randomWeights(cfg, weightSeed), {});
  try {
    const ctx = { model, cfg, tokenizer: new IdListTokenizer(cfg.textVocab), batchSize: 2 };
    const img = await generateImageTokens(ctx, { text: '5 17 42', count: 3, topK: 8, topP: 0.9, temperature: 1, seed: taskSeed });
    const txt = await generateText(ctx, { template: '7 9', count: 3, topK: 8, topP: 0.9, temperature: 1, seed: taskSeed });
    return { imageIds: img.codebooks.map((c) => Array.from(c)), textIds: txt.texts.map((t) => t.text), seedUsed: taskSeed };
  } finally {
    await model.release();
  }
}

async function forwardLogits(params: RudolphParams, weightSeed: number, precision: 'fp32' | 'int8' | 'fp16', ids: number[], device: 'wasm' | 'webgpu' = 'wasm'): Promise<number[]> {
  const cfg = makeConfig(params);
  const model = await RudolphModel.fromWeights(cfg, randomWeights(cfg, weightSeed), { precision, executionProviders: device === 'webgpu' ? ['webgpu'] : [] });
  try {
    return Array.from((await model.forward(ids, 1)).logits!);
  } finally {
    await model.release();
  }
}

async function info(): Promise<PageInfo> {
  return { runtime: runtime().name, onnxruntime: runtime().onnxruntimeVersion, isolated: globalThis.crossOriginIsolated, cores: navigator.hardwareConcurrency };
}

function asError(e: unknown): PageError {
  const err = e as Error & { code?: string };
  return { error: { name: err.name, code: err.code, message: err.message } };
}

async function decodeImage(bytes: number[], maxPixels?: number): Promise<PageImage | PageError> {
  try {
    const img = await decodeImageWeb(Uint8Array.from(bytes), { maxPixels, name: 'upload' });
    return { width: img.width, height: img.height, data: Array.from(img.data) };
  } catch (e) {
    return asError(e);
  }
}

async function encodePng(image: PageImage): Promise<number[]> {
  return Array.from(await encodePngWeb({ width: image.width, height: image.height, data: Uint8Array.from(image.data) }));
}

async function readRanges(url: string, ranges: [number, number][], cacheName: string): Promise<RangeReads | PageError> {
  try {
    const cache = await openBrowserCache(cacheName);
    const src = await openUrlBytes(url, { cache });
    const reads: number[][] = [];
    for (const [offset, length] of ranges) reads.push(Array.from(await src.read(offset, length)));
    let fromCacheOffline: number[] | PageError;
    try {
      const again = await openUrlBytes(url, { cache, offline: true });
      fromCacheOffline = Array.from(await again.read(ranges[0][0], ranges[0][1]));
    } catch (e) {
      fromCacheOffline = asError(e);
    }
    return { size: src.size, reads, fromCacheOffline };
  } catch (e) {
    return asError(e);
  }
}

const api: RudolphTestApi = { tokensFromRandom, forwardLogits, info, decodeImage, encodePng, readRanges };
(globalThis as unknown as { rudolphTest: RudolphTestApi }).rudolphTest = api;
(globalThis as unknown as { rudolphReady: boolean }).rudolphReady = true;
