/**
 * The training graphs. A training step runs the model in segments — embeddings, one graph per
 * transformer layer (shared by every layer: weights, mask, dropout seed and layer index are
 * inputs), and the head with the loss — so that activation memory is one layer's, not the whole
 * model's:
 *
 *   forward:  embed → layer × L (each outputs its hidden state and its linear layers' outputs)
 *             → head + loss + backward of the head
 *   backward: layer × L in reverse, each recomputing its forward pass from the saved values
 *             (only the attention scores and elementwise work are recomputed: the linear
 *             outputs are fed back in — selective activation checkpointing) → embed backward.
 *
 * Every backward graph is `gradients()` of its forward graph, with the saved linear outputs
 * substituted for their recomputation and the dead forward nodes pruned. Dropout masks come
 * from the seed inputs (train/dropout.ts), so a recomputed layer sees its forward masks.
 * Weights are graph inputs, fed zero-copy from the trainer's arrays (frozen ones included:
 * they are never copied, and get no gradient).
 */
import type { RudolphConfig } from '../model/config.js';
import { type GraphContext, type GraphWeights, type LinearAdapter } from '../model/graph-context.js';
import { LOSS_IO, type LossMode, lossParts, lossSubgraph } from '../model/loss.js';
import { linearModules, loraAdapter, type LoraModule, loraSpecs } from '../model/lora.js';
import { layerMaskKinds, type MaskKind } from '../model/masks.js';
import { GRAPH_IO, logitsHead } from '../model/rudolph-graph.js';
import { embed, transformerLayer } from '../model/transformer.js';
import { parameterSpecs } from '../model/weights.js';
import { gradients } from '../onnx/autodiff.js';
import { attr, GraphBuilder, Value } from '../onnx/graph.js';
import { seededDropout } from './dropout.js';
import { TrainingError } from './errors.js';

export const TRAIN_IO = {
  ids: GRAPH_IO.ids,
  positions: GRAPH_IO.positions,
  /** [B, T, h]: a layer's or the head's input, the embeddings' output */
  hidden: 'hidden',
  /** [B, T, h]: a layer's output */
  hiddenOut: 'hidden_out',
  /** gradient with respect to `hidden` (backward graphs' output) */
  gradHidden: 'grad_hidden',
  /** gradient with respect to the segment's output (backward graphs' input) */
  gradOut: 'grad_out',
  mask: 'mask',
  /** uint32 []: the micro-batch's dropout seed */
  seed: 'dropout_seed',
  /** uint32 []: which layer a layer graph is running (dropout keys) */
  layer: 'dropout_layer',
  /** a linear layer's output saved by the forward pass, fed to the backward pass */
  saved: (module: string) => `saved/${module}`,
  grad: (param: string) => `grad/${param}`,
  /** Σ over the segment's trainable tensors of Σ grad² */
  gradNormSq: 'grad_norm_sq',
  loss: LOSS_IO.loss,
  left: LOSS_IO.leftLoss,
  image: LOSS_IO.imageLoss,
  right: LOSS_IO.rightLoss,
} as const;

/**
 * The official model scales the gradient reaching the embeddings by 0.1 (CogView's
 * `x·α + x.detach()·(1-α)` with α = 0.1), leaving their forward value unchanged.
 */
export const EMBEDDING_GRAD_SCALE = 0.1;

/** The embedding tables (read by the embed segment). */
export const EMBEDDING_PARAMS = [
  'text_embeddings.weight', 'image_embeddings.weight', 'l_text_pos_embeddings.weight', 'r_text_pos_embeddings.weight',
  'image_row_embeddings.weight', 'image_col_embeddings.weight',
] as const;

/** Layer graphs are built for layer 0; layer i's tensors are fed under layer 0's names. */
export const LAYER0 = 'transformer.layers.0.';

export function layerPrefix(i: number): string {
  return `transformer.layers.${i}.`;
}

/** What a segment adapts and trains. Names are full names (layer graphs: layer 0's). */
export interface SegmentSpec {
  /** base parameters that get gradients */
  trainable: readonly string[];
  /** LoRA-adapted linear layers (their A and B get gradients) */
  lora: ReadonlyMap<string, LoraModule>;
}

