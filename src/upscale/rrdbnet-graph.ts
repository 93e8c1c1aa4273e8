/**
 * The RRDBNet graph (Real-ESRGAN's generator, ESRGAN paper §3.1), top to bottom like the
 * official `rrdbnet_arch.py`; every conv is 3×3, stride 1, zero padding 1, with bias:
 *
 *   x [B, 3, H, W] ──(×2 only: pixel_unshuffle 2)── conv_first → feat [B, F, h, w]
 *   trunk = feat + conv_body(RRDB^numBlock(feat))
 *   h = lrelu(conv_up1(nearest×2(trunk))), lrelu(conv_up2(nearest×2(h))) [, lrelu(conv_up3(nearest×2(h))) for ×8]
 *   out = conv_last(lrelu(conv_hr(h)))  [B, 3, H·s, W·s]   (no clamp: `predict` clamps)
 *
 * RRDB(x) = 0.2·RDB3(RDB2(RDB1(x))) + x; a residual dense block concatenates every earlier
 * output before each conv: x1..x4 = lrelu(conv_k(cat(x, x1, …))), out = 0.2·conv5(cat(x, x1..x4)) + x.
 */
import { attr, GraphBuilder, type Value } from '../onnx/graph.js';
import { conv2d, type VqganGraphContext } from '../vqgan/graph-context.js';
import { unshuffleFactor, upsampleStages, type RrdbNetConfig } from './config.js';
import type { RrdbNetWeights } from './weights.js';

/** The graph's input and output names; the intermediates are the official module boundaries. */
export const RRDBNET_IO = {
  input: 'x',
  output: 'output',
  intermediates: ['conv_first_in', 'conv_first_out', 'rrdb0_out', 'body_out', 'conv_body_out', 'conv_hr_in'],
} as const;
export type RrdbNetIntermediate = (typeof RRDBNET_IO.intermediates)[number];

/** The builder and weights every block needs (the conv helpers are the VQGAN's). */
type Ctx = VqganGraphContext;

const RESIDUAL_SCALE = 0.2;
const LEAKY_SLOPE = 0.2;

function lrelu(ctx: Ctx, x: Value): Value {
  return ctx.g.op('LeakyRelu', [x], { alpha: attr.float(LEAKY_SLOPE) });
}

/** 0.2·branch + x */
function scaledResidual(ctx: Ctx, branch: Value, x: Value): Value {
  return ctx.g.op('Add', [ctx.g.op('Mul', [branch, ctx.g.scalarFloat(RESIDUAL_SCALE, 'residual_scale')]), x]);
}

function residualDenseBlock(ctx: Ctx, x: Value, prefix: string): Value {
  const feats = [x];
  for (let k = 1; k <= 4; k++) {
    const input = feats.length === 1 ? x : ctx.g.op('Concat', feats, { axis: attr.int(1) });
    feats.push(lrelu(ctx, conv2d(ctx, input, `${prefix}.conv${k}`)));
  }
  const x5 = conv2d(ctx, ctx.g.op('Concat', feats, { axis: attr.int(1) }), `${prefix}.conv5`);
  return scaledResidual(ctx, x5, x);
}

function rrdb(ctx: Ctx, x: Value, prefix: string): Value {
  return ctx.g.scope(prefix, () => {
    let h = x;
    for (const rdb of ['rdb1', 'rdb2', 'rdb3']) h = residualDenseBlock(ctx, h, `${prefix}.${rdb}`);
    return scaledResidual(ctx, h, x);
  });
}

/**
 * torch `pixel_unshuffle(x, r)`: out[b, c·r² + dy·r + dx, i, j] = x[b, c, r·i + dy, r·j + dx].
 * ONNX SpaceToDepth orders the channels (dy·r + dx)·C + c, so a Gather reorders them.
 */
function pixelUnshuffle(ctx: Ctx, x: Value, channels: number, r: number): Value {
  const s2d = ctx.g.op('SpaceToDepth', [x], { blocksize: attr.int(r) });
  const order: number[] = [];
  for (let c = 0; c < channels; c++) for (let d = 0; d < r * r; d++) order.push(d * channels + c);
  return ctx.g.op('Gather', [s2d, ctx.g.int64s(order, 'unshuffle_order')], { axis: attr.int(1) });
}

/** F.interpolate(scale_factor=2, mode='nearest'): out[i] = in[⌊i/2⌋]. */
function nearest2x(ctx: Ctx, x: Value): Value {
  const { g } = ctx;
  return g.op('Resize', [x, null, g.constant('scales_x2', 'float32', [4], Float32Array.of(1, 1, 2, 2))], {
    mode: attr.string('nearest'),
    coordinate_transformation_mode: attr.string('asymmetric'),
    nearest_mode: attr.string('floor'),
  });
}

/**
 * x [B, numInCh, H, W] → output [B, numOutCh, H·scale, W·scale]. With `intermediates` the
 * module boundaries are graph outputs too (debugging, parity checks); without them onnxruntime
 * is free to reuse their buffers.
 */
export function buildRrdbNetGraph(cfg: RrdbNetConfig, weights: RrdbNetWeights, opts: { intermediates?: boolean } = {}): GraphBuilder {
  const g = new GraphBuilder(`rrdbnet_x${cfg.scale}`);
  const ctx: Ctx = { g, weights };
  const F = cfg.numFeat;
  const x = g.input(RRDBNET_IO.input, 'float32', ['batch', cfg.numInCh, 'height', 'width']);
  const r = unshuffleFactor(cfg);
  const xIn = r > 1 ? pixelUnshuffle(ctx, x, cfg.numInCh, r) : x;        // [B, C·r², H/r, W/r]
  const feat = conv2d(ctx, xIn, 'conv_first');                           // [B, F, h, w]
  let body = feat;
  let rrdb0: Value | null = null;
  for (let b = 0; b < cfg.numBlock; b++) {
    body = rrdb(ctx, body, `body.${b}`);
    rrdb0 ??= body;
  }
  const convBody = conv2d(ctx, body, 'conv_body');
  const trunk = g.op('Add', [feat, convBody]);
  let h = trunk;
  for (let u = 1; u <= upsampleStages(cfg); u++) h = lrelu(ctx, conv2d(ctx, nearest2x(ctx, h), `conv_up${u}`)); // [B, F, h·2^u, w·2^u]
  const out = conv2d(ctx, lrelu(ctx, conv2d(ctx, h, 'conv_hr')), 'conv_last'); // [B, numOutCh, H·s, W·s]
  g.output(out, RRDBNET_IO.output, 'float32', ['batch', cfg.numOutCh, 'out_height', 'out_width']);
  if (opts.intermediates) {
    const hw = ['batch', F, 'h', 'w'];
    if (r > 1) g.output(xIn, 'conv_first_in', 'float32', ['batch', cfg.numInCh * r * r, 'h', 'w']);
    g.output(feat, 'conv_first_out', 'float32', hw);
    g.output(rrdb0!, 'rrdb0_out', 'float32', hw);
    g.output(body, 'body_out', 'float32', hw);
    g.output(convBody, 'conv_body_out', 'float32', hw);
    g.output(h, 'conv_hr_in', 'float32', ['batch', F, 'out_height', 'out_width']);
  }
  return g;
}
