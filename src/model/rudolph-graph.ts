/**
 * The whole RUDOLPH forward pass as one ONNX graph (nanoGPT-style: embed → layers →
 * final norm → logits). One graph serves the full forward and cached decoding: it takes the
 * k new tokens, their positions and P cache slots per layer (P = 0 for a plain forward), and
 * returns logits for the chosen new positions plus the new keys/values of every layer.
 */
import { attr, GraphBuilder, type Dim, type Value, type WeightMode } from '../onnx/graph.js';
import type { RudolphConfig } from './config.js';
import { embed, transformerLayer } from './transformer.js';
import { layerNorm, linear, type DropoutHook, type GraphContext, type GraphWeights, type LinearAdapter, type LinearPrecision, type QuantOptions } from './graph-context.js';
import { layerMaskKinds, type MaskKind } from './masks.js';


export interface RudolphGraphOptions {
  precision?: LinearPrecision;
  /** details of the quantised precisions (defaults: DEFAULT_QUANT) */
  quant?: QuantOptions;
  weightMode?: WeightMode;
  /** Also output embeddings, every layer's hidden state and the final-LN output (debugging). */
  debugOutputs?: boolean;
  /** Training graphs: dropout where the official model applies it (inference graphs leave it unset). */
  dropout?: DropoutHook;
  /** Applied to every linear layer's output (LoRA adapters kept separate from the weights). */
  adapter?: LinearAdapter;
  /** false: no KV-cache inputs/outputs, a plain full forward (training graphs). Default true. */
  cache?: boolean;
}

export const GRAPH_IO = {
  ids: 'input_ids',
  positions: 'positions',
  logitsIndex: 'logits_index',
  logits: 'logits',
  targets: 'targets',
  targetLogits: 'target_logits',
  lseText: 'lse_text',
  lseImage: 'lse_image',
  mask: (kind: MaskKind) => `mask_${kind}`,
  pastKey: (i: number) => `past_key_${i}`,
  pastValue: (i: number) => `past_value_${i}`,
  newKey: (i: number) => `new_key_${i}`,
  newValue: (i: number) => `new_value_${i}`,
  hidden: (i: number) => `hidden_${i}`,
} as const;

export interface RudolphGraph {
  g: GraphBuilder;
  /** Token + position embeddings [B·k, h] (the first layer's input) */
  embeddings: Value;
  /** Hidden states [B·k, h] after the last layer (before final_layernorm) */
  lastHidden: Value;
  ctx: GraphContext;
}

/** Builds the graph body; callers add outputs (inference: logits; training: loss and grads). */
export function buildRudolphBody(cfg: RudolphConfig, weights: GraphWeights, opts: RudolphGraphOptions = {}): RudolphGraph & { kinds: MaskKind[] } {
  const g = new GraphBuilder('rudolph', opts.weightMode ?? 'initializer');
  const H = cfg.heads, d = cfg.headDim, h = cfg.hidden;
  const ids = g.input(GRAPH_IO.ids, 'int64', ['batch', 'tokens']);
  const positions = g.input(GRAPH_IO.positions, 'int64', ['tokens']);
  const kinds = layerMaskKinds(cfg.numLayers);
  const masks = new Map<MaskKind, Value>();
  for (const kind of new Set(kinds)) masks.set(kind, g.input(GRAPH_IO.mask(kind), 'bool', ['tokens', 'keys']));
  const ctx: GraphContext = { g, cfg, weights, precision: opts.precision ?? 'fp32', quant: opts.quant, batchTokens: g.op('Shape', [ids]), dropout: opts.dropout, adapter: opts.adapter };

  const embeddings = embed(ctx, ids, positions);
  let x = embeddings;
  const unflat = (v: Value) => g.op('Reshape', [v, g.op('Concat', [ctx.batchTokens, g.int64s([h])], { axis: attr.int(0) })]);
  if (opts.debugOutputs) g.output(unflat(x), 'embeddings', 'float32', ['batch', 'tokens', h]);
  for (let i = 0; i < cfg.numLayers; i++) {
    const cached = opts.cache ?? true;
    const pastKeys = cached ? g.input(GRAPH_IO.pastKey(i), 'float32', ['batch', H, 'past', d]) : undefined;
    const pastValues = cached ? g.input(GRAPH_IO.pastValue(i), 'float32', ['batch', H, 'past', d]) : undefined;
    const layer = transformerLayer(ctx, i, x, { pastKeys, pastValues, mask: masks.get(kinds[i])! });
    x = layer.out;
    if (cached) {
      g.output(layer.newKeys, GRAPH_IO.newKey(i), 'float32', ['batch', H, 'tokens', d]);
      g.output(layer.newValues, GRAPH_IO.newValue(i), 'float32', ['batch', H, 'tokens', d]);
    }
    if (opts.debugOutputs) g.output(unflat(x), GRAPH_IO.hidden(i), 'float32', ['batch', 'tokens', h]);
  }
  if (opts.debugOutputs) g.output(unflat(layerNorm(ctx, x, 'transformer.final_layernorm')), 'transformer_output', 'float32', ['batch', 'tokens', h]);
  return { g, embeddings, lastHidden: x, ctx, kinds };
}