/** A built segment graph and the names of what it outputs. */
export interface SegmentGraph {
  g: GraphBuilder;
  /** tensors whose gradients are outputs `grad/<name>` (trainable base parameters, then LoRA tensors) */
  grads: string[];
  /** linear layers whose outputs are saved (`saved/<module>`), forward layer graphs */
  saved: string[];
  /** names of the loss outputs (head graphs) */
  lossOutputs: string[];
}

const EMPTY = new Float32Array(0);

/** Shapes only: segment graphs take every tensor as an input, fed at run time. */
function placeholders(names: Iterable<string>): Map<string, Float32Array> {
  return new Map([...names].map((n) => [n, EMPTY]));
}

/**
 * Dropout of a segment graph: none (evaluation), keyed by a layer-index input (the shared layer
 * graph), or by the layer number in each site's name (graphs holding real layers). Both keyings
 * give a layer the same masks.
 */
type SegmentDropout = 'none' | 'layer-input' | 'by-name';

function context(g: GraphBuilder, cfg: RudolphConfig, batchTokens: Value, spec: SegmentSpec, dropout: SegmentDropout, onLinear?: (module: string, y: Value) => void): GraphContext {
  const loraShapes = loraSpecs(cfg, spec.lora);
  const lora = spec.lora.size ? loraAdapter(spec.lora, placeholders(loraShapes.map((s) => s.name)), loraShapes) : undefined;
  const adapter: LinearAdapter = (ctx, x, prefix, y) => {
    const out = lora ? lora(ctx, x, prefix, y) : y;
    onLinear?.(prefix, out);
    return out;
  };
  const weights: GraphWeights = placeholders(parameterSpecs(cfg).map((s) => s.name));
  const ctx: GraphContext = { g, cfg, weights, precision: 'fp32', batchTokens, adapter };
  if (dropout !== 'none') {
    const seed = g.input(TRAIN_IO.seed, 'uint32', []);
    const layer = dropout === 'layer-input' ? g.input(TRAIN_IO.layer, 'uint32', []) : undefined;
    ctx.dropout = seededDropout({ seed, layer });
  }
  return ctx;
}

/** Trainable tensors of a segment, base parameters first, as graph values. */
function trainableValues(cfg: RudolphConfig, g: GraphBuilder, spec: SegmentSpec): { names: string[]; values: Value[] } {
  const names = [...spec.trainable, ...loraSpecs(cfg, spec.lora).map((s) => s.name)];
  const values = names.map((name) => {
    if (!g.declared(name)) throw new TrainingError(`training graph: ${name} is not used by its segment`);
    return new Value(name);
  });
  return { names, values };
}

function outputGrads(cfg: RudolphConfig, g: GraphBuilder, spec: SegmentSpec, names: string[], grads: Value[]): void {
  const shapes = new Map([...parameterSpecs(cfg), ...loraSpecs(cfg, spec.lora)].map((s) => [s.name, s.shape]));
  names.forEach((name, i) => g.output(grads[i], TRAIN_IO.grad(name), 'float32', shapes.get(name)!));
  const squares = grads.map((v) => g.op('ReduceSumSquare', [v], { keepdims: attr.int(0) }));
  if (squares.length) g.output(squares.length === 1 ? squares[0] : g.op('Sum', squares), TRAIN_IO.gradNormSq, 'float32', []);
}

function linearWidths(cfg: RudolphConfig): Map<string, number> {
  return new Map(linearModules(cfg).map((m) => [m.name, m.out]));
}

// ---- transformer layers ----------------------------------------------------------------------

function layerBody(cfg: RudolphConfig, spec: SegmentSpec, dropout: boolean) {
  const g = new GraphBuilder('rudolph-layer', 'input');
  const h = cfg.hidden;
  const hidden = g.input(TRAIN_IO.hidden, 'float32', ['batch', 'tokens', h]);
  const mask = g.input(TRAIN_IO.mask, 'bool', ['tokens', 'tokens']);
  const batchTokens = g.op('Shape', [hidden], { end: attr.int(2) });
  const linears = new Map<string, Value>();
  const ctx = context(g, cfg, batchTokens, spec, dropout ? 'layer-input' : 'none', (module, y) => linears.set(module, y));
  const x = g.op('Reshape', [hidden, g.int64s([-1, h])]);
  const layer = transformerLayer(ctx, 0, x, { mask });
  const out = g.op('Reshape', [layer.out, g.op('Shape', [hidden])]);
  return { g, hidden, out, linears };
}

