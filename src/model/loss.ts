/**
 * The official training loss (SPEC §8): weighted left-text / image / right-text cross-entropy.
 * `lossTargets` lays out the labels (JS, layout only); `lossSubgraph` adds the math to a graph
 * that holds logits [B, T, W] — the inference loss graph below and the training graph share it.
 *
 * Modes: 'official' reproduces the quirk that the last left-text position is scored against
 * the first image id using TEXT logits; 'fixed' (default) scores it with IMAGE logits.
 */
import { InputError } from '../errors.js';
import { attr, GraphBuilder, type Value } from '../onnx/graph.js';
import { f32, i64, Session, type SessionOptions } from '../onnx/session.js';
import type { RudolphConfig } from './config.js';
import { leftPadId } from './layout.js';

export type LossMode = 'official' | 'fixed';
export interface LossWeights { left: number; image: number; right: number }
export const OFFICIAL_LOSS_WEIGHTS: LossWeights = { left: 1, image: 7, right: 1 };

export interface LossParts { loss: number; left?: number; image?: number; right?: number }

/** Which parts a sequence of length T has; the official code rejects lengths that stop inside the image or right text. */
export function lossParts(cfg: RudolphConfig, T: number): { left: boolean; image: boolean; right: boolean } {
  const { l, imageLength, totalLength } = cfg;
  if (T >= 2 && T <= l) return { left: true, image: false, right: false };
  if (T === l + imageLength) return { left: true, image: true, right: false };
  if (T === totalLength) return { left: true, image: true, right: true };
  throw new InputError(`loss: a sequence of length ${T} is not a whole layout prefix (use 2..${l}, ${l + imageLength} or ${totalLength})`);
}

export interface LossTargets {
  T: number;
  /** [B, nLeft] labels for text logits at positions [0, nLeft) */
  left: BigInt64Array;
  /** [B] label of the last left position scored with image logits ('fixed' mode with an image) */
  leftImage?: BigInt64Array;
  image?: BigInt64Array;
  right?: BigInt64Array;
}

/** Labels for ids [B, T] (raw ids; left pads are replaced here as the model does). */
export function lossTargets(cfg: RudolphConfig, ids: ArrayLike<number>, batch: number, mode: LossMode): LossTargets {
  const T = ids.length / batch;
  const parts = lossParts(cfg, T);
  const { l, imageLength: m } = cfg;
  const leftLen = Math.min(T, l);
  const leftId = (b: number, p: number) => (ids[b * T + p] === 0 ? leftPadId(cfg, p) : ids[b * T + p]);
  const nLeft = parts.image ? (mode === 'official' ? l : l - 1) : leftLen - 1;
  const left = new BigInt64Array(batch * nLeft);
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < nLeft; p++) left[b * nLeft + p] = BigInt(p + 1 < leftLen ? leftId(b, p + 1) : ids[b * T + l]);
  }
  const out: LossTargets = { T, left };
  if (parts.image) {
    if (mode === 'fixed') out.leftImage = BigInt64Array.from({ length: batch }, (_, b) => BigInt(ids[b * T + l]));
    out.image = new BigInt64Array(batch * (m - 1));
    for (let b = 0; b < batch; b++) for (let j = 0; j < m - 1; j++) out.image[b * (m - 1) + j] = BigInt(ids[b * T + l + 1 + j]);
  }
  if (parts.right) {
    const r = cfg.r;
    out.right = new BigInt64Array(batch * (r - 1));
    for (let b = 0; b < batch; b++) for (let j = 0; j < r - 1; j++) out.right[b * (r - 1) + j] = BigInt(ids[b * T + T - r + 1 + j]);
  }
  return out;
}

export const LOSS_IO = {
  weights: 'loss_weights',
  left: 'labels_left', leftImage: 'labels_left_image', image: 'labels_image', right: 'labels_right',
  loss: 'loss', leftLoss: 'l_text_loss', imageLoss: 'image_loss', rightLoss: 'r_text_loss',
} as const;

export interface LossValues { loss: Value; left: Value; image?: Value; right?: Value }

