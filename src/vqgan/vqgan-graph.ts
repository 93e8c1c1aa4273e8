/**
 * The two VQGAN graphs (nanoGPT-style, top to bottom like the math of SPEC §10):
 * encode  image [B, 3, H, W] in [0, 1] → 2x − 1 → encoder → quant_conv → quantize.proj → argmax → ids [B, h·w]
 * decode  ids [B, h, w] → codebook rows → NCHW → post_quant_conv → decoder → clamp(−1, 1) → (x + 1) / 2
 * Intermediates are graph outputs too (they lie on the only path, so fetching them is free).
 */
import { attr, GraphBuilder } from '../onnx/graph.js';
import type { VqganConfig } from './config.js';
import { decoder, encoder } from './taming.js';
import { conv2d, param, type VqganGraphContext } from './graph-context.js';
import type { VqganWeights } from './weights.js';

export const ENCODE_IO = {
  image: 'image',
  indices: 'indices',
  intermediates: ['encoder_out', 'quant_conv_out', 'proj_logits'],
} as const;

export const DECODE_IO = {
  indices: 'indices',
  image: 'image',
  intermediates: ['z', 'post_quant_conv_out', 'decoder_out'],
} as const;

export type EncodeIntermediate = (typeof ENCODE_IO.intermediates)[number];
export type DecodeIntermediate = (typeof DECODE_IO.intermediates)[number];

export function buildEncodeGraph(cfg: VqganConfig, weights: VqganWeights): GraphBuilder {
  const g = new GraphBuilder('vqgan_encode');
  const ctx: VqganGraphContext = { g, weights };
  const image = g.input(ENCODE_IO.image, 'float32', ['batch', cfg.inChannels, 'height', 'width']);
  const x = g.op('Sub', [g.op('Mul', [image, g.scalarFloat(2)]), g.scalarFloat(1)]);
  const z = encoder(ctx, cfg, x);
  const quantIn = conv2d(ctx, z, 'quant_conv');
  const logits = conv2d(ctx, quantIn, 'quantize.proj');
  const ids = g.op('ArgMax', [logits], { axis: attr.int(1), keepdims: attr.int(0) }); // [B, h, w]
  g.output(g.op('Reshape', [ids, g.int64s([0, -1])]), ENCODE_IO.indices, 'int64', ['batch', 'tokens']);
  g.output(z, 'encoder_out', 'float32', ['batch', cfg.zChannels, 'rows', 'cols']);
  g.output(quantIn, 'quant_conv_out', 'float32', ['batch', cfg.embedDim, 'rows', 'cols']);
  g.output(logits, 'proj_logits', 'float32', ['batch', cfg.nEmbed, 'rows', 'cols']);
  return g;
}

export function buildDecodeGraph(cfg: VqganConfig, weights: VqganWeights): GraphBuilder {
  const g = new GraphBuilder('vqgan_decode');
  const ctx: VqganGraphContext = { g, weights };
  const ids = g.input(DECODE_IO.indices, 'int64', ['batch', 'rows', 'cols']);
  const rows = g.op('Gather', [param(ctx, 'quantize.embed.weight'), ids], { axis: attr.int(0) }); // [B, h, w, C]
  const z = g.op('Transpose', [rows], { perm: attr.ints([0, 3, 1, 2]) });
  const h = conv2d(ctx, z, 'post_quant_conv');
  const x = decoder(ctx, cfg, h);
  const clamped = g.op('Clip', [x, g.scalarFloat(-1), g.scalarFloat(1)]);
  const image = g.op('Mul', [g.op('Add', [clamped, g.scalarFloat(1)]), g.scalarFloat(0.5)]);
  g.output(image, DECODE_IO.image, 'float32', ['batch', cfg.outCh, 'height', 'width']);
  g.output(z, 'z', 'float32', ['batch', cfg.embedDim, 'rows', 'cols']);
  g.output(h, 'post_quant_conv_out', 'float32', ['batch', cfg.zChannels, 'rows', 'cols']);
  g.output(x, 'decoder_out', 'float32', ['batch', cfg.outCh, 'height', 'width']);
  return g;
}
