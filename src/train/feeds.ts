/**
 * Feeds of a full forward (no KV cache, past length 0) over whole sequences: the same inputs
 * `RudolphModel.forward` builds, for graphs made by `buildRudolphBody` (training graphs).
 */
import type { RudolphConfig } from '../model/config.js';
import { prepareInputIds } from '../model/layout.js';
import { layerMaskKinds, stepMask } from '../model/masks.js';
import { GRAPH_IO } from '../model/rudolph-graph.js';
import { bool, f32, i64, i64From, type Feeds } from '../onnx/session.js';

/** ids [batch, T] row-major (raw: left pads are replaced here) → ids, positions, masks, empty caches. */
export function fullForwardFeeds(cfg: RudolphConfig, ids: ArrayLike<number>, batch: number): Feeds {
  const T = ids.length / batch;
  const feeds: Feeds = {
    [GRAPH_IO.ids]: i64(prepareInputIds(cfg, ids, batch, 0, T), [batch, T]),
    [GRAPH_IO.positions]: i64(i64From(Array.from({ length: T }, (_, i) => i)), [T]),
  };
  for (const kind of new Set(layerMaskKinds(cfg.numLayers))) feeds[GRAPH_IO.mask(kind)] = bool(stepMask(kind, cfg, 0, T, 0), [T, T]);
  const empty = new Float32Array(0);
  for (let i = 0; i < cfg.numLayers; i++) {
    feeds[GRAPH_IO.pastKey(i)] = f32(empty, [batch, cfg.heads, cfg.headDim, 0]);
    feeds[GRAPH_IO.pastValue(i)] = f32(empty, [batch, cfg.heads, 0, cfg.headDim]);
  }
  return feeds;
}