/** final_layernorm → to_logits.0 (LayerNorm) → to_logits.1 (Linear): x [N, h] → [N, W] */
export function logitsHead(ctx: GraphContext, x: Value): Value {
  const normed = layerNorm(ctx, layerNorm(ctx, x, 'transformer.final_layernorm'), 'to_logits.0');
  return linear(ctx, normed, 'to_logits.1');
}

/**
 * The inference graph: logits only for the new positions listed in `logits_index`, plus what
 * scoring needs without copying logits out: the logit of a target column per selected position
 * and the log-sum-exp over the text range [0, V-l) and the image range [V, V+image_vocab).
 * CE of a text target = lse_text - target_logit; of an image target = lse_image - target_logit.
 */
export function buildRudolphGraph(cfg: RudolphConfig, weights: GraphWeights, opts: RudolphGraphOptions = {}): GraphBuilder {
  const { g, lastHidden, ctx } = buildRudolphBody(cfg, weights, opts);
  const index = g.input(GRAPH_IO.logitsIndex, 'int64', ['selected']);
  const targets = g.input(GRAPH_IO.targets, 'int64', ['batch', 'selected']);
  const h = cfg.hidden;
  const x3 = g.op('Reshape', [lastHidden, g.op('Concat', [ctx.batchTokens, g.int64s([h])], { axis: attr.int(0) })]);
  const picked = g.op('Reshape', [g.op('Gather', [x3, index], { axis: attr.int(1) }), g.int64s([-1, h])]);
  const logits = logitsHead(ctx, picked);
  const batch = g.op('Slice', [ctx.batchTokens, g.int64s([0]), g.int64s([1])]);
  const outShape = g.op('Concat', [batch, g.int64s([-1, cfg.logitsWidth])], { axis: attr.int(0) });
  g.output(g.op('Reshape', [logits, outShape]), GRAPH_IO.logits, 'float32', ['batch', 'selected', cfg.logitsWidth] as Dim[]);

  const perPosition = g.op('Concat', [batch, g.int64s([-1])], { axis: attr.int(0) });
  const lse = (c0: number, c1: number) => g.op('Reshape', [
    g.op('ReduceLogSumExp', [g.op('Slice', [logits, g.int64s([c0]), g.int64s([c1]), g.int64s([1])]), g.int64s([1])], { keepdims: attr.int(0) }),
    perPosition,
  ]);
  g.output(lse(0, cfg.textVocab - cfg.l), GRAPH_IO.lseText, 'float32', ['batch', 'selected']);
  g.output(lse(cfg.textVocab, cfg.textVocab + cfg.imageVocab), GRAPH_IO.lseImage, 'float32', ['batch', 'selected']);
  const target = g.op('GatherElements', [logits, g.op('Reshape', [targets, g.int64s([-1, 1])])], { axis: attr.int(1) });
  g.output(g.op('Reshape', [target, perPosition]), GRAPH_IO.targetLogits, 'float32', ['batch', 'selected']);
  return g;
}
