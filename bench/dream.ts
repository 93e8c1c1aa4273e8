/**
 * dream on the 350M preset with random weights (issue 4): 8 candidates generated at batch 8 with
 * the KV cache (last-position logits only), reranked by the text, best one decoded by a
 * full-config Sber-VQGAN with random weights.
 */
import path from 'node:path';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';
import { dream } from '../src/tasks/dream.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import type { Progress } from '../src/util/progress.js';
import { randomVqganStateDict, SBER_VQGAN_CONFIG, Vqgan } from '../src/vqgan/index.js';
import { TOKENIZER_DIR } from '../test/helpers.js';

export async function benchDream(candidates = 8, batchSize = 8): Promise<Record<string, number | string>> {
  const cfg = presetConfig('350M');
  const model = await RudolphModel.fromWeights(cfg, randomWeights(cfg, 5));
  const vqgan = await Vqgan.fromWeights(SBER_VQGAN_CONFIG, randomVqganStateDict(SBER_VQGAN_CONFIG, 3));
  const tokenizer = (await YttmTokenizer.fromFile(path.join(TOKENIZER_DIR, 'bpe-16384.model'))).asTextTokenizer();
  const stages = new Map<string, number>();
  let last = performance.now();
  let stage = '';
  const onProgress = (p: Progress) => {
    const now = performance.now();
    if (stage) stages.set(stage, (stages.get(stage) ?? 0) + (now - last));
    stage = `${p.task}:${p.stage}`;
    last = now;
  };
  const t0 = performance.now();
  const res = await dream({ model, cfg, tokenizer, vqgan, batchSize }, { text: 'рыжий кот на подоконнике', candidates, images: 1, seed: 1, onProgress });
  const total = (performance.now() - t0) / 1000;
  const gen = (stages.get('generateImageTokens:image tokens') ?? 0) / 1000;
  await model.release();
  await vqgan.release();
  return {
    preset: '350M', candidates, batch_size: batchSize,
    total_s: total,
    generate_s: gen,
    generate_tokens_per_s: (candidates * cfg.imageLength) / gen,
    rerank_s: (stages.get('rankImages:scoring') ?? 0) / 1000,
    images: res.images.length,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchDream(), null, 1));
}
