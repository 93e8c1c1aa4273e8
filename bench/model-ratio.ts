/**
 * Batch-1 decode speed of fp32, int8 and q4 interleaved in one process (issue 16's "q4 ≥ 3× fp32
 * in the same run"): the three sessions take turns decoding 32 tokens, for several rounds, so a
 * load that drifts on a shared machine hits all three alike. Reports the median tokens/s of each
 * and the median and range of the per-round ratios to fp32.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LinearPrecision } from '../src/model/graph-context.js';
import { buildRudolphGraph } from '../src/model/rudolph-graph.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';
import { saveGraph } from '../src/runtime/node/graph-files.js';

const PRECISIONS: LinearPrecision[] = ['fp32', 'int8', 'q4'];

async function rate(model: RudolphModel, tokens: number): Promise<number> {
  const cache = model.newCache(1, 320);
  await model.step(cache, Array.from({ length: 64 }, (_, i) => 5 + i));
  const t0 = performance.now();
  for (let t = 0; t < tokens; t++) await model.step(cache, [t % 8192]);
  return tokens / ((performance.now() - t0) / 1000);
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

export async function benchModelRatio(rounds = 7, tokens = 32): Promise<Record<string, number>> {
  const cfg = presetConfig('350M');
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-ratio-'));
  const models = new Map<LinearPrecision, RudolphModel>();
  try {
    {
      const weights = randomWeights(cfg, 7);
      for (const p of PRECISIONS) await saveGraph(buildRudolphGraph(cfg, weights, { precision: p }), path.join(root, p));
      weights.clear();
    }
    for (const p of PRECISIONS) models.set(p, await RudolphModel.fromGraphFile(cfg, path.join(root, p, 'model.onnx'), { precision: p }));
    const speeds = new Map<LinearPrecision, number[]>(PRECISIONS.map((p) => [p, []]));
    for (let r = 0; r < rounds; r++) for (const p of PRECISIONS) speeds.get(p)!.push(await rate(models.get(p)!, tokens));
    const out: Record<string, number> = { rounds, tokens_per_round: tokens };
    for (const p of PRECISIONS) out[`decode_b1_${p}_tokens_per_s`] = median(speeds.get(p)!);
    for (const p of PRECISIONS.slice(1)) {
      const ratios = speeds.get(p)!.map((v, i) => v / speeds.get('fp32')![i]);
      out[`${p}_vs_fp32`] = median(ratios);
      out[`${p}_vs_fp32_min`] = Math.min(...ratios);
      out[`${p}_vs_fp32_max`] = Math.max(...ratios);
    }
    return out;
  } finally {
    for (const m of models.values()) await m.release();
    await fsp.rm(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchModelRatio(), null, 1));
}
