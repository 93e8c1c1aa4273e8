/**
 * dream on the 350M preset with random weights (issues 4, 16): 8 candidates generated at batch 8
 * with the KV cache (last-position logits only), reranked by the text, best one decoded by a
 * full-config Sber-VQGAN with random weights. The model is opened from a converted graph folder
 * at the given precision (as fromPretrained does). Then the same rerank is timed twice more: with
 * the pad-only left segment run once and shared (what rankImages does) and with every row run in
 * full (before issue 16).
 *
 *   node --import tsx bench/dream.ts [--precision fp32|int8|q4]
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { LinearPrecision } from '../src/model/graph-context.js';
import { buildRudolphGraph } from '../src/model/rudolph-graph.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';
import { saveGraph } from '../src/runtime/node/graph-files.js';
import type { TaskContext } from '../src/tasks/context.js';
import { dream } from '../src/tasks/dream.js';
import { encodeSegment, TextFit } from '../src/tasks/inputs.js';
import { spanPerplexities } from '../src/tasks/perplexity.js';
import { rankImages } from '../src/tasks/rank.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { concat } from '../src/util/arrays.js';
import type { Progress } from '../src/util/progress.js';
import { randomVqganStateDict, SBER_VQGAN_CONFIG, Vqgan } from '../src/vqgan/index.js';
import { TOKENIZER_DIR } from '../test/helpers.js';

export async function benchDream(precision: LinearPrecision = 'fp32', candidates = 8, batchSize = 8): Promise<Record<string, number | string>> {
  const cfg = presetConfig('350M');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-dream-'));
  try {
    await saveGraph(buildRudolphGraph(cfg, randomWeights(cfg, 5), { precision }), dir);
    const model = await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), { precision });
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
    const ctx: TaskContext = { model, cfg, tokenizer, vqgan, batchSize };
    const text = 'рыжий кот на подоконнике';
    const t0 = performance.now();
    const res = await dream(ctx, { text, candidates, images: 1, seed: 1, onProgress });
    const total = (performance.now() - t0) / 1000;
    const gen = (stages.get('generateImageTokens:image tokens') ?? 0) / 1000;

    // the rerank again, shared left segment vs full rows (same candidates)
    const images = res.images.map((im) => ({ ids: im.codebook }));
    const codes = Array.from({ length: candidates }, (_, i) => images[i % images.length]);
    let t = performance.now();
    const shared = await rankImages(ctx, { text, images: codes });
    const sharedS = (performance.now() - t) / 1000;
    const left = encodeSegment(ctx, '', cfg.l, '<LT_I2T>', new TextFit(false));
    const right = encodeSegment(ctx, text, cfg.r, '<RT_I2T>', new TextFit(false));
    const T = cfg.totalLength;
    t = performance.now();
    const [full] = await spanPerplexities(ctx, codes.map((c) => concat(left, c.ids, right)), [{ from: T - cfg.r, to: T - 1, kind: 'text', ignoreZero: true }, { from: cfg.l, to: cfg.l + cfg.imageLength - 1, kind: 'image', ignoreZero: false }]);
    const fullS = (performance.now() - t) / 1000;
    const diff = Math.max(...shared.pplText.map((v, i) => Math.abs(v / full[i] - 1)));
    await model.release();
    await vqgan.release();
    return {
      preset: '350M', precision, candidates, batch_size: batchSize,
      total_s: total,
      generate_s: gen,
      generate_tokens_per_s: (candidates * cfg.imageLength) / gen,
      rerank_s: (stages.get('rankImages:scoring') ?? 0) / 1000,
      rerank_shared_left_s: sharedS,
      rerank_full_rows_s: fullS,
      rerank_shared_vs_full_rel_diff: diff,
      images: res.images.length,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { precision: { type: 'string', default: 'fp32' } } });
  console.log(JSON.stringify(await benchDream(values.precision as LinearPrecision), null, 1));
}
