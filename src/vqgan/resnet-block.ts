/** taming ResnetBlock (no timestep embedding, dropout off): SPEC §10. */
import type { Value } from '../onnx/graph.js';
import { conv2d, groupNorm, swish, type VqganGraphContext } from './graph-context.js';

/** shortcut(x) + conv2(swish(norm2(conv1(swish(norm1(x)))))); 1x1 `nin_shortcut` when channels change. */
export function resnetBlock(ctx: VqganGraphContext, x: Value, prefix: string): Value {
  let h = conv2d(ctx, swish(ctx, groupNorm(ctx, x, `${prefix}.norm1`)), `${prefix}.conv1`);
  h = conv2d(ctx, swish(ctx, groupNorm(ctx, h, `${prefix}.norm2`)), `${prefix}.conv2`);
  const shortcut = ctx.weights.has(`${prefix}.nin_shortcut.weight`) ? conv2d(ctx, x, `${prefix}.nin_shortcut`) : x;
  return ctx.g.op('Add', [shortcut, h]);
}