export interface LayerForwardOptions {
  /** dropout from the seed inputs (training); false: evaluation */
  dropout: boolean;
  /** also output the linear layers' outputs for the backward pass */
  save: boolean;
}

/** hidden [B, T, h] → hidden_out (+ saved/<module> [B·T, out] per linear layer). */
export function buildLayerForward(cfg: RudolphConfig, spec: SegmentSpec, o: LayerForwardOptions): SegmentGraph {
  const { g, out, linears } = layerBody(cfg, spec, o.dropout);
  g.output(out, TRAIN_IO.hiddenOut, 'float32', ['batch', 'tokens', cfg.hidden]);
  const saved: string[] = [];
  if (o.save) {
    const widths = linearWidths(cfg);
    for (const [module, y] of linears) {
      g.output(y, TRAIN_IO.saved(module), 'float32', ['batch*tokens', widths.get(module)!]);
      saved.push(module);
    }
  }
  return { g, grads: [], saved, lossOutputs: [] };
}

export interface LayerBackwardOptions {
  /** dropout as in the forward pass */
  dropout: boolean;
  /** the forward pass saved the linear outputs (else everything is recomputed) */
  saved: boolean;
  /** output grad_hidden (false for the lowest layer with nothing trainable below it) */
  inputGrad: boolean;
}

/**
 * (hidden, saved linear outputs, grad_out) → grad_hidden + grad/<tensor> + grad_norm_sq: the
 * forward pass recomputed from its saved values, then the backward pass.
 */
export function buildLayerBackward(cfg: RudolphConfig, spec: SegmentSpec, o: LayerBackwardOptions): SegmentGraph {
  const { g, hidden, out, linears } = layerBody(cfg, spec, o.dropout);
  const gradOut = g.input(TRAIN_IO.gradOut, 'float32', ['batch', 'tokens', cfg.hidden]);
  const { names, values } = trainableValues(cfg, g, spec);
  const wrt = o.inputGrad ? [hidden, ...values] : values;
  if (wrt.length === 0) throw new TrainingError('training graph: a layer backward pass with nothing to differentiate');
  const grads = gradients(g, out, wrt, { outputGrad: gradOut });
  if (o.inputGrad) g.output(grads.shift()!, TRAIN_IO.gradHidden, 'float32', ['batch', 'tokens', cfg.hidden]);
  outputGrads(cfg, g, spec, names, grads);
  const saved: string[] = [];
  if (o.saved) {
    const widths = linearWidths(cfg);
    for (const [module, y] of linears) {
      g.substitute(y, g.input(TRAIN_IO.saved(module), 'float32', ['batch*tokens', widths.get(module)!]));
      saved.push(module);
    }
  }
  g.prune();
  return { g, grads: names, saved, lossOutputs: [] };
}

// ---- embeddings ------------------------------------------------------------------------------

/**
 * ids [B, T], positions [T] → hidden [B, T, h]; with trainable tables, the backward graph instead:
 * (ids, positions, grad_out) → grad/<table> (scaled by EMBEDDING_GRAD_SCALE as the official model).
 */
export function buildEmbedGraph(cfg: RudolphConfig, trainable: readonly string[] | null): SegmentGraph {
  const g = new GraphBuilder('rudolph-embed', 'input');
  const ids = g.input(TRAIN_IO.ids, 'int64', ['batch', 'tokens']);
  const positions = g.input(TRAIN_IO.positions, 'int64', ['tokens']);
  const batchTokens = g.op('Shape', [ids]);
  const spec: SegmentSpec = { trainable: trainable ?? [], lora: new Map() };
  const ctx = context(g, cfg, batchTokens, spec, 'none');
  const x = embed(ctx, ids, positions);
  const out = g.op('Reshape', [x, g.op('Concat', [batchTokens, g.int64s([cfg.hidden])], { axis: attr.int(0) })]);
  if (!trainable) {
    g.output(out, TRAIN_IO.hidden, 'float32', ['batch', 'tokens', cfg.hidden]);
    return { g, grads: [], saved: [], lossOutputs: [] };
  }
  const gradOut = g.input(TRAIN_IO.gradOut, 'float32', ['batch', 'tokens', cfg.hidden]);
  const { names, values } = trainableValues(cfg, g, spec);
  const grads = gradients(g, out, values, { outputGrad: gradOut, scale: [{ value: x, factor: EMBEDDING_GRAD_SCALE }] });
  outputGrads(cfg, g, spec, names, grads);
  g.prune();
  return { g, grads: names, saved: [], lossOutputs: [] };
}

