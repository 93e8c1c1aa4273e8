/**
 * What every VQGAN component's graph function needs (the builder and the weights) and the
 * three primitives they are made of: Conv2d, GroupNorm(32, eps 1e-6) and swish.
 */
import { attr, type GraphBuilder, type Value } from '../onnx/graph.js';
import type { VqganWeights } from './weights.js';

export interface VqganGraphContext {
  g: GraphBuilder;
  weights: VqganWeights;
}

/** The graph value of parameter `name`, declared on first use. */
export function param(ctx: VqganGraphContext, name: string): Value {
  let declared = declaredParams.get(ctx.g);
  if (!declared) declaredParams.set(ctx.g, declared = new Map());
  const hit = declared.get(name);
  if (hit) return hit;
  const w = ctx.weights.get(name);
  if (!w) throw new Error(`vqgan graph: unknown parameter ${name}`);
  const v = ctx.g.weight(name, 'float32', w.shape, w.data);
  declared.set(name, v);
  return v;
}
const declaredParams = new WeakMap<GraphBuilder, Map<string, Value>>();

export interface ConvOptions {
  stride?: number;
  /** [top, left, bottom, right]; default "same" padding for the kernel */
  pads?: [number, number, number, number];
}

/** torch Conv2d with bias; the kernel size comes from the weight. */
export function conv2d(ctx: VqganGraphContext, x: Value, prefix: string, opts: ConvOptions = {}): Value {
  const k = ctx.weights.get(`${prefix}.weight`)?.shape[2];
  if (k === undefined) throw new Error(`vqgan graph: unknown parameter ${prefix}.weight`);
  const p = (k - 1) / 2;
  const [top, left, bottom, right] = opts.pads ?? [p, p, p, p];
  const stride = opts.stride ?? 1;
  return ctx.g.op('Conv', [x, param(ctx, `${prefix}.weight`), param(ctx, `${prefix}.bias`)], {
    kernel_shape: attr.ints([k, k]),
    strides: attr.ints([stride, stride]),
    pads: attr.ints([top, left, bottom, right]),
  });
}

const GROUPS = 32;

/**
 * torch GroupNorm(32, C, eps=1e-6, affine): statistics over each group of C/32 channels ×
 * H × W, then a per-channel scale and shift. Built as InstanceNormalization over a
 * [B, 32, C/32·H·W] view (one "instance" per group), which onnxruntime runs as one kernel.
 */
export function groupNorm(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  const { g } = ctx;
  const c = ctx.weights.get(`${prefix}.weight`)?.shape[0];
  if (c === undefined) throw new Error(`vqgan graph: unknown parameter ${prefix}.weight`);
  const grouped = g.op('Reshape', [x, g.int64s([0, GROUPS, -1], 'group_shape')]);
  const normed = g.op('InstanceNormalization', [grouped, ones(ctx), zeros(ctx)], { epsilon: attr.float(1e-6) });
  const back = g.op('Reshape', [normed, g.op('Shape', [x])]);
  const scale = g.op('Reshape', [param(ctx, `${prefix}.weight`), g.int64s([c, 1, 1], 'channel_shape')]);
  const shift = g.op('Reshape', [param(ctx, `${prefix}.bias`), g.int64s([c, 1, 1], 'channel_shape')]);
  return g.op('Add', [g.op('Mul', [back, scale]), shift]);
}

const unitConstants = new WeakMap<GraphBuilder, { ones: Value; zeros: Value }>();
function unit(ctx: VqganGraphContext) {
  let u = unitConstants.get(ctx.g);
  if (!u) {
    u = {
      ones: ctx.g.constant('group_ones', 'float32', [GROUPS], new Float32Array(GROUPS).fill(1)),
      zeros: ctx.g.constant('group_zeros', 'float32', [GROUPS], new Float32Array(GROUPS)),
    };
    unitConstants.set(ctx.g, u);
  }
  return u;
}
const ones = (ctx: VqganGraphContext) => unit(ctx).ones;
const zeros = (ctx: VqganGraphContext) => unit(ctx).zeros;

/** swish(x) = x · sigmoid(x) (taming's `nonlinearity`). */
export function swish(ctx: VqganGraphContext, x: Value): Value {
  return ctx.g.op('Mul', [x, ctx.g.op('Sigmoid', [x])]);
}
