/**
 * Training benchmark: one fine-tuning step (forward + backward + AdamW) of the 350M preset with
 * random weights, full sequence length 384, at batch 1 and 2. Reports seconds per step (and the
 * split between the onnxruntime run and the optimizer update), session build time, peak RSS.
 * BENCH_TRAIN_LAYERS=n runs an n-layer variant of the same widths (quick probes).
 */
import { makeConfig } from '../src/model/config.js';
import { randomWeights } from '../src/model/weights.js';
import { PRESETS } from '../src/presets.js';
import { Trainer } from '../src/train/trainer.js';

export interface TrainBenchOptions { batches?: number[]; steps?: number; layers?: number; threads?: number }

export async function benchTrain(opts: TrainBenchOptions = {}): Promise<Record<string, number>> {
  const params = { ...PRESETS['350M'].params };
  const cfg = makeConfig({ ...params, num_layers: opts.layers ?? params.num_layers });
  const result: Record<string, number> = { layers: cfg.numLayers, seq_len: cfg.totalLength };
  const t0 = performance.now();
  const weights = randomWeights(cfg, 7);
  let n = 0;
  for (const w of weights.values()) n += w.length;
  result.params_m = n / 1e6;
  const trainer = await Trainer.create(cfg, weights, { lr: 1e-4, weightDecay: 0.01, clipGradNorm: 1, dropout: true, seed: 1, threads: opts.threads });
  const T = cfg.totalLength;
  const row = Array.from({ length: T }, (_, i) => (i < cfg.l || i >= cfg.l + cfg.imageLength ? 5 + (i % 100) : i % cfg.imageVocab));
  result.random_weights_s = (performance.now() - t0) / 1000;
  const steps = opts.steps ?? 3;
  for (const batch of opts.batches ?? [1, 2]) {
    const ids = Array.from({ length: batch }, () => row).flat();
    const tb = performance.now();
    await trainer.step({ ids, batch }); // first step: session build (once), allocations
    result[`b${batch}_first_step_s`] = (performance.now() - tb) / 1000;
    const run: number[] = [], apply: number[] = [];
    for (let s = 0; s < steps; s++) {
      const ta = performance.now();
      await trainer.accumulate({ ids, batch });
      const tm = performance.now();
      trainer.apply();
      run.push((tm - ta) / 1000);
      apply.push((performance.now() - tm) / 1000);
    }
    // medians: the machine is shared and noisy
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    result[`b${batch}_step_s`] = median(run.map((r, i) => r + apply[i]));
    result[`b${batch}_step_min_s`] = Math.min(...run.map((r, i) => r + apply[i]));
    result[`b${batch}_forward_backward_s`] = median(run);
    result[`b${batch}_adamw_clip_s`] = median(apply);
  }
  result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  await trainer.release();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const layers = process.env.BENCH_TRAIN_LAYERS ? Number(process.env.BENCH_TRAIN_LAYERS) : undefined;
  console.log(JSON.stringify(await benchTrain({ layers, threads: 2 }), null, 1));
}
