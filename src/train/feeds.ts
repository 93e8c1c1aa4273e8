/**
 * Feeds of a full forward over whole sequences for graphs built without a KV cache
 * (`buildRudolphBody(..., { cache: false })`, the training graphs): ids, positions, masks.
 */
import type { RudolphConfig } from '../model/config.js';
import { prepareInputIds } from '../model/layout.js';
import { layerMaskKinds, stepMask } from '../model/masks.js';
import { GRAPH_IO } from '../model/rudolph-graph.js';
import { bool, i64, i64From, type Feeds } from '../onnx/session.js';

/** ids [batch, T] row-major (raw: left pads are replaced here) → ids, positions, masks of a graph built with `cache: false`. */
export function fullForwardFeeds(cfg: RudolphConfig, ids: ArrayLike<number>, batch: number): Feeds {
  const T = ids.length / batch;
  const feeds: Feeds = {
    [GRAPH_IO.ids]: i64(prepareInputIds(cfg, ids, batch, 0, T), [batch, T]),
    [GRAPH_IO.positions]: i64(i64From(Array.from({ length: T }, (_, i) => i)), [T]),
  };
  for (const kind of new Set(layerMaskKinds(cfg.numLayers))) feeds[GRAPH_IO.mask(kind)] = bool(stepMask(kind, cfg, 0, T, 0), [T, T]);
  return feeds;
}
