/**
 * The decode benchmark both runtimes run (the browser bench's page and its Node half): the
 * 350M preset with seeded random weights generated one tensor at a time while the graph is
 * serialized (as the browser loader streams a checkpoint), session build time, then cached
 * decoding of image tokens at each batch size (last-position logits only). Core modules only.
 */
import type { LinearPrecision, QuantOptions } from '../src/model/graph-context.js';
import { buildRudolphGraph } from '../src/model/rudolph-graph.js';
import { RudolphModel, runtimeQuant } from '../src/model/rudolph-model.js';
import { parameterSpecs } from '../src/model/weights.js';
import type { LazyWeight } from '../src/onnx/graph.js';
import { presetConfig } from '../src/presets.js';
import { Rng } from '../src/util/random.js';

export interface DecodeBenchOptions { precision: LinearPrecision; quant?: QuantOptions; threads: number; decodeTokens: number; batches: number[]; executionProviders?: ('webgpu' | 'wasm' | 'cpu')[] }

/** What the browser bench's page offers its Node driver. */
export interface BrowserBenchApi {
  decode(opts: DecodeBenchOptions): Promise<Record<string, number | string | boolean>>;
  /** JS heap + WebAssembly memory as the browser measures them (cross-origin isolated pages only) */
  memory(): Promise<number | null>;
}

/** GPT-scale uniform weights (std 0.02), LayerNorms 1/0, biases 0; each tensor from its own seed. */
function lazyRandomWeights(cfg: ReturnType<typeof presetConfig>, seed: number): Map<string, LazyWeight> {
  const out = new Map<string, LazyWeight>();
  const bound = 0.02 * Math.sqrt(3);
  parameterSpecs(cfg).forEach((spec, i) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    out.set(spec.name, {
      byteLength: 4 * n,
      load: async () => {
        const data = new Float32Array(n);
        const isLn = /layernorm|to_logits\.0/.test(spec.name);
        if (isLn && spec.name.endsWith('.weight')) data.fill(1);
        else if (!isLn && !spec.name.endsWith('.bias')) new Rng(seed * 1000 + i).fillUniform(data, -bound, bound);
        return data;
      },
    });
  });
  return out;
}

export async function benchDecode(opts: DecodeBenchOptions): Promise<Record<string, number | string | boolean>> {
  const cfg = presetConfig('350M');
  const t0 = performance.now();
  const lazy = lazyRandomWeights(cfg, 7);
  const quant = runtimeQuant(opts.quant, opts.executionProviders);   // each runtime's own int8 kernel unless INT8_KERNEL says
  let graph;
  let streamed = true;
  try {
    graph = buildRudolphGraph(cfg, lazy, { precision: opts.precision, quant });
  } catch (e) {
    // a graph-context whose quantiser needs the weights in memory: generate them all first
    if (!/in memory/.test((e as Error).message)) throw e;
    streamed = false;
    const eager = new Map<string, Float32Array>();
    for (const [name, w] of lazy) eager.set(name, (await w.load()) as Float32Array);
    graph = buildRudolphGraph(cfg, eager, { precision: opts.precision, quant });
  }
  const model = await RudolphModel.fromGraph(cfg, graph, { precision: opts.precision, threads: opts.threads, executionProviders: opts.executionProviders });
  const result: Record<string, number | string | boolean> = {
    preset: '350M', precision: opts.precision, quant: JSON.stringify(quant), threads: opts.threads, weights_streamed: streamed, session_build_s: (performance.now() - t0) / 1000,
  };
  try {
    const ids = Array.from({ length: cfg.l }, (_, i) => 5 + (i % 100));
    for (const batch of opts.batches) {
      const cache = model.newCache(batch, cfg.l + cfg.imageLength);
      const left: number[] = [];
      for (let b = 0; b < batch; b++) left.push(...ids);
      await model.step(cache, left);
      await model.step(cache, new Array(batch).fill(1)); // warm-up of the one-token shape
      const s = performance.now();
      for (let t = 0; t < opts.decodeTokens; t++) await model.step(cache, new Array(batch).fill((t * 37) % 8192));
      const secs = (performance.now() - s) / 1000;
      result[`decode_b${batch}_tokens_per_s`] = (opts.decodeTokens * batch) / secs;
      result[`decode_b${batch}_steps_per_s`] = opts.decodeTokens / secs;
    }
  } finally {
    await model.release();
  }
  return result;
}
