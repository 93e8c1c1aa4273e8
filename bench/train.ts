/**
 * Training benchmark: fine-tuning steps (forward + backward + AdamW) on random weights at the
 * full sequence length of each preset, each configuration in its own process (so its peak RSS is
 * its own):
 *   350M-full-b2   full fine-tuning of 350M, batch 2
 *   350M-lora-b2   LoRA rank 8 on every layer's query_key_value + dense, batch 2
 *   1.3B-lora-b1, 2.7B-lora-b1   the big presets with LoRA, batch 1
 * Reports seconds per step (median; split into forward/backward and optimizer), the first step
 * (session builds), peak RSS, and the memory it accounts for (weights, AdamW moments, gradient
 * buffers, saved activations). BENCH_TRAIN=name,name picks configurations; BENCH_TRAIN_LAYERS=n
 * runs n-layer variants of the same widths (quick probes); BENCH_TRAIN_STEPS=n timed steps;
 * BENCH_TRAIN_ACTIVATION_GB overrides the trainer's activation-memory budget.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeConfig } from '../src/model/config.js';
import { linearModules } from '../src/model/lora.js';
import { randomWeights } from '../src/model/weights.js';
import { PRESETS, type PresetName } from '../src/presets.js';
import { DEFAULT_ACTIVATION_MEMORY, layerPlan, Trainer } from '../src/train/trainer.js';

interface Config { preset: PresetName; batch: number; lora: boolean; activationMemory?: number; steps: number }

export const CONFIGS: Record<string, Config> = {
  '350M-full-b2': { preset: '350M', batch: 2, lora: false, steps: 3 },
  '350M-lora-b2': { preset: '350M', batch: 2, lora: true, steps: 3 },
  '1.3B-lora-b1': { preset: '1.3B', batch: 1, lora: true, steps: 2 },
  '2.7B-lora-b1': { preset: '2.7B', batch: 1, lora: true, steps: 1 },
};

const mb = (bytes: number) => bytes / 2 ** 20;
const rssMb = () => process.memoryUsage().rss / 2 ** 20;

async function benchOne(c: Config, layers: number | undefined, steps: number, threads: number | undefined): Promise<Record<string, number | string>> {
  const params = { ...PRESETS[c.preset].params };
  const cfg = makeConfig({ ...params, num_layers: layers ?? params.num_layers });
  const T = cfg.totalLength;
  const budget = c.activationMemory ?? DEFAULT_ACTIVATION_MEMORY;
  const plan = layerPlan(cfg, c.batch, T, budget);
  const result: Record<string, number | string> = {
    layers: cfg.numLayers, seq_len: T, batch: c.batch, mode: c.lora ? 'lora r8 qkv+dense' : 'full',
    activation_budget_mb: mb(budget), fused_top_layers: plan.fused, layers_keeping_linear_outputs: plan.saved, layers_recomputed_whole: cfg.numLayers - plan.fused - plan.saved,
  };
  const t0 = performance.now();
  const weights = randomWeights(cfg, 7); // generated straight into the arrays the trainer feeds: one copy
  let n = 0;
  for (const w of weights.values()) n += w.length;
  result.params_m = n / 1e6;
  result.random_weights_s = (performance.now() - t0) / 1000;
  result.rss_after_weights_mb = rssMb();
  const trainer = await Trainer.create(cfg, weights, {
    lr: 1e-4, weightDecay: 0.01, clipGradNorm: 1, dropout: true, seed: 1, threads, activationMemory: budget,
    ...(c.lora ? { lora: { rank: 8, alpha: 16, dropout: 0.05, targets: ['query_key_value', 'dense'] } } : {}),
  });
  let trained = 0;
  for (const t of trainer.trainedTensors().values()) trained += t.length;
  result.trained_m = trained / 1e6;
  // what the trainer holds by design (the rest of the RSS is onnxruntime's working memory, V8, transients)
  const linearOut = linearModules(cfg).filter((m) => m.name.startsWith('transformer.layers.0.')).reduce((s, m) => s + m.out, 0);
  result.accounted_weights_mb = mb(4 * n);
  result.accounted_adamw_moments_mb = mb(8 * trained);
  result.accounted_grad_buffers_mb = mb(4 * trained);
  result.accounted_saved_activations_mb = mb(4 * c.batch * T * ((cfg.numLayers - plan.fused) * cfg.hidden + plan.saved * linearOut));
  const row = Array.from({ length: T }, (_, i) => (i < cfg.l || i >= cfg.l + cfg.imageLength ? 5 + (i % 100) : i % cfg.imageVocab));
  const ids = Array.from({ length: c.batch }, () => row).flat();
  const tb = performance.now();
  await trainer.step({ ids, batch: c.batch }); // first step: session builds, allocations
  result.first_step_s = (performance.now() - tb) / 1000;
  const run: number[] = [], apply: number[] = [];
  for (let s = 0; s < steps; s++) {
    const ta = performance.now();
    await trainer.accumulate({ ids, batch: c.batch });
    const tm = performance.now();
    trainer.apply();
    run.push((tm - ta) / 1000);
    apply.push((performance.now() - tm) / 1000);
  }
  // medians: the machine is shared and noisy
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  if (steps > 0) {
    result.step_s = median(run.map((r, i) => r + apply[i]));
    result.step_min_s = Math.min(...run.map((r, i) => r + apply[i]));
    result.forward_backward_s = median(run);
    result.adamw_clip_s = median(apply);
  }
  result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  await trainer.release();
  return result;
}

const env = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);

if (process.argv[2] === '--one') {
  const c = CONFIGS[process.argv[3]];
  const act = env('BENCH_TRAIN_ACTIVATION_GB');
  const res = await benchOne({ ...c, activationMemory: act !== undefined ? act * 2 ** 30 : c.activationMemory }, env('BENCH_TRAIN_LAYERS'), env('BENCH_TRAIN_STEPS') ?? c.steps, 2);
  console.log(JSON.stringify(res));
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const names = process.env.BENCH_TRAIN ? process.env.BENCH_TRAIN.split(',') : Object.keys(CONFIGS);
  const out: Record<string, unknown> = {};
  for (const name of names) {
    if (!CONFIGS[name]) throw new Error(`unknown training configuration ${name}; known: ${Object.keys(CONFIGS).join(', ')}`);
    console.error(`  train ${name}…`);
    const text = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--one', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
    const res = JSON.parse(text.trim().split('\n').pop()!) as Record<string, number>;
    for (const [k, v] of Object.entries(res)) out[`${name}.${k}`] = v;
  }
  const full = out['350M-full-b2.step_s'], lora = out['350M-lora-b2.step_s'];
  if (typeof full === 'number' && typeof lora === 'number') out['350M.lora_over_full_step'] = lora / full;
  console.log(JSON.stringify(out, null, 1));
}