// ---- top layers, head and loss --------------------------------------------------------------

export interface HeadGraphOptions {
  /** sequence length (the loss layout depends on it) */
  T: number;
  lossMode: LossMode;
  /** false: the loss only (evaluation) */
  grads: boolean;
  /** dropout from the seed input (training) */
  dropout: boolean;
  /**
   * The first layer the graph holds (default numLayers: the head alone). Layers from here up run
   * in this one graph, forward and backward together: no recomputation and no saved values to
   * copy out, for the memory of their activations.
   */
  firstLayer?: number;
  /** output grad_hidden (false when nothing below the graph trains) */
  inputGrad?: boolean;
}

/**
 * hidden [B, T, h] (the input of layer `firstLayer`) → the top layers → final LayerNorm → logits
 * → the official loss; for training also grad_hidden, grad/<tensor> of the graph's trainable
 * tensors and grad_norm_sq. Layers keep their own names here (weights fed as they are).
 */
export function buildHeadGraph(cfg: RudolphConfig, spec: SegmentSpec, o: HeadGraphOptions): SegmentGraph {
  lossParts(cfg, o.T); // validates T
  const first = o.firstLayer ?? cfg.numLayers;
  if (!Number.isInteger(first) || first < 0 || first > cfg.numLayers) throw new TrainingError(`training graph: first layer ${first} is outside [0, ${cfg.numLayers}]`);
  const g = new GraphBuilder(first < cfg.numLayers ? 'rudolph-top' : 'rudolph-head', 'input');
  const h = cfg.hidden;
  const hidden = g.input(TRAIN_IO.hidden, 'float32', ['batch', o.T, h]);
  const batchTokens = g.op('Shape', [hidden], { end: attr.int(2) });
  const ctx = context(g, cfg, batchTokens, spec, o.dropout ? 'by-name' : 'none');
  let x = g.op('Reshape', [hidden, g.int64s([-1, h])]);
  const kinds = layerMaskKinds(cfg.numLayers);
  const masks = new Map<MaskKind, Value>();
  for (let i = first; i < cfg.numLayers; i++) {
    let mask = masks.get(kinds[i]);
    if (!mask) { mask = g.input(GRAPH_IO.mask(kinds[i]), 'bool', [o.T, o.T]); masks.set(kinds[i], mask); }
    x = transformerLayer(ctx, i, x, { mask }).out;
  }
  const logits2 = logitsHead(ctx, x);
  const logits = g.op('Reshape', [logits2, g.op('Concat', [batchTokens, g.int64s([cfg.logitsWidth])], { axis: attr.int(0) })]);
  const loss = lossSubgraph(g, cfg, logits, o.T, o.lossMode);
  g.output(loss.loss, TRAIN_IO.loss, 'float32', []);
  g.output(loss.left, TRAIN_IO.left, 'float32', []);
  const lossOutputs: string[] = [TRAIN_IO.loss, TRAIN_IO.left];
  if (loss.image) { g.output(loss.image, TRAIN_IO.image, 'float32', []); lossOutputs.push(TRAIN_IO.image); }
  if (loss.right) { g.output(loss.right, TRAIN_IO.right, 'float32', []); lossOutputs.push(TRAIN_IO.right); }
  if (!o.grads) return { g, grads: [], saved: [], lossOutputs };
  const { names, values } = trainableValues(cfg, g, spec);
  const inputGrad = o.inputGrad ?? true;
  const wrt = inputGrad ? [hidden, ...values] : values;
  if (wrt.length === 0) throw new TrainingError('training graph: nothing to differentiate');
  const grads = gradients(g, loss.loss, wrt);
  if (inputGrad) g.output(grads.shift()!, TRAIN_IO.gradHidden, 'float32', ['batch', o.T, h]);
  outputGrads(cfg, g, spec, names, grads);
  return { g, grads: names, saved: [], lossOutputs };
}
