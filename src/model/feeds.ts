/**
 * The token inputs of every RUDOLPH graph (inference and training): the k new ids (validated,
 * left pads replaced), their absolute positions, and one attention mask per kind the layers use,
 * over `slots` cache slots followed by the new tokens (slots = 0 for graphs without a cache).
 */
import { bool, i64, i64From, type Feeds } from '../onnx/session.js';
import type { RudolphConfig } from './config.js';
import { prepareInputIds } from './layout.js';
import { layerMaskKinds, stepMask } from './masks.js';
import { GRAPH_IO } from './rudolph-graph.js';

/** ids [batch, k] row-major (raw) at positions [start, start+k). */
export function tokenFeeds(cfg: RudolphConfig, ids: ArrayLike<number>, batch: number, start: number, k: number, slots: number): Feeds {
  const feeds: Feeds = {
    [GRAPH_IO.ids]: i64(prepareInputIds(cfg, ids, batch, start, k), [batch, k]),
    [GRAPH_IO.positions]: i64(i64From(Array.from({ length: k }, (_, i) => start + i)), [k]),
  };
  for (const kind of new Set(layerMaskKinds(cfg.numLayers))) feeds[GRAPH_IO.mask(kind)] = bool(stepMask(kind, cfg, start, k, slots), [k, slots + k]);
  return feeds;
}
