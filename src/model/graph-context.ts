/**
 * What every component's graph function needs: the builder, the config, the weights, and
 * how linear layers and embedding tables are realised at the chosen precision:
 *  - fp32: Gemm on the float32 weights;
 *  - fp16: float16 weights and matmuls (the input cast to float16, the output back to float32);
 *    LayerNorm, softmax and log-sum-exp stay float32 (for GPUs; on CPU onnxruntime upcasts);
 *  - int8: block-wise 8-bit weights in com.microsoft MatMulNBits (int8 compute), or per-channel
 *    uint8 weights in DynamicQuantizeMatMul;
 *  - q4: block-wise 4-bit weights in com.microsoft MatMulNBits (int8 compute: accuracy_level 4),
 *    the logits head at 8 bits.
 * int8 and q4 keep the two big embedding tables as int8 rows with a per-row scale.
 */
import { attr, isLazy, type GraphBuilder, type LazyWeight, type Value, type WeightData } from '../onnx/graph.js';
import type { OnnxDType } from '../onnx/proto.js';
import type { Int8Kernel } from '../runtime/types.js';
import { floatToHalfBits, halfToFloat } from '../tensor.js';
import type { RudolphConfig } from './config.js';
import { parameterSpecs } from './weights.js';
import { quantizeBlockwise, quantizeLinearWeight, quantizeRows } from './quantize.js';

export const PRECISIONS = ['fp32', 'fp16', 'int8', 'q4'] as const;
export type LinearPrecision = (typeof PRECISIONS)[number];
/** One line for CLI help: what each precision is for. */
export const PRECISION_HELP = 'weights: int8 (8-bit blocks: 3.5× smaller, ~2× faster decoding, near-lossless), q4 (4-bit blocks: fastest, small quality cost), fp32 (exact, as the official code), fp16 (for --device cuda; CPUs upcast it)';

/** How a quantised linear layer is computed. */
export type LinearKernel = 'fp32' | 'fp16' | 'dq-int8' | 'nbits8' | 'nbits4';

/** Details of the quantised precisions (defaults: the measured choice, see README "Precisions"). */
export interface QuantOptions {
  /** kernel of int8 linears: MatMulNBits with 8 bits (default; a runtime may prefer another: Runtime.int8Kernel) or DynamicQuantizeMatMul (per-channel u8) */
  int8Kernel?: Int8Kernel;
  /** MatMulNBits block size along the input dim (default 128) */
  blockSize?: number;
  /** the logits head (to_logits.1) under q4 (default nbits8: 8 bits) */
  q4Head?: LinearKernel;
  /** embedding tables under int8/q4: int8 rows (default) or fp32 */
  embeddings?: 'int8' | 'fp32';
  /** MatMulNBits accuracy_level: 4 = int8 compute (AVX-512 VNNI / AVX2), 0 = float compute (default 4) */
  accuracyLevel?: number;
  /**
   * fp16 linears: 'half' (default) = float16 weights and Gemm, for GPU execution providers;
   * 'rounded' = the same numerics in float32 ops (weights, inputs and outputs rounded to float16
   * through casts), for measuring fp16 on CPU, where onnxruntime upcasts float16 Gemms to float32
   * and drops the activation roundings with the casts around them.
   */
  fp16Compute?: 'half' | 'rounded';
}

export const DEFAULT_QUANT: Required<QuantOptions> = { int8Kernel: 'nbits8', blockSize: 128, q4Head: 'nbits8', embeddings: 'int8', accuracyLevel: 4, fp16Compute: 'half' };

/** Parameter data by official name: in memory, or loaded when the graph is saved (conversion). */
export type GraphWeights = ReadonlyMap<string, Float32Array | LazyWeight>;

export interface GraphContext {
  g: GraphBuilder;
  cfg: RudolphConfig;
  weights: GraphWeights;
  precision: LinearPrecision;
  quant?: QuantOptions;
  /** Values made for the dynamic batch and token dims: [B, k] as an int64 shape tensor. */
  batchTokens: Value;
  /** Training graphs only: dropout with probability p where the official model has it. Unset: none. */
  dropout?: DropoutHook;
  /** Sees every linear layer's input and output and returns the output to use (LoRA adapters). Unset: none. */
  adapter?: LinearAdapter;
}

/**
 * Appends dropout with drop probability `p` on `x` to `g` (training graphs). `site` names the
 * dropout point (e.g. `transformer.layers.3.attention.probs`), so a seeded implementation can
 * give every point its own masks.
 */
export type DropoutHook = (g: GraphBuilder, x: Value, p: number, site: string) => Value;

