/**
 * The training graph: the RUDOLPH body with weights as graph inputs (fed zero-copy from the
 * trainer's Float32Arrays), logits for every position, the official weighted loss, and the
 * backward pass appended by autodiff. Outputs: the loss, its three parts, and one gradient per
 * trainable parameter (frozen ones are fed but never differentiated).
 *
 * The loss layout depends on the sequence length T, so there is one graph per T; the batch
 * dimension is dynamic.
 */
import type { RudolphConfig } from '../model/config.js';
import type { DropoutHook } from '../model/graph-context.js';
import { LOSS_IO, type LossMode, lossParts, lossSubgraph } from '../model/loss.js';
import { buildRudolphBody, logitsHead } from '../model/rudolph-graph.js';
import { parameterSpecs, type RudolphWeights } from '../model/weights.js';
import { gradients } from '../onnx/autodiff.js';
import { attr, type GraphBuilder, Value } from '../onnx/graph.js';
import { TrainingError } from './errors.js';

export interface TrainGraphOptions {
  /** Sequence length (2..l, l+n² or the full layout length). */
  T: number;
  lossMode: LossMode;
  /** Parameters that get gradients, in any order (default: all). */
  trainable?: readonly string[];
  /**
   * Dropout where the official model applies it: the attention probabilities
   * (attention_dropout_prob), the attention output after its ±65504 clamp and the MLP output
   * (output_dropout_prob). The official ruDolphModel builds an embedding dropout but never
   * applies it, so neither do we.
   */
  dropout?: boolean;
  /** Seed of the dropout masks (each Dropout node gets seed + its index). */
  seed?: number;
}

export const TRAIN_IO = {
  loss: LOSS_IO.loss,
  left: LOSS_IO.leftLoss,
  image: LOSS_IO.imageLoss,
  right: LOSS_IO.rightLoss,
  grad: (param: string) => `grad/${param}`,
  /** Σ over trainable parameters of Σ grad² (the squared global gradient norm of this batch) */
  gradNormSq: 'grad_norm_sq',
} as const;

/**
 * The official model scales the gradient reaching the embeddings by 0.1 (CogView's
 * `x·α + x.detach()·(1-α)` with α = 0.1), leaving their forward value unchanged.
 */
export const EMBEDDING_GRAD_SCALE = 0.1;

export interface TrainGraph {
  g: GraphBuilder;
  T: number;
  /** Trainable parameters in official order; their gradients are outputs `grad/<name>`. */
  trainable: string[];
  /** Names of the loss outputs present for this T. */
  lossOutputs: string[];
}

export function buildTrainGraph(cfg: RudolphConfig, weights: RudolphWeights, opts: TrainGraphOptions): TrainGraph {
  const { T } = opts;
  lossParts(cfg, T); // validates T
  const specs = parameterSpecs(cfg);
  const known = new Set(specs.map((s) => s.name));
  const wanted = new Set(opts.trainable ?? known);
  for (const name of wanted) if (!known.has(name)) throw new TrainingError(`training graph: ${name} is not a parameter of this model`);
  if (wanted.size === 0) throw new TrainingError('training graph: no trainable parameter');

  let dropoutIndex = 0;
  const seed = opts.seed ?? 0;
  const dropout: DropoutHook = (g, x, p) => g.opN('Dropout', [x, g.scalarFloat(p), g.constant('training', 'bool', [], Uint8Array.of(1))], {
    seed: attr.int(seed + dropoutIndex++),
  }, 2)[0];
  const body = buildRudolphBody(cfg, weights, { weightMode: 'input', cache: false, dropout: opts.dropout ? dropout : undefined });
  const { g, ctx } = body;

  const logits2 = logitsHead(ctx, body.lastHidden);
  const logits = g.op('Reshape', [logits2, g.op('Concat', [ctx.batchTokens, g.int64s([cfg.logitsWidth])], { axis: attr.int(0) })]);
  const loss = lossSubgraph(g, cfg, logits, T, opts.lossMode);

  const trainable = specs.map((s) => s.name).filter((n) => wanted.has(n));
  const wrt = trainable.map((name) => {
    if (!g.declared(name)) throw new TrainingError(`training graph: parameter ${name} is not used by the graph`);
    return new Value(name);
  });
  const grads = gradients(g, loss.loss, wrt, { scale: [{ value: body.embeddings, factor: EMBEDDING_GRAD_SCALE }] });

  g.output(loss.loss, TRAIN_IO.loss, 'float32', []);
  g.output(loss.left, TRAIN_IO.left, 'float32', []);
  const lossOutputs: string[] = [TRAIN_IO.loss, TRAIN_IO.left];
  if (loss.image) { g.output(loss.image, TRAIN_IO.image, 'float32', []); lossOutputs.push(TRAIN_IO.image); }
  if (loss.right) { g.output(loss.right, TRAIN_IO.right, 'float32', []); lossOutputs.push(TRAIN_IO.right); }
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  trainable.forEach((name, i) => g.output(grads[i], TRAIN_IO.grad(name), 'float32', shapes.get(name)!));
  const squares = grads.map((v) => g.op('ReduceSumSquare', [v], { keepdims: attr.int(0) }));
  g.output(g.op('Sum', squares), TRAIN_IO.gradNormSq, 'float32', []);
  return { g, T, trainable, lossOutputs };
}
