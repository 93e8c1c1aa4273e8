/**
 * What the browser tests run inside the page: the library through its browser entry, plus small
 * drivers the Node side calls with `page.evaluate(() => rudolphTest.x(...))`. Bundled by esbuild.
 */
import { generateText } from '../../src/tasks/generate-text.js';
import { generateImageTokens } from '../../src/tasks/image-tokens.js';
import { IdListTokenizer, makeConfig, RudolphModel, randomWeights, runtime, type RudolphParams } from '../../src/web.js';

export interface TokenRun { imageIds: number[][]; textIds: string[]; seedUsed: number }

/** Seeded random model, then seeded image-token and text generation: the ids Node must reproduce. */
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

function info() {
  return { runtime: runtime().name, onnxruntime: runtime().onnxruntimeVersion, isolated: globalThis.crossOriginIsolated, cores: navigator.hardwareConcurrency };
}

const api = { tokensFromRandom, info };
export type RudolphTestApi = typeof api;
(globalThis as unknown as { rudolphTest: RudolphTestApi }).rudolphTest = api;
(globalThis as unknown as { rudolphReady: boolean }).rudolphReady = true;