/** `x` after the context's dropout, or `x` itself when the graph has none. */
export function maybeDropout(ctx: GraphContext, x: Value, p: number, site: string): Value {
  return ctx.dropout && p > 0 ? ctx.dropout(ctx.g, x, p, site) : x;
}

/** y = linear(x) of the layer `prefix` → the value the model uses instead (e.g. y + LoRA update). */
export type LinearAdapter = (ctx: GraphContext, x: Value, prefix: string, y: Value) => Value;

const shapeCache = new WeakMap<GraphBuilder, Map<string, number[]>>();

/** The graph value of parameter `name`, declared on first use. */
export function param(ctx: GraphContext, name: string): Value {
  let shapes = shapeCache.get(ctx.g);
  if (!shapes) {
    shapes = new Map(parameterSpecs(ctx.cfg).map((s) => [s.name, s.shape]));
    shapeCache.set(ctx.g, shapes);
  }
  const declared = declaredParams.get(ctx.g) ?? new Map<string, Value>();
  declaredParams.set(ctx.g, declared);
  const hit = declared.get(name);
  if (hit) return hit;
  const data = ctx.weights.get(name);
  const shape = shapes.get(name);
  if (!data || !shape) throw new Error(`graph: unknown parameter ${name}`);
  const v = ctx.g.weight(name, 'float32', shape, data);
  declared.set(name, v);
  return v;
}
const declaredParams = new WeakMap<GraphBuilder, Map<string, Value>>();

const FLOAT = 1, FLOAT16 = 10;

function shapeOf(ctx: GraphContext, name: string): number[] {
  const shape = parameterSpecs(ctx.cfg).find((s) => s.name === name)?.shape;
  if (!shape || !ctx.weights.has(name)) throw new Error(`graph: unknown parameter ${name}`);
  return shape;
}

/**
 * Weights derived from parameter `name` (quantised, cast): made now when the parameter is in
 * memory, or when the graph is saved when it is lazy (streaming conversion: one tensor at a time).
 * Returns a declarer of constants picked from the derived value.
 */
function derive<T>(ctx: GraphContext, name: string, make: (w: Float32Array) => T) {
  const w = ctx.weights.get(name)!;
  let eager: T | null = null;
  let pending: Promise<T> | null = null;
  let uses = 0;
  return (hint: string, dtype: OnnxDType, dims: number[], pick: (t: T) => WeightData): Value => {
    let data: WeightData | LazyWeight;
    if (!isLazy(w)) {
      eager ??= make(w);
      data = pick(eager);
    } else {
      uses++;
      const bytes = dims.reduce((a, b) => a * b, 1) * (dtype === 'float32' ? 4 : dtype === 'float16' ? 2 : 1);
      data = {
        byteLength: bytes,
        load: async () => {
          pending ??= w.load().then((d) => make(d as Float32Array));
          const out = pick(await pending);
          if (--uses === 0) pending = null; // every piece written: let the tensor go
          return out;
        },
      };
    }
    return ctx.g.constant(`${name}.${hint}`, dtype, dims, data);
  };
}

function roundToHalf(w: Float32Array): Float32Array {
  const h = floatToHalfBits(w);
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = halfToFloat(h[i]);
  return out;
}

/** The kernel a linear layer uses at the context's precision. */
export function linearKernel(ctx: GraphContext, prefix: string): LinearKernel {
  if (ctx.g.weightMode !== 'initializer') return 'fp32'; // training graphs feed fp32 weights
  const q = { ...DEFAULT_QUANT, ...ctx.quant };
  switch (ctx.precision) {
    case 'fp32': return 'fp32';
    case 'fp16': return 'fp16';
    case 'int8': return q.int8Kernel;
    case 'q4': return prefix === 'to_logits.1' ? q.q4Head : 'nbits4';
  }
}

/** y = x·Wᵀ + b for x [N, in] and torch's weight layout W [out, in] (then the context's adapter, if any). */
export function linear(ctx: GraphContext, x: Value, prefix: string): Value {
  const y = baseLinear(ctx, x, prefix);
  return ctx.adapter ? ctx.adapter(ctx, x, prefix, y) : y;
}

