/**
 * Self-attention over cached keys/values plus the k new positions (SPEC §5, §7).
 * Cached keys are kept transposed ([B, H, d, P]) so scores are a plain MatMul; the new
 * keys/values are returned for the caller to write into its cache buffers in place.
 */
import { attr, type Value } from '../onnx/graph.js';
import { linear, maybeDropout, type GraphContext } from './graph-context.js';

export interface AttentionInputs {
  /** [B, H, d, P] cached keys (transposed); absent in graphs without a cache (training) */
  pastKeys?: Value;
  /** [B, H, P, d] cached values */
  pastValues?: Value;
  /** bool [k, P + k]: may query i see key j (cache slots first, then new positions) */
  mask: Value;
}

export interface AttentionOutputs {
  out: Value;
  /** [B, H, d, k] */
  newKeys: Value;
  /** [B, H, k, d] */
  newValues: Value;
}

/** x [B·k, h] → attention output [B·k, h] (dense applied, clamped to ±65504). */
export function attention(ctx: GraphContext, prefix: string, x: Value, io: AttentionInputs): AttentionOutputs {
  const { g, cfg } = ctx;
  const H = cfg.heads, d = cfg.headDim, h = cfg.hidden;
  const qkv = linear(ctx, x, `${prefix}.query_key_value`);
  const [q2, k2, v2] = g.opN('Split', [qkv, g.int64s([h, h, h])], { axis: attr.int(1) }, 3);
  const headsShape = g.op('Concat', [ctx.batchTokens, g.int64s([H, d])], { axis: attr.int(0) });
  const toHeads = (t: Value, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, headsShape])], { perm: attr.ints(perm) });
  const q = toHeads(q2, [0, 2, 1, 3]);          // [B, H, k, d]
  const kT = toHeads(k2, [0, 2, 3, 1]);         // [B, H, d, k]
  const v = toHeads(v2, [0, 2, 1, 3]);          // [B, H, k, d]

  const qs = g.op('Div', [q, g.scalarFloat(Math.sqrt(d))]);
  const past = io.pastKeys && io.pastValues ? { keys: io.pastKeys, values: io.pastValues } : null;
  const newScores = g.op('MatMul', [qs, kT]);   // [B, H, k, k]
  const scores = past
    ? g.op('Concat', [g.op('MatMul', [qs, past.keys]), newScores], { axis: attr.int(-1) })  // [B, H, k, P + k]
    : newScores;
  const masked = g.op('Where', [io.mask, scores, g.scalarFloat(-10000)]);
  const probs = maybeDropout(ctx, g.op('Softmax', [masked], { axis: attr.int(-1) }), cfg.params.attention_dropout_prob);
  let context: Value;
  if (past) {
    const split = g.op('Concat', [g.op('Shape', [past.keys], { start: attr.int(3) }), g.op('Shape', [kT], { start: attr.int(3) })], { axis: attr.int(0) });
    const [probsPast, probsNew] = g.opN('Split', [probs, split], { axis: attr.int(-1) }, 2);
    context = g.op('Add', [g.op('MatMul', [probsPast, past.values]), g.op('MatMul', [probsNew, v])]);
  } else {
    context = g.op('MatMul', [probs, v]);
  }
  const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: attr.ints([0, 2, 1, 3]) }), g.int64s([-1, h])]);
  const dense = linear(ctx, merged, `${prefix}.dense`);
  const out = maybeDropout(ctx, g.op('Clip', [dense, g.scalarFloat(-65504), g.scalarFloat(65504)]), cfg.params.output_dropout_prob);
  return { out, newKeys: kT, newValues: v };
}