/** Adds the loss over logits [B, T, W] to g; label inputs are declared here. */
export function lossSubgraph(g: GraphBuilder, cfg: RudolphConfig, logits: Value, T: number, mode: LossMode): LossValues {
  return g.scope('loss', () => {
    const parts = lossParts(cfg, T);
    const V = cfg.textVocab, W = cfg.logitsWidth, l = cfg.l, m = cfg.imageLength;
    const slice = (p0: number, p1: number, c0: number, c1: number) =>
      g.op('Reshape', [g.op('Slice', [logits, g.int64s([p0, c0]), g.int64s([p1, c1]), g.int64s([1, 2])]), g.int64s([-1, c1 - c0])]);
    const ce = (scores: Value, labels: Value, reduction: string, ignore?: number) =>
      g.op('SoftmaxCrossEntropyLoss', [scores, labels], { reduction: attr.string(reduction), ...(ignore !== undefined ? { ignore_index: attr.int(ignore) } : {}) });
    const weights = g.input(LOSS_IO.weights, 'float32', [3]);
    const w = (i: number) => g.op('Gather', [weights, g.scalarInt64(i)], { axis: attr.int(0) });

    const nLeft = parts.image ? (mode === 'official' ? l : l - 1) : T - 1;
    const leftLabels = g.op('Reshape', [g.input(LOSS_IO.left, 'int64', ['batch', nLeft]), g.int64s([-1])]);
    let left = ce(slice(0, nLeft, 0, V), leftLabels, 'none');
    if (parts.image && mode === 'fixed') {
      const last = ce(slice(l - 1, l, V, W), g.input(LOSS_IO.leftImage, 'int64', ['batch']), 'none');
      // per-sample order does not matter for a mean
      left = g.op('Concat', [left, last], { axis: attr.int(0) });
    }
    left = g.op('ReduceMean', [left], { keepdims: attr.int(0) });
    const out: LossValues = { loss: left, left };
    const terms: [Value, Value][] = [[left, w(0)]];
    if (parts.image) {
      out.image = ce(slice(l, l + m - 1, V, W), g.op('Reshape', [g.input(LOSS_IO.image, 'int64', ['batch', m - 1]), g.int64s([-1])]), 'mean');
      terms.push([out.image, w(1)]);
    }
    if (parts.right) {
      out.right = ce(slice(T - cfg.r, T - 1, 0, V), g.op('Reshape', [g.input(LOSS_IO.right, 'int64', ['batch', cfg.r - 1]), g.int64s([-1])]), 'mean', 0);
      terms.push([out.right, w(2)]);
    }
    const zero = g.scalarFloat(0);
    let num: Value | null = null, den: Value | null = null;
    for (const [value, weight] of terms) {
      const off = g.op('Equal', [weight, zero]);
      const wv = g.op('Where', [off, zero, g.op('Mul', [weight, value])]);
      num = num ? g.op('Add', [num, wv]) : wv;
      den = den ? g.op('Add', [den, weight]) : weight;
    }
    out.loss = g.op('Div', [num!, den!]);
    return out;
  });
}

/** Feeds for the label inputs of `lossSubgraph`. */
export function lossFeeds(t: LossTargets, batch: number, w: LossWeights): Record<string, ReturnType<typeof i64>> {
  const feeds: Record<string, ReturnType<typeof i64>> = {
    [LOSS_IO.weights]: f32(Float32Array.of(w.left, w.image, w.right), [3]),
    [LOSS_IO.left]: i64(t.left, [batch, t.left.length / batch]),
  };
  if (t.leftImage) feeds[LOSS_IO.leftImage] = i64(t.leftImage, [batch]);
  if (t.image) feeds[LOSS_IO.image] = i64(t.image, [batch, t.image.length / batch]);
  if (t.right) feeds[LOSS_IO.right] = i64(t.right, [batch, t.right.length / batch]);
  return feeds;
}

/** Evaluates the loss from logits [B, T, W] (small graphs, one per sequence length and mode). */
export class LossEvaluator {
  private sessions = new Map<string, Session>();
  constructor(readonly cfg: RudolphConfig, private readonly opts: SessionOptions = {}) {}

  async evaluate(logits: Float32Array, ids: ArrayLike<number>, batch: number, weights: LossWeights = OFFICIAL_LOSS_WEIGHTS, mode: LossMode = 'fixed'): Promise<LossParts> {
    const T = ids.length / batch;
    const targets = lossTargets(this.cfg, ids, batch, mode);
    if (logits.length !== batch * T * this.cfg.logitsWidth) throw new InputError(`loss: logits hold ${logits.length} values, expected ${batch}×${T}×${this.cfg.logitsWidth}`);
    const key = `${T}/${mode}`;
    let session = this.sessions.get(key);
    if (!session) {
      const g = new GraphBuilder('rudolph-loss');
      const x = g.input('logits', 'float32', ['batch', T, this.cfg.logitsWidth]);
      const v = lossSubgraph(g, this.cfg, x, T, mode);
      g.output(v.loss, LOSS_IO.loss, 'float32', []);
      g.output(v.left, LOSS_IO.leftLoss, 'float32', []);
      if (v.image) g.output(v.image, LOSS_IO.imageLoss, 'float32', []);
      if (v.right) g.output(v.right, LOSS_IO.rightLoss, 'float32', []);
      session = await Session.create(g.toBytes(), 'rudolph loss', this.opts);
      this.sessions.set(key, session);
    }
    const out = await session.run({ logits: f32(logits, [batch, T, this.cfg.logitsWidth]), ...lossFeeds(targets, batch, weights) });
    const scalar = (name: string) => (out[name] ? (out[name].data as Float32Array)[0] : undefined);
    return { loss: scalar(LOSS_IO.loss)!, left: scalar(LOSS_IO.leftLoss), image: scalar(LOSS_IO.imageLoss), right: scalar(LOSS_IO.rightLoss) };
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
  }
}