function baseLinear(ctx: GraphContext, x: Value, prefix: string): Value {
  const g = ctx.g;
  const name = `${prefix}.weight`;
  const kernel = linearKernel(ctx, prefix);
  const q = { ...DEFAULT_QUANT, ...ctx.quant };
  // fp32: Gemm on torch's layout (measured as fast as MatMul on a pre-transposed copy at batch 1 and 8)
  if (kernel === 'fp32') return g.op('Gemm', [x, param(ctx, name), param(ctx, `${prefix}.bias`)], { transB: attr.int(1) });
  const [out, inp] = shapeOf(ctx, name);
  if (kernel === 'fp16' && q.fp16Compute === 'rounded') {
    const round = (v: Value) => g.op('Cast', [g.op('Cast', [v], { to: attr.int(FLOAT16) })], { to: attr.int(FLOAT) });
    const w = derive(ctx, name, roundToHalf)('rounded', 'float32', [out, inp], (t) => t);
    const b = derive(ctx, `${prefix}.bias`, roundToHalf)('rounded', 'float32', [out], (t) => t);
    return round(g.op('Gemm', [round(x), w, b], { transB: attr.int(1) }));
  }
  if (kernel === 'fp16') {
    const w16 = derive(ctx, name, floatToHalfBits)('fp16', 'float16', [out, inp], (t) => t);
    const b16 = derive(ctx, `${prefix}.bias`, floatToHalfBits)('fp16', 'float16', [out], (t) => t);
    const y = g.op('Gemm', [g.op('Cast', [x], { to: attr.int(FLOAT16) }), w16, b16], { transB: attr.int(1) });
    return g.op('Cast', [y], { to: attr.int(FLOAT) });
  }
  g.useOpset('com.microsoft', 1);
  if (kernel === 'dq-int8') {
    const c = derive(ctx, name, (w) => quantizeLinearWeight(w, out, inp));
    return g.op('DynamicQuantizeMatMul', [
      x,
      c('q', 'uint8', [inp, out], (t) => t.data),
      c('scale', 'float32', [out], (t) => t.scale),
      c('zero', 'uint8', [out], (t) => t.zeroPoint),
      param(ctx, `${prefix}.bias`),
    ], {}, 'com.microsoft');
  }
  const bits = kernel === 'nbits4' ? 4 : 8;
  const bs = q.blockSize;
  const blocks = Math.ceil(inp / bs);
  const c = derive(ctx, name, (w) => quantizeBlockwise(w, out, inp, bits, bs));
  return g.op('MatMulNBits', [
    x,
    c(`q${bits}`, 'uint8', [out, blocks, (bs * bits) / 8], (t) => t.data),
    c('scales', 'float32', [out * blocks], (t) => t.scales),
    c('zeros', 'uint8', [out * (bits === 4 ? Math.ceil(blocks / 2) : blocks)], (t) => t.zeroPoints),
    null,
    param(ctx, `${prefix}.bias`),
  ], {
    K: attr.int(inp), N: attr.int(out), bits: attr.int(bits), block_size: attr.int(bs), accuracy_level: attr.int(q.accuracyLevel),
  }, 'com.microsoft');
}

/** Rows `idx` of embedding table `name` [rows, h] as float32 [..idx, h], at the context's precision. */
export function embeddingRows(ctx: GraphContext, name: string, idx: Value): Value {
  const g = ctx.g;
  const q = { ...DEFAULT_QUANT, ...ctx.quant };
  const mode = g.weightMode !== 'initializer' || ctx.precision === 'fp32' ? 'fp32'
    : ctx.precision === 'fp16' ? 'fp16' : q.embeddings;
  if (mode === 'fp32') return g.op('Gather', [param(ctx, name), idx], { axis: attr.int(0) });
  const [rows, cols] = shapeOf(ctx, name);
  if (mode === 'fp16') {
    const t = derive(ctx, name, floatToHalfBits)('fp16', 'float16', [rows, cols], (x) => x);
    return g.op('Cast', [g.op('Gather', [t, idx], { axis: attr.int(0) })], { to: attr.int(FLOAT) });
  }
  const c = derive(ctx, name, (w) => quantizeRows(w, rows, cols));
  const data = c('q8', 'int8', [rows, cols], (t) => t.data);
  const scales = c('scales', 'float32', [rows, 1], (t) => t.scales);
  const picked = g.op('Cast', [g.op('Gather', [data, idx], { axis: attr.int(0) })], { to: attr.int(FLOAT) });
  return g.op('Mul', [picked, g.op('Gather', [scales, idx], { axis: attr.int(0) })]);
}

/** LayerNorm over the last axis, eps 1e-5 (torch default). */
export function layerNorm(ctx: GraphContext, x: Value, prefix: string): Value {
  return ctx.g.op('LayerNormalization', [x, param(ctx, `${prefix}.weight`), param(ctx, `${prefix}.bias`)], {
    axis: attr.int(-1), epsilon: attr.float(1e-5),
  });
}
