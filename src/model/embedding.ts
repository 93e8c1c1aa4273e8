/**
 * Token + position embeddings (SPEC §4). One position table covers the whole layout:
 * [l_pos[0:l] ; row_emb[j/n] + col_emb[j%n] for the image ; r_pos[0:r]], gathered by position.
 */
import { attr, type Value } from '../onnx/graph.js';
import { embeddingRows, param, type GraphContext } from './graph-context.js';

/** ids [B, k] int64 (left pads already replaced), positions [k] int64 → x [B·k, h] */
export function embed(ctx: GraphContext, ids: Value, positions: Value): Value {
  const { g, cfg } = ctx;
  return g.scope('embed', () => {
    const l = cfg.l, n = cfg.n, img = cfg.imageLength;
    const isImage = g.op('And', [
      g.op('GreaterOrEqual', [positions, g.scalarInt64(l)]),
      g.op('Less', [positions, g.scalarInt64(l + img)]),
    ]);
    const zero = g.scalarInt64(0);
    const textRows = embeddingRows(ctx, 'text_embeddings.weight', g.op('Where', [isImage, zero, ids]));
    const imageRows = embeddingRows(ctx, 'image_embeddings.weight', g.op('Where', [isImage, ids, zero]));
    const isImage3 = g.op('Unsqueeze', [isImage, g.int64s([1])]);
    const tokens = g.op('Where', [isImage3, imageRows, textRows]);

    const rowIdx = g.int64s(Array.from({ length: img }, (_, j) => Math.floor(j / n)));
    const colIdx = g.int64s(Array.from({ length: img }, (_, j) => j % n));
    const imagePos = g.op('Add', [
      g.op('Gather', [param(ctx, 'image_row_embeddings.weight'), rowIdx], { axis: attr.int(0) }),
      g.op('Gather', [param(ctx, 'image_col_embeddings.weight'), colIdx], { axis: attr.int(0) }),
    ]);
    const leftPos = g.op('Slice', [param(ctx, 'l_text_pos_embeddings.weight'), g.int64s([0]), g.int64s([l]), g.int64s([0])]);
    const rightPos = g.op('Slice', [param(ctx, 'r_text_pos_embeddings.weight'), g.int64s([0]), g.int64s([cfg.r]), g.int64s([0])]);
    const table = g.op('Concat', [leftPos, imagePos, rightPos], { axis: attr.int(0) });
    const pos = g.op('Gather', [table, positions], { axis: attr.int(0) });

    const x = g.op('Add', [tokens, pos]);
    return g.op('Reshape', [x, g.int64s([-1, cfg.hidden])]);
  });
}
