/**
 * Trainer: fine-tuning steps on onnxruntime. Each micro-batch runs one training-graph session
 * (forward + backward; one graph per sequence length), whose weight inputs are the trainer's own
 * Float32Arrays fed zero-copy and updated in place by AdamW. Gradients of micro-batches are
 * summed, then averaged, clipped and applied in `apply` (or all at once in `step`).
 */
import type * as ort from 'onnxruntime-node';
import { InputError } from '../errors.js';
import type { RudolphConfig } from '../model/config.js';
import { tokenFeeds } from '../model/feeds.js';
import { lossFeeds, type LossMode, lossTargets, type LossWeights, OFFICIAL_LOSS_WEIGHTS } from '../model/loss.js';
import { parameterSpecs, type RudolphWeights } from '../model/weights.js';
import { f32, Session, type SessionOptions } from '../onnx/session.js';
import { numel } from '../tensor.js';
import { AdamW, type AdamWOptions, type AdamWState, clipFactor, clipFactorOfNorm } from './adamw.js';
import { TrainingError } from './errors.js';
import { type FreezeOptions, trainableParameters } from './freeze.js';
import { lrSchedule, type LrSchedule, type ScheduleOptions } from './schedule.js';
import { buildTrainGraph, TRAIN_IO } from './train-graph.js';

export interface TrainerOptions extends AdamWOptions, FreezeOptions, SessionOptions {
  /** default 1 / 7 / 1 (the official weights) */
  lossWeights?: LossWeights;
  /** 'official' reproduces the official loss quirk (golden parity); default 'fixed' (see model/loss.ts) */
  lossMode?: LossMode;
  /** dropout as the official model in training (default true) */
  dropout?: boolean;
  /** seed of the dropout masks */
  seed?: number;
  /** clip the global gradient norm to this value (default: no clipping) */
  clipGradNorm?: number;
  /** learning-rate schedule (default constant) */
  schedule?: ScheduleOptions;
}

/** A micro-batch: token ids [batch, T] row-major, raw (left-text zeros are replaced inside). */
export interface Batch { ids: ArrayLike<number>; batch: number }

export interface LossResult { loss: number; left: number; image?: number; right?: number }

export interface TrainStepResult extends LossResult {
  /** global L2 norm of the (averaged) gradient before clipping */
  gradNorm: number;
  /** learning rate used by this update */
  lr: number;
  /** optimizer steps taken after this one */
  step: number;
}

interface TrainSession { session: Session; fetch: string[]; lossOutputs: string[] }

export class Trainer {
  readonly trainable: readonly string[];
  readonly lossWeights: LossWeights;
  readonly lossMode: LossMode;
  private readonly optimizer: AdamW;
  private readonly schedule: LrSchedule;
  private readonly sessions = new Map<number, Promise<TrainSession>>();
  private readonly weightTensors: Record<string, ort.Tensor> = {};
  private grads: Map<string, Float32Array> | null = null;
  private micro: LossResult[] = [];
  /** the graph's gradient norm of the pending gradients while they come from one micro-batch */
  private singleNorm: number | null = null;
  private dropoutSeed: number;

  private constructor(readonly cfg: RudolphConfig, private readonly params: RudolphWeights, private readonly opts: TrainerOptions) {
    this.trainable = trainableParameters(cfg, opts);
    this.lossWeights = opts.lossWeights ?? OFFICIAL_LOSS_WEIGHTS;
    const lw = [this.lossWeights.left, this.lossWeights.image, this.lossWeights.right];
    if (lw.some((w) => !(w >= 0) || !Number.isFinite(w)) || lw.every((w) => w === 0)) {
      throw new TrainingError(`trainer: loss weights must be finite, non-negative and not all zero, got ${lw.join('/')}`);
    }
    this.lossMode = opts.lossMode ?? 'fixed';
    this.optimizer = new AdamW(opts);
    this.schedule = lrSchedule(opts.schedule ?? { kind: 'constant' });
    this.dropoutSeed = opts.seed ?? 0;
    for (const spec of parameterSpecs(cfg)) {
      const data = params.get(spec.name);
      if (!data) throw new TrainingError(`trainer: weights lack parameter ${spec.name}`);
      if (data.length !== numel(spec.shape)) throw new TrainingError(`trainer: parameter ${spec.name} holds ${data.length} values, expected ${numel(spec.shape)} for shape [${spec.shape.join(', ')}]`);
      this.weightTensors[spec.name] = f32(data, spec.shape);
    }
  }

  /**
   * The trainer takes ownership of `weights`: its Float32Arrays are fed to onnxruntime without
   * copies and updated in place by every optimizer step.
   */
  static async create(cfg: RudolphConfig, weights: RudolphWeights, opts: TrainerOptions): Promise<Trainer> {
    return new Trainer(cfg, weights, opts);
  }

  /** The live parameters (updated in place by each step). */
  stateDict(): RudolphWeights { return this.params; }

  /** Optimizer steps taken. */
  get stepCount(): number { return this.optimizer.step; }

  /** Learning rate the next update will use. */
  get currentLr(): number { return this.optimizer.lr * this.schedule(this.optimizer.step); }

  optimizerState(): AdamWState { return this.optimizer.state(); }

  loadOptimizerState(state: AdamWState): void {
    for (const name of state.moments.keys()) {
      if (!this.trainable.includes(name)) throw new TrainingError(`optimizer state: ${name} is not a trainable parameter of this trainer`);
    }
    this.optimizer.loadState(state, this.params);
  }

