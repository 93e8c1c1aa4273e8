/**
 * What every component's graph function needs: the builder, the config, the weights, and
 * how linear layers are realised (fp32 Gemm, or int8 variants that slot in here).
 */
import { attr, type GraphBuilder, isLazy, type LazyWeight, type Value } from '../onnx/graph.js';
import type { RudolphConfig } from './config.js';
import { quantizeLinearWeight } from './quantize.js';
import { parameterSpecs } from './weights.js';

/** How linear layers hold their weights. */
export const PRECISIONS = ['fp32', 'int8'] as const;
export type LinearPrecision = (typeof PRECISIONS)[number];

/** Parameter data by official name: in memory, or loaded when the graph is saved (conversion). */
export type GraphWeights = ReadonlyMap<string, Float32Array | LazyWeight>;

export interface GraphContext {
  g: GraphBuilder;
  cfg: RudolphConfig;
  weights: GraphWeights;
  precision: LinearPrecision;
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

/** y = x·Wᵀ + b for x [N, in] and torch's weight layout W [out, in] (then the context's adapter, if any). */
export function linear(ctx: GraphContext, x: Value, prefix: string): Value {
  const y = baseLinear(ctx, x, prefix);
  return ctx.adapter ? ctx.adapter(ctx, x, prefix, y) : y;
}

function baseLinear(ctx: GraphContext, x: Value, prefix: string): Value {
  if (ctx.precision === 'int8' && ctx.g.weightMode === 'initializer') {
    const w = ctx.weights.get(`${prefix}.weight`);
    const shape = parameterSpecs(ctx.cfg).find((s) => s.name === `${prefix}.weight`)?.shape;
    if (!w || !shape) throw new Error(`graph: unknown parameter ${prefix}.weight`);
    if (isLazy(w)) throw new Error(`graph: int8 quantization of ${prefix}.weight needs the weights in memory`);
    const q = quantizeLinearWeight(w, shape[0], shape[1]);
    const g = ctx.g;
    g.useOpset('com.microsoft', 1);
    return g.op('DynamicQuantizeMatMul', [
      x,
      g.constant(`${prefix}.weight_q`, 'uint8', [shape[1], shape[0]], q.data),
      g.constant(`${prefix}.weight_scale`, 'float32', [shape[0]], q.scale),
      g.constant(`${prefix}.weight_zero`, 'uint8', [shape[0]], q.zeroPoint),
      param(ctx, `${prefix}.bias`),
    ], {}, 'com.microsoft');
  }
  return ctx.g.op('Gemm', [x, param(ctx, `${prefix}.weight`), param(ctx, `${prefix}.bias`)], { transB: attr.int(1) });
}

/** LayerNorm over the last axis, eps 1e-5 (torch default). */
export function layerNorm(ctx: GraphContext, x: Value, prefix: string): Value {
  return ctx.g.op('LayerNormalization', [x, param(ctx, `${prefix}.weight`), param(ctx, `${prefix}.bias`)], {
    axis: attr.int(-1), epsilon: attr.float(1e-5),
  });
}
