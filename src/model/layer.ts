/** One RUDOLPH transformer layer. */
import type { Value } from '../onnx/graph.js';
import { attention, type AttentionInputs, type AttentionOutputs } from './attention.js';
import { layerNorm, maybeDropout, type GraphContext } from './graph-context.js';
import { mlp } from './mlp.js';

/** One transformer layer with CogView sandwich LayerNorms (SPEC §5). */
export function transformerLayer(ctx: GraphContext, i: number, x: Value, io: AttentionInputs): AttentionOutputs {
  return ctx.g.scope(`layer${i}`, () => {
    const p = `transformer.layers.${i}`;
    const a = attention(ctx, `${p}.attention`, layerNorm(ctx, x, `${p}.input_layernorm`), io);
    const x1 = ctx.g.op('Add', [x, layerNorm(ctx, a.out, `${p}.before_first_addition_layernorm`)]);
    const m = maybeDropout(ctx, mlp(ctx, `${p}.mlp`, layerNorm(ctx, x1, `${p}.post_attention_layernorm`)), ctx.cfg.params.output_dropout_prob);
    const x2 = ctx.g.op('Add', [x1, layerNorm(ctx, m, `${p}.before_second_addition_layernorm`)]);
    return { out: x2, newKeys: a.newKeys, newValues: a.newValues };
  });
}
