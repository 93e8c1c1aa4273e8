/** taming AttnBlock: single-head self-attention over the H·W positions of a feature map. */
import { attr, type Value } from '../onnx/graph.js';
import { conv2d, groupNorm, type VqganGraphContext } from './graph-context.js';

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
