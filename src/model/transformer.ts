/**
 * The RUDOLPH transformer, top to bottom (SPEC §4–§5), as ONNX graph code: token + position
 * embeddings, then per layer CogView sandwich-LayerNorm self-attention and a GELU MLP.
 * Shapes: B batch rows, k new tokens, P cached positions, h hidden, H heads, d = h/H.
 * Activations are kept flat as [B·k, h] between layers (one Gemm per linear).
 *
 * Embeddings: one position table covers the whole layout —
 * [l_pos[0:l] ; row_emb[j/n] + col_emb[j%n] for the image ; r_pos[0:r]], gathered by position.
 *
 * Attention runs over cached keys/values plus the k new positions (SPEC §5, §7). Cached keys
 * and values are both [B, H, P, d]; the new keys/values are returned for the caller to write
 * into its cache buffers in place.
 */
import { attr, type GraphBuilder, type Value } from '../onnx/graph.js';
import { embeddingRows, layerNorm, linear, maybeDropout, param, type GraphContext } from './graph-context.js';

// ---- embeddings ------------------------------------------------------------------------------

/** ids [B, k] int64 (left pads already replaced), positions [k] int64 → x [B·k, h] */
export function embed(ctx: GraphContext, ids: Value, positions: Value): Value {
  const { g, cfg } = ctx;
  return g.scope('embed', () => {
    const l = cfg.l, n = cfg.n, img = cfg.imageLength;
    const isImage = g.op('And', [   // [k]: which new positions are image tokens
      g.op('GreaterOrEqual', [positions, g.scalarInt64(l)]),
      g.op('Less', [positions, g.scalarInt64(l + img)]),
    ]);
    // each table looked up with the ids clipped into its rows, the rows then chosen by position:
    // no integer Where (onnxruntime-web's WebGPU EP picked the wrong side of one)
    const clipTo = (rows: number) => g.op('Clip', [ids, g.scalarInt64(0), g.scalarInt64(rows - 1)]);
    const textRows = embeddingRows(ctx, 'text_embeddings.weight', clipTo(cfg.textVocab));
    const imageRows = embeddingRows(ctx, 'image_embeddings.weight', clipTo(cfg.imageVocabTotal));
    const isImage3 = g.op('Unsqueeze', [isImage, g.int64s([1])]);
    const tokens = g.op('Where', [isImage3, imageRows, textRows]);   // [B, k, h]

    const rowIdx = g.int64s(Array.from({ length: img }, (_, j) => Math.floor(j / n)));
    const colIdx = g.int64s(Array.from({ length: img }, (_, j) => j % n));
    const imagePos = g.op('Add', [   // [n², h]
      g.op('Gather', [param(ctx, 'image_row_embeddings.weight'), rowIdx], { axis: attr.int(0) }),
      g.op('Gather', [param(ctx, 'image_col_embeddings.weight'), colIdx], { axis: attr.int(0) }),
    ]);
    const leftPos = g.op('Slice', [param(ctx, 'l_text_pos_embeddings.weight'), g.int64s([0]), g.int64s([l]), g.int64s([0])]);
    const rightPos = g.op('Slice', [param(ctx, 'r_text_pos_embeddings.weight'), g.int64s([0]), g.int64s([cfg.r]), g.int64s([0])]);
    const table = g.op('Concat', [leftPos, imagePos, rightPos], { axis: attr.int(0) });   // [l + n² + r, h]
    const pos = g.op('Gather', [table, positions], { axis: attr.int(0) });   // [k, h]

    const x = g.op('Add', [tokens, pos]);
    return g.op('Reshape', [x, g.int64s([-1, cfg.hidden])]);
  });
}

// ---- attention -------------------------------------------------------------------------------

export interface AttentionInputs {
  /** [B, H, P, d] cached keys; absent in graphs without a cache (training) */
  pastKeys?: Value;
  /** [B, H, P, d] cached values */
  pastValues?: Value;
  /** bool [k, P + k]: may query i see key j (cache slots first, then new positions) */
  mask: Value;
}

export interface AttentionOutputs {
  out: Value;
  /** [B, H, k, d] */
  newKeys: Value;
  /** [B, H, k, d] */
  newValues: Value;
}

/**
 * A value every layer uses alike (a shape), made once per graph: a decoding step runs every node,
 * and the smallest node costs microseconds, as much as a layer's LayerNorm.
 */
const sharedValues = new WeakMap<GraphBuilder, Map<string, Value>>();
function shared(ctx: GraphContext, key: string, make: () => Value): Value {
  let values = sharedValues.get(ctx.g);
  if (!values) sharedValues.set(ctx.g, (values = new Map()));
  let v = values.get(key);
  if (!v) values.set(key, (v = make()));
  return v;
}

