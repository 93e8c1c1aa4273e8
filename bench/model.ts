/**
 * Model benchmark (issue 2): random 350M-v2 weights built in memory; session build time,
 * full forward 1×384, cached decode of 256 image tokens at batch 1 and 8 (last-position
 * logits only), peak RSS.
 */
import type { LinearPrecision } from '../src/model/graph-context.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';

export interface ModelBenchOptions { precision?: LinearPrecision; decodeTokens?: number; batches?: number[]; threads?: number }

export async function benchModel(opts: ModelBenchOptions = {}): Promise<Record<string, number | string>> {
  const cfg = presetConfig('350M');
  const decodeTokens = opts.decodeTokens ?? 256;
  const t0 = performance.now();
  const weights = randomWeights(cfg, 7);
  const tWeights = performance.now();
  const model = await RudolphModel.fromWeights(cfg, weights, { precision: opts.precision, threads: opts.threads });
  weights.clear();
  const tBuild = performance.now();
  const result: Record<string, number | string> = {
    preset: '350M', precision: opts.precision ?? 'fp32',
    random_weights_s: (tWeights - t0) / 1000,
    session_build_s: (tBuild - tWeights) / 1000,
  };

  const ids = Array.from({ length: 384 }, (_, i) => (i < cfg.l || i >= cfg.l + cfg.imageLength ? 5 + (i % 100) : i % 8192));
  await model.forward(ids.slice(0, 16), 1, { select: 'last' }); // warm-up
  const times: number[] = [];
  for (let rep = 0; rep < 3; rep++) {
    const s = performance.now();
    await model.forward(ids, 1);
    times.push((performance.now() - s) / 1000);
  }
  times.sort((a, b) => a - b);
  result.forward_1x384_s = times[1];
  result.forward_1x384_min_s = times[0];

  for (const batch of opts.batches ?? [1, 8]) {
    const cache = model.newCache(batch, cfg.l + cfg.imageLength);
    const left: number[] = [];
    for (let b = 0; b < batch; b++) left.push(...ids.slice(0, cfg.l));
    await model.step(cache, left);
    const s = performance.now();
    for (let t = 0; t < decodeTokens; t++) {
      await model.step(cache, new Array(batch).fill(t % 8192));
    }
    const secs = (performance.now() - s) / 1000;
    result[`decode_b${batch}_tokens_per_s`] = (decodeTokens * batch) / secs;
    result[`decode_b${batch}_steps_per_s`] = decodeTokens / secs;
  }
  result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  await model.release();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const precision = (process.argv.includes('--int8') ? 'int8' : 'fp32') as LinearPrecision;
  console.log(JSON.stringify(await benchModel({ precision, decodeTokens: Number(process.env.DECODE_TOKENS ?? 256) }), null, 1));
}