  /** Forward + backward of one micro-batch; its gradients are added to the pending sum. */
  async accumulate(batch: Batch): Promise<LossResult> {
    const T = batch.ids.length / batch.batch;
    if (!Number.isInteger(batch.batch) || batch.batch < 1 || !Number.isInteger(T)) {
      throw new InputError(`training batch: ${batch.ids.length} ids do not form ${batch.batch} rows`);
    }
    const ts = await this.sessionFor(T);
    const feeds = {
      ...tokenFeeds(this.cfg, batch.ids, batch.batch, 0, T, 0),
      ...lossFeeds(lossTargets(this.cfg, batch.ids, batch.batch, this.lossMode), batch.batch, this.lossWeights),
      ...this.weightTensors,
    };
    const out = await ts.session.run(feeds, ts.fetch);
    const scalar = (name: string) => (out[name] ? (out[name].data as Float32Array)[0] : undefined);
    const result: LossResult = { loss: scalar(TRAIN_IO.loss)!, left: scalar(TRAIN_IO.left)!, image: scalar(TRAIN_IO.image), right: scalar(TRAIN_IO.right) };
    if (!Number.isFinite(result.loss)) throw new TrainingError(`training: the loss is ${result.loss} (diverged or bad batch); no gradients were kept`);
    if (!this.grads) {
      this.grads = new Map(this.trainable.map((name) => [name, out[TRAIN_IO.grad(name)].data as Float32Array]));
      this.singleNorm = Math.sqrt((out[TRAIN_IO.gradNormSq].data as Float32Array)[0]);
    } else {
      this.singleNorm = null;
      for (const [name, sum] of this.grads) {
        const g = out[TRAIN_IO.grad(name)].data as Float32Array;
        for (let i = 0; i < sum.length; i++) sum[i] += g[i];
      }
    }
    this.micro.push(result);
    return result;
  }

  /** Averages the pending gradients over the accumulated micro-batches, clips, and takes one AdamW step. */
  apply(): TrainStepResult {
    if (!this.grads || this.micro.length === 0) throw new TrainingError('trainer: apply() without accumulated gradients');
    const n = this.micro.length;
    // one micro-batch: the graph already summed the squares (saves a pass over every gradient)
    const { norm, factor } = this.singleNorm !== null
      ? clipFactorOfNorm(this.singleNorm, this.opts.clipGradNorm)
      : clipFactor(this.grads.values(), this.opts.clipGradNorm, 1 / n);
    const lr = this.currentLr;
    this.optimizer.apply(this.params, this.grads, { lr, gradScale: factor / n });
    const mean = (f: (r: LossResult) => number | undefined) => {
      const vals = this.micro.map(f).filter((v): v is number => v !== undefined);
      return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : undefined;
    };
    const result: TrainStepResult = {
      loss: mean((r) => r.loss)!, left: mean((r) => r.left)!, image: mean((r) => r.image), right: mean((r) => r.right),
      gradNorm: norm, lr, step: this.optimizer.step,
    };
    this.discardGradients();
    return result;
  }

  /** accumulate() every micro-batch, then apply(). */
  async step(batches: Batch | readonly Batch[]): Promise<TrainStepResult> {
    const list = Array.isArray(batches) ? batches as readonly Batch[] : [batches as Batch];
    if (list.length === 0) throw new TrainingError('trainer: step() needs at least one batch');
    try {
      for (const b of list) await this.accumulate(b);
    } catch (e) {
      this.discardGradients();
      throw e;
    }
    return this.apply();
  }

  /** The pending (summed, unscaled) gradients, for inspection; null when none. */
  pendingGradients(): ReadonlyMap<string, Float32Array> | null { return this.grads; }

  discardGradients(): void {
    this.grads = null;
    this.singleNorm = null;
    this.micro = [];
  }

  /**
   * Restarts the dropout masks from `seed`. onnxruntime's Dropout draws a fixed sequence per
   * session from its seed, so the sessions are rebuilt (lazily, on the next step): a run resumed
   * from a checkpoint that reseeds with the same value sees the same masks as the original run.
   */
  async reseedDropout(seed: number): Promise<void> {
    if (!Number.isInteger(seed)) throw new TrainingError(`dropout seed must be an integer, got ${seed}`);
    this.dropoutSeed = seed;
    if (this.opts.dropout ?? true) await this.release();
  }

  /** Frees the onnxruntime sessions (they are rebuilt if the trainer is used again). */
  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const p of sessions) await (await p).session.release();
  }

  private sessionFor(T: number): Promise<TrainSession> {
    let hit = this.sessions.get(T);
    if (!hit) {
      hit = (async () => {
        const tg = buildTrainGraph(this.cfg, this.params, {
          T, lossMode: this.lossMode, trainable: this.trainable, dropout: this.opts.dropout ?? true, seed: this.dropoutSeed,
        });
        const session = await Session.create(tg.g.toBytes(), `rudolph training graph (T=${T})`, this.opts);
        tg.g.releaseWeights();
        return { session, lossOutputs: tg.lossOutputs, fetch: [...tg.lossOutputs, TRAIN_IO.gradNormSq, ...tg.trainable.map(TRAIN_IO.grad)] };
      })();
      hit.catch(() => this.sessions.delete(T));
      this.sessions.set(T, hit);
    }
    return hit;
  }
}