/** x [B·k, h] → attention output [B·k, h] (dense applied, clamped to ±65504). */
export function attention(ctx: GraphContext, prefix: string, x: Value, io: AttentionInputs): AttentionOutputs {
  const { g, cfg } = ctx;
  const H = cfg.heads, d = cfg.headDim, h = cfg.hidden;
  const qkv = linear(ctx, x, `${prefix}.query_key_value`);   // [B·k, 3h]
  const [q2, k2, v2] = g.opN('Split', [qkv, g.int64s([h, h, h])], { axis: attr.int(1) }, 3);
  const headsShape = shared(ctx, 'headsShape', () => g.op('Concat', [ctx.batchTokens, g.int64s([H, d])], { axis: attr.int(0) }));   // [B, k, H, d]
  const toHeads = (t: Value, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, headsShape])], { perm: attr.ints(perm) });
  const qT = toHeads(q2, [0, 2, 3, 1]);         // [B, H, d, k]
  const k = toHeads(k2, [0, 2, 1, 3]);          // [B, H, k, d]
  const v = toHeads(v2, [0, 2, 1, 3]);          // [B, H, k, d]

  // Scores key-major, K·qᵀ [B, H, keys, k], transposed once after the concat: a new token's
  // query is then a GEMV over keys in rows [P, d], the layout values have too (no transposed
  // key cache to re-lay when the cache grows), and no scale sits next to a MatMul (onnxruntime
  // would fuse it, and a MatMul with a scale packs its whole right operand per head).
  const past = io.pastKeys && io.pastValues ? { keys: io.pastKeys, values: io.pastValues } : null;
  const newScores = g.op('MatMul', [k, qT]);   // [B, H, k, k]
  const keyMajor = past
    ? g.op('Concat', [g.op('MatMul', [past.keys, qT]), newScores], { axis: attr.int(2) })  // [B, H, P + k, k]
    : newScores;
  const scores = g.op('Transpose', [keyMajor], { perm: attr.ints([0, 1, 3, 2]) });   // [B, H, k, P + k]
  // The official (q/√d)·kᵀ with masked entries -10000 (not -inf), scaled after the mask.
  // Dividing by √d is exact where d is a power of 4 (the 350M preset: 8); -10000·√d/√d = -10000 there.
  const rootD = Math.sqrt(d);
  const masked = g.op('Div', [g.op('Where', [io.mask, scores, g.scalarFloat(-10000 * rootD)]), g.scalarFloat(rootD)]);
  const probs = maybeDropout(ctx, g.op('Softmax', [masked], { axis: attr.int(-1) }), cfg.params.attention_dropout_prob, `${prefix}.probs`);
  let context: Value;
  if (past) {
    // [P, k]: the same in every layer
    const split = shared(ctx, 'pastNewSplit', () => g.op('Concat', [g.op('Shape', [past.keys], { start: attr.int(2), end: attr.int(3) }), g.op('Shape', [k], { start: attr.int(2), end: attr.int(3) })], { axis: attr.int(0) }));
    const [probsPast, probsNew] = g.opN('Split', [probs, split], { axis: attr.int(-1) }, 2);
    context = g.op('Add', [g.op('MatMul', [probsPast, past.values]), g.op('MatMul', [probsNew, v])]);
  } else {
    context = g.op('MatMul', [probs, v]);
  }
  const merged = g.op('Reshape', [g.op('Transpose', [context], { perm: attr.ints([0, 2, 1, 3]) }), g.int64s([-1, h])]);   // [B·k, h]
  const dense = linear(ctx, merged, `${prefix}.dense`);
  const out = maybeDropout(ctx, g.op('Clip', [dense, g.scalarFloat(-65504), g.scalarFloat(65504)]), cfg.params.output_dropout_prob, `${prefix}.output`);
  return { out, newKeys: k, newValues: v };
}

// ---- MLP -------------------------------------------------------------------------------------

/** dense_4h_to_h(gelu_tanh(dense_h_to_4h(x))) */
export function mlp(ctx: GraphContext, prefix: string, x: Value): Value {
  const hidden = linear(ctx, x, `${prefix}.dense_h_to_4h`);
  const act = ctx.g.op('Gelu', [hidden], { approximate: attr.string('tanh') });
  return linear(ctx, act, `${prefix}.dense_4h_to_h`);
}

// ---- layer -----------------------------------------------------------------------------------

/** One transformer layer with CogView sandwich LayerNorms (SPEC §5). */
export function transformerLayer(ctx: GraphContext, i: number, x: Value, io: AttentionInputs): AttentionOutputs {
  return ctx.g.scope(`layer${i}`, () => {
    const p = `transformer.layers.${i}`;
    const a = attention(ctx, `${p}.attention`, layerNorm(ctx, x, `${p}.input_layernorm`), io);
    const x1 = ctx.g.op('Add', [x, layerNorm(ctx, a.out, `${p}.before_first_addition_layernorm`)]);
    const m = maybeDropout(ctx, mlp(ctx, `${p}.mlp`, layerNorm(ctx, x1, `${p}.post_attention_layernorm`)), ctx.cfg.params.output_dropout_prob, `${p}.mlp.output`);
    const x2 = ctx.g.op('Add', [x1, layerNorm(ctx, m, `${p}.before_second_addition_layernorm`)]);
    return { out: x2, newKeys: a.newKeys, newValues: a.newValues };
  });
}
