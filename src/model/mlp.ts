/** The feed-forward block of a layer (SPEC §5). */
import { attr, type Value } from '../onnx/graph.js';
import { linear, type GraphContext } from './graph-context.js';

/** dense_4h_to_h(gelu_tanh(dense_h_to_4h(x))) */
export function mlp(ctx: GraphContext, prefix: string, x: Value): Value {
  const hidden = linear(ctx, x, `${prefix}.dense_h_to_4h`);
  const act = ctx.g.op('Gelu', [hidden], { approximate: attr.string('tanh') });
  return linear(ctx, act, `${prefix}.dense_4h_to_h`);
}
