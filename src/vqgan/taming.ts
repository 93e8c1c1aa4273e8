/**
 * The taming-transformers VQGAN network (SPEC §10) as ONNX graph code, top to bottom: its
 * blocks (ResnetBlock, AttnBlock, Downsample/Upsample), then the Encoder and the Decoder.
 * Feature maps are [B, C, H, W]; `f` is the downsampling factor (8 for the Sber VQGAN).
 */
import { attr, type Value } from '../onnx/graph.js';
import { decoderLevels, encoderLevels, type VqganConfig } from './config.js';
import { conv2d, groupNorm, swish, type VqganGraphContext } from './graph-context.js';

// ---- ResnetBlock (no timestep embedding, dropout off; SPEC §10) ------------------------------

/** shortcut(x) + conv2(swish(norm2(conv1(swish(norm1(x)))))); 1x1 `nin_shortcut` when channels change. */
export function resnetBlock(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  let h = conv2d(ctx, swish(ctx, groupNorm(ctx, x, `${prefix}.norm1`)), `${prefix}.conv1`);
  h = conv2d(ctx, swish(ctx, groupNorm(ctx, h, `${prefix}.norm2`)), `${prefix}.conv2`);
  const shortcut = ctx.weights.has(`${prefix}.nin_shortcut.weight`) ? conv2d(ctx, x, `${prefix}.nin_shortcut`) : x;
  return ctx.g.op('Add', [shortcut, h]);
}

// ---- AttnBlock: single-head self-attention over the H·W positions of a feature map -----------

/** x + proj_out(v · softmax(qᵀk / √c)ᵀ), with q, k, v 1x1 convs of norm(x). */
export function attnBlock(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  const { g } = ctx;
  const c = ctx.weights.get(`${prefix}.q.weight`)!.shape[0];
  const h = groupNorm(ctx, x, `${prefix}.norm`);
  const flat = (t: Value) => g.op('Reshape', [t, g.int64s([0, c, -1], 'bcn_shape')]); // [B, c, N]
  const q = flat(conv2d(ctx, h, `${prefix}.q`));
  const k = flat(conv2d(ctx, h, `${prefix}.k`));
  const v = flat(conv2d(ctx, h, `${prefix}.v`));
  const qT = g.op('Transpose', [q], { perm: attr.ints([0, 2, 1]) });               // [B, N, c]
  const scores = g.op('Mul', [g.op('MatMul', [qT, k]), g.scalarFloat(c ** -0.5)]); // [B, Nq, Nk]
  const weights = g.op('Softmax', [scores], { axis: attr.int(-1) });
  const weightsT = g.op('Transpose', [weights], { perm: attr.ints([0, 2, 1]) });   // [B, Nk, Nq]
  const attended = g.op('Reshape', [g.op('MatMul', [v, weightsT]), g.op('Shape', [x])]);
  return g.op('Add', [x, conv2d(ctx, attended, `${prefix}.proj_out`)]);
}

// ---- Downsample / Upsample, both with a 3x3 conv (`resamp_with_conv=True`) -------------------

/** F.pad(x, (0, 1, 0, 1)) then a stride-2 3x3 conv without padding: the zero pad is the conv's own. */
export function downsample(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  return conv2d(ctx, x, `${prefix}.conv`, { stride: 2, pads: [0, 0, 1, 1] });
}

/** F.interpolate(scale_factor=2, mode='nearest') then a 3x3 conv. */
export function upsample(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  const { g } = ctx;
  const doubled = g.op('Resize', [x, null, g.constant('scales_x2', 'float32', [4], Float32Array.of(1, 1, 2, 2))], {
    mode: attr.string('nearest'),
    coordinate_transformation_mode: attr.string('asymmetric'),
    nearest_mode: attr.string('floor'),
  });
  return conv2d(ctx, doubled, `${prefix}.conv`);
}

// ---- Encoder -------------------------------------------------------------------------------

/** image [B, 3, H, W] in [-1, 1] → z [B, z_channels, H/f, W/f] */
export function encoder(ctx: VqganGraphContext, cfg: VqganConfig, x: Value): Value {
  return ctx.g.scope('encoder', () => {
    let h = conv2d(ctx, x, 'encoder.conv_in');
    for (const lv of encoderLevels(cfg)) {
      const p = `encoder.down.${lv.index}`;
      for (let b = 0; b < lv.blocks; b++) {
        h = resnetBlock(ctx, h, `${p}.block.${b}`);
        if (lv.attn) h = attnBlock(ctx, h, `${p}.attn.${b}`);
      }
      if (lv.resample) h = downsample(ctx, h, `${p}.downsample`);
    }
    h = resnetBlock(ctx, h, 'encoder.mid.block_1');
    h = attnBlock(ctx, h, 'encoder.mid.attn_1');
    h = resnetBlock(ctx, h, 'encoder.mid.block_2');
    return conv2d(ctx, swish(ctx, groupNorm(ctx, h, 'encoder.norm_out')), 'encoder.conv_out');
  });
}

// ---- Decoder -------------------------------------------------------------------------------

/** z [B, z_channels, h, w] → image [B, out_ch, h·f, w·f] (before the clamp) */
export function decoder(ctx: VqganGraphContext, cfg: VqganConfig, z: Value): Value {
  return ctx.g.scope('decoder', () => {
    let h = conv2d(ctx, z, 'decoder.conv_in');
    h = resnetBlock(ctx, h, 'decoder.mid.block_1');
    h = attnBlock(ctx, h, 'decoder.mid.attn_1');
    h = resnetBlock(ctx, h, 'decoder.mid.block_2');
    for (const lv of decoderLevels(cfg)) {
      const p = `decoder.up.${lv.index}`;
      for (let b = 0; b < lv.blocks; b++) {
        h = resnetBlock(ctx, h, `${p}.block.${b}`);
        if (lv.attn) h = attnBlock(ctx, h, `${p}.attn.${b}`);
      }
      if (lv.resample) h = upsample(ctx, h, `${p}.upsample`);
    }
    return conv2d(ctx, swish(ctx, groupNorm(ctx, h, 'decoder.norm_out')), 'decoder.conv_out');
  });
}
