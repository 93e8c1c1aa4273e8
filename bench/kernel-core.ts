/**
 * One linear layer of the 350M (1024 → 4096, batch 1) in each kernel the precisions use, a chain
 * of 100 LayerNorms (what one node costs whatever it does) and the feeding of 48 KV-cache-sized
 * inputs (what a decoding step hands onnxruntime) — the same graphs on whichever runtime is
 * registered, so the browser bench's page and its Node half time identical work. Core modules only.
 */
import { quantizeBlockwise, quantizeLinearWeight } from '../src/model/quantize.js';
import { attr, GraphBuilder } from '../src/onnx/graph.js';
import { runtime } from '../src/runtime/current.js';
import type { Tensor } from '../src/runtime/types.js';
import { Rng } from '../src/util/random.js';

/** Milliseconds per run (best of `rounds` means over `reps` runs, after one warm-up). */
async function timeGraph(g: GraphBuilder, feeds: Record<string, Tensor>, threads: number, reps: number, rounds = 3): Promise<number> {
  const session = await runtime().createSession(g.toBytes(), { threads });
  try {
    await session.run(feeds);
    let best = Infinity;
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      for (let i = 0; i < reps; i++) await session.run(feeds);
      best = Math.min(best, (performance.now() - t) / reps);
    }
    return best;
  } finally {
    await session.release();
  }
}

export async function benchKernels(threads: number): Promise<Record<string, number>> {
  const K = 1024, N = 4096;
  const w = new Float32Array(N * K);
  new Rng(1).fillUniform(w, -0.035, 0.035);
  const xData = new Float32Array(K);
  new Rng(2).fillUniform(xData, -1, 1);
  const x = { x: runtime().tensor('float32', xData, [1, K]) };
  const bias = (g: GraphBuilder) => g.weight('b', 'float32', [N], new Float32Array(N));
  const out: Record<string, number> = {};

  const linear = async (name: string, make: (g: GraphBuilder, x: ReturnType<GraphBuilder['input']>) => ReturnType<GraphBuilder['op']>) => {
    const g = new GraphBuilder(name);
    g.useOpset('com.microsoft', 1);
    const xi = g.input('x', 'float32', [1, K]);
    g.output(make(g, xi), 'y', 'float32', [1, N]);
    out[`${name}_ms`] = await timeGraph(g, x, threads, 20);
  };
  await linear('gemm_fp32', (g, xi) => g.op('Gemm', [xi, g.weight('w', 'float32', [N, K], w), bias(g)], { transB: attr.int(1) }));
  const q = quantizeLinearWeight(w, N, K);
  await linear('dynamic_quantize_matmul_int8', (g, xi) => g.op('DynamicQuantizeMatMul', [
    xi, g.constant('q', 'uint8', [K, N], q.data), g.constant('s', 'float32', [N], q.scale), g.constant('z', 'uint8', [N], q.zeroPoint), bias(g),
  ], {}, 'com.microsoft'));
  for (const [bits, accuracy] of [[8, 4], [8, 0], [4, 4]] as const) {
    const bs = 128, blocks = K / bs, b = quantizeBlockwise(w, N, K, bits, bs);
    await linear(`matmul_nbits${bits}_accuracy${accuracy}`, (g, xi) => g.op('MatMulNBits', [
      xi, g.constant('q', 'uint8', [N, blocks, (bs * bits) / 8], b.data), g.constant('s', 'float32', [N * blocks], b.scales),
      g.constant('z', 'uint8', [N * (bits === 4 ? Math.ceil(blocks / 2) : blocks)], b.zeroPoints), null, bias(g),
    ], { K: attr.int(K), N: attr.int(N), bits: attr.int(bits), block_size: attr.int(bs), accuracy_level: attr.int(accuracy) }, 'com.microsoft'));
  }
  {
    const g = new GraphBuilder('layernorms');
    let v = g.input('x', 'float32', [1, K]);
    const scale = g.weight('s', 'float32', [K], new Float32Array(K).fill(1)), shift = g.weight('b', 'float32', [K], new Float32Array(K));
    for (let i = 0; i < 100; i++) v = g.op('LayerNormalization', [v, scale, shift], { axis: attr.int(-1), epsilon: attr.float(1e-5) });
    g.output(v, 'y', 'float32', [1, K]);
    out.layernorm_per_node_us = (await timeGraph(g, x, threads, 20)) * 10;
  }
  {
    // 24 layers × (keys, values) of [B=1, H=16, d=64, 320 slots]: 63 MB, each reduced to one number
    const g = new GraphBuilder('feeds');
    const feeds: Record<string, Tensor> = {};
    let acc = null as ReturnType<GraphBuilder['op']> | null;
    for (let i = 0; i < 48; i++) {
      const v = g.input(`c${i}`, 'float32', [16, 64, 320]);
      feeds[`c${i}`] = runtime().tensor('float32', new Float32Array(16 * 64 * 320), [16, 64, 320]);
      const s = g.op('ReduceMax', [v, g.int64s([0, 1, 2])], { keepdims: attr.int(0) });
      acc = acc ? g.op('Max', [acc, s]) : s;
    }
    g.output(acc!, 'y', 'float32', []);
    out.feed_kv_cache_320_slots_ms = await timeGraph(g, feeds, threads, 5);
  }
  return out;
}
