/**
 * Trainer: fine-tuning steps on onnxruntime, either of the model's own weights (full
 * fine-tuning, optionally with frozen parts) or of LoRA adapters over a frozen base.
 *
 * A micro-batch runs the segment graphs of train/train-graph.ts: embeddings; the forward pass
 * of each lower layer (keeping its input, and maybe its linear layers' outputs); the top layers,
 * head and loss forward and backward in one graph; each lower layer's backward pass in reverse,
 * recomputing what it did not keep; the embeddings' backward pass. An activation-memory budget
 * decides, per micro-batch shape, how each layer is kept (see `layerPlan`), fastest first where
 * it fits: whole in the top graph, or its linear outputs (attention recomputed), or only its
 * input (the whole layer recomputed).
 *
 * Weights — trained or frozen — are the trainer's Float32Arrays, fed zero-copy and updated in
 * place by AdamW; gradients are summed per segment, as they come back, into buffers allocated once. Dropout masks are a function of
 * (seed, optimizer step, micro-batch) alone, so checkpoints and resumes never change them.
 */
import { InputError } from '../errors.js';
import type { RudolphConfig } from '../model/config.js';
import { tokenFeeds } from '../model/feeds.js';
import { lossFeeds, type LossMode, lossTargets, type LossWeights, OFFICIAL_LOSS_WEIGHTS } from '../model/loss.js';
import { initLoraWeights, type LoraOptions, type LoraSetup, loraSetup, loraSpecs } from '../model/lora.js';
import { layerMaskKinds } from '../model/masks.js';
import { GRAPH_IO } from '../model/rudolph-graph.js';
import { parameterSpecs, type RudolphWeights } from '../model/weights.js';
import type { GraphBuilder } from '../onnx/graph.js';
import { f32, type Feeds, Session, type SessionOptions, u32 } from '../onnx/session.js';
import type { Tensor } from '../runtime/types.js';
import { numel } from '../tensor.js';
import { AdamW, type AdamWOptions, type AdamWState, clipFactor, clipFactorOfNorm } from './adamw.js';
import { microBatchSeed } from './dropout.js';
import { TrainingError } from './errors.js';
import { type FreezeOptions, trainableParameters } from './freeze.js';
import { lrSchedule, type LrSchedule, type ScheduleOptions } from './schedule.js';
import {
  buildEmbedGraph, buildHeadGraph, buildLayerBackward, buildLayerForward, EMBEDDING_PARAMS, LAYER0, layerPrefix,
  type SegmentGraph, type SegmentSpec, TRAIN_IO,
} from './train-graph.js';

export interface TrainerOptions extends AdamWOptions, FreezeOptions, SessionOptions {
  /** default 1 / 7 / 1 (the official weights) */
  lossWeights?: LossWeights;
  /** 'official' reproduces the official loss quirk (golden parity); default 'fixed' (see model/loss.ts) */
  lossMode?: LossMode;
  /** dropout as the official model in training (default true) */
  dropout?: boolean;
  /** seed of the dropout masks and of the LoRA initialisation */
  seed?: number;
  /** clip the global gradient norm to this value (default: no clipping) */
  clipGradNorm?: number;
  /** learning-rate schedule (default constant) */
  schedule?: ScheduleOptions;
  /** train LoRA adapters of these layers instead of the model's weights (which stay frozen) */
  lora?: LoraOptions;
  /** the adapters' starting tensors (default: PEFT's initialisation from `seed`) */
  loraWeights?: ReadonlyMap<string, Float32Array>;
  /**
   * bytes of activations kept per micro-batch (default 1.5 GiB): more is faster (less
   * recomputation), less fits bigger models (see `layerPlan`)
   */
  activationMemory?: number;
}

/** The default activation-memory budget (bytes). */
export const DEFAULT_ACTIVATION_MEMORY = 1.5 * 2 ** 30;

/**
 * How the layers of a micro-batch of B rows of length T are kept for the backward pass:
 *  - `fused` top layers run in one graph with the head (activations stay in onnxruntime,
 *    ≈ 4·B·(3·H·T² + 25·T·h) bytes each): nothing recomputed or copied out;
 *  - the `saved` layers below keep their input and linear outputs (4·B·T·10h bytes): their
 *    backward pass recomputes the attention only;
 *  - the rest keep their input (4·B·T·h bytes): their backward pass recomputes the layer.
 * Within `budget` bytes, recomputing matrix products is avoided first (the best time saved per
 * byte), then whole layers are fused from the top.
 */
export interface LayerPlan { fused: number; saved: number }

export function layerPlan(cfg: RudolphConfig, B: number, T: number, budget: number): LayerPlan {
  const L = cfg.numLayers, h = cfg.hidden;
  const fusedBytes = 4 * B * (3 * cfg.heads * T * T + 25 * T * h);
  const savedBytes = 4 * B * T * 10 * h;
  const inputBytes = 4 * B * T * h;
  let saved = Math.max(0, Math.min(L, Math.floor((budget - L * inputBytes) / (savedBytes - inputBytes))));
  let cost = saved * savedBytes + (L - saved) * inputBytes;
  let fused = 0;
  while (fused < L) {
    const more = fusedBytes - (saved > 0 ? savedBytes : inputBytes);
    if (cost + more > budget) break;
    cost += more;
    fused++;
    if (saved > 0) saved--;
  }
  return { fused, saved };
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

/** One segment's trainable names and how its graph names map to the model's. */
interface Segment {
  spec: SegmentSpec;
  /** graph name (layer 0's) → the model's name, for every tensor fed or differentiated */
  names: Map<string, string>;
  /** zero-copy tensors of every weight the segment reads, by graph name */
  feeds: Feeds;
}

export class Trainer {
  /** the trained tensors' names: base parameters (official order) or LoRA tensors */
  readonly trainable: readonly string[];
  readonly lossWeights: LossWeights;
  readonly lossMode: LossMode;
  /** the LoRA setup, or null for full fine-tuning */
  readonly lora: LoraSetup | null;
  private readonly optimizer: AdamW;
  private readonly schedule: LrSchedule;
  /** trained tensors by name (views of the base weights, or the adapters) */
  private readonly tensors = new Map<string, Float32Array>();
  private readonly loraTensors = new Map<string, Float32Array>();
  private readonly embedding: Segment;
  private readonly layers: Segment[] = [];
  /** the top graph's segment (layers from the key up + head), by first layer */
  private readonly tops = new Map<number, Segment>();
  private readonly makeTop: (first: number) => Segment;
  /** backward passes run for layers ≥ this (numLayers: none) */
  private readonly lowestBackward: number;
  private readonly sessions = new Map<string, Promise<{ session: Session; graph: SegmentGraph }>>();
  /** pending gradient sums (views of `gradBuffers`), null when none */
  private grads: Map<string, Float32Array> | null = null;
  /** one buffer per trained tensor, allocated at the first step and reused */
  private readonly gradBuffers = new Map<string, Float32Array>();
  private micro: LossResult[] = [];
  private normSq = 0;
  private readonly seed: number;

  private constructor(readonly cfg: RudolphConfig, private readonly params: RudolphWeights, private readonly opts: TrainerOptions) {
    this.lossWeights = opts.lossWeights ?? OFFICIAL_LOSS_WEIGHTS;
    const lw = [this.lossWeights.left, this.lossWeights.image, this.lossWeights.right];
    if (lw.some((w) => !(w >= 0) || !Number.isFinite(w)) || lw.every((w) => w === 0)) {
      throw new TrainingError(`trainer: loss weights must be finite, non-negative and not all zero, got ${lw.join('/')}`);
    }
    this.lossMode = opts.lossMode ?? 'fixed';
    this.optimizer = new AdamW(opts);
    this.schedule = lrSchedule(opts.schedule ?? { kind: 'constant' });
    this.seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new TrainingError(`trainer: seed must be a non-negative integer, got ${this.seed}`);
    if (opts.activationMemory !== undefined && !(opts.activationMemory >= 0)) throw new TrainingError(`trainer: activationMemory must be a number of bytes ≥ 0, got ${opts.activationMemory}`);
    for (const spec of parameterSpecs(cfg)) {
      const data = params.get(spec.name);
      if (!data) throw new TrainingError(`trainer: weights lack parameter ${spec.name}`);
      if (data.length !== numel(spec.shape)) throw new TrainingError(`trainer: parameter ${spec.name} holds ${data.length} values, expected ${numel(spec.shape)} for shape [${spec.shape.join(', ')}]`);
    }

    if (opts.lora) {
      if (opts.freeze?.length || opts.trainOnly?.length) throw new TrainingError('trainer: freeze / trainOnly choose base parameters to train; with LoRA the base is frozen (choose adapted layers with lora.targets)');
      this.lora = loraSetup(cfg, opts.lora);
      const init = opts.loraWeights ?? initLoraWeights(cfg, this.lora.modules, this.seed);
      for (const spec of loraSpecs(cfg, this.lora.modules)) {
        const data = init.get(spec.name);
        if (!data || data.length !== numel(spec.shape)) throw new TrainingError(`trainer: LoRA tensor ${spec.name} ${data ? `holds ${data.length} values, expected ${numel(spec.shape)}` : 'is missing'}`);
        this.loraTensors.set(spec.name, data);
        this.tensors.set(spec.name, data);
      }
    } else {
      this.lora = null;
      for (const name of trainableParameters(cfg, opts)) this.tensors.set(name, params.get(name)!);
    }
    this.trainable = [...this.tensors.keys()];

    const trained = new Set(this.trainable);
    const shapes = new Map(parameterSpecs(cfg).map((s) => [s.name, s.shape]));
    const all = [...shapes.keys()];
    const modules = this.lora?.modules ?? new Map();
    const segment = (prefix: string | null, paramNames: string[], moduleNames: string[]): Segment => {
      const local = (name: string) => (prefix ? LAYER0 + name.slice(prefix.length) : name);
      const names = new Map<string, string>();
      const feeds: Feeds = {};
      for (const name of paramNames) {
        names.set(local(name), name);
        feeds[local(name)] = f32(params.get(name)!, shapes.get(name)!);
      }
      const lora = new Map(moduleNames.map((m) => [local(m), modules.get(m)!]));
      for (const spec of loraSpecs(cfg, new Map(moduleNames.map((m) => [m, modules.get(m)!])))) {
        names.set(local(spec.name), spec.name);
        feeds[local(spec.name)] = f32(this.loraTensors.get(spec.name)!, spec.shape);
      }
      return { spec: { trainable: paramNames.filter((n) => trained.has(n)).map(local), lora }, names, feeds };
    };
    const embeddingNames: readonly string[] = EMBEDDING_PARAMS;
    this.embedding = segment(null, all.filter((n) => embeddingNames.includes(n)), []);
    for (let i = 0; i < cfg.numLayers; i++) {
      const p = layerPrefix(i);
      this.layers.push(segment(p, all.filter((n) => n.startsWith(p)), [...modules.keys()].filter((m) => m.startsWith(p))));
    }
    const inTop = (first: number) => (n: string) => n.startsWith('transformer.final_layernorm.') || n.startsWith('to_logits.')
      || (n.startsWith('transformer.layers.') && Number(n.split('.')[2]) >= first);
    this.makeTop = (first) => segment(null, all.filter(inTop(first)), [...modules.keys()].filter(inTop(first)));
    const trainsLayer = (s: Segment) => s.spec.trainable.length > 0 || s.spec.lora.size > 0;
    const lowest = this.embedding.spec.trainable.length ? 0 : this.layers.findIndex(trainsLayer);
    this.lowestBackward = lowest < 0 ? cfg.numLayers : lowest;
  }

  /**
   * The trainer takes ownership of `weights`: its Float32Arrays are fed to onnxruntime without
   * copies and (full fine-tuning) updated in place by every optimizer step.
   */
  static async create(cfg: RudolphConfig, weights: RudolphWeights, opts: TrainerOptions): Promise<Trainer> {
    return new Trainer(cfg, weights, opts);
  }

  /** The model's weights (updated in place by each step of full fine-tuning; frozen under LoRA). */
  stateDict(): RudolphWeights { return this.params; }

  /** The trained tensors by name (updated in place by each step). */
  trainedTensors(): ReadonlyMap<string, Float32Array> { return this.tensors; }

  /** The LoRA tensors (A and B of every adapted layer); empty for full fine-tuning. */
  adapterTensors(): ReadonlyMap<string, Float32Array> { return this.loraTensors; }

  /** Optimizer steps taken. */
  get stepCount(): number { return this.optimizer.step; }

  /** Learning rate the next update will use. */
  get currentLr(): number { return this.optimizer.lr * this.schedule(this.optimizer.step); }

  optimizerState(): AdamWState { return this.optimizer.state(); }

  loadOptimizerState(state: AdamWState): void {
    for (const name of state.moments.keys()) {
      if (!this.tensors.has(name)) throw new TrainingError(`optimizer state: ${name} is not a trainable parameter of this trainer`);
    }
    this.optimizer.loadState(state, this.tensors);
  }

  /**
   * Forward + backward of one micro-batch; its gradients are added to the pending sum. A micro-batch
   * that fails discards the pending gradients (its sums would be partial) and throws.
   */
  async accumulate(batch: Batch): Promise<LossResult> {
    try {
      return await this.accumulateOne(batch);
    } catch (e) {
      this.discardGradients();
      throw e;
    }
  }

  private async accumulateOne(batch: Batch): Promise<LossResult> {
    const { T, tokens } = this.prepare(batch);
    const seed = u32(Uint32Array.of(microBatchSeed(this.seed, this.optimizer.step, this.micro.length)), []);
    const dropout = this.opts.dropout ?? true;
    const kinds = layerMaskKinds(this.cfg.numLayers);
    const plan = this.plan(batch.batch, T);
    const L = this.cfg.numLayers - plan.fused;
    const save = (i: number) => i >= L - plan.saved;

    // forward through the lower layers: keep each one's input (and its linear outputs) for the backward pass
    let hidden = (await this.run('embed', () => buildEmbedGraph(this.cfg, null), { ...tokens, ...this.embedding.feeds }))[TRAIN_IO.hidden];
    const inputs: (Tensor | null)[] = [this.lowestBackward === 0 ? hidden : null];
    const saved: (Feeds | null)[] = [];
    for (let i = 0; i < L; i++) {
      const layer = this.layers[i];
      const backward = i >= this.lowestBackward;
      const keepLinear = save(i) && backward;
      const key = `forward:${dropout}:${keepLinear}:${signature(layer.spec.lora)}`;
      const out = await this.run(key, () => buildLayerForward(this.cfg, layer.spec, { dropout, save: keepLinear }), {
        [TRAIN_IO.hidden]: hidden, [TRAIN_IO.mask]: tokens[GRAPH_IO.mask(kinds[i])], ...layer.feeds, ...this.seedFeeds(dropout, seed, i),
      });
      hidden = out[TRAIN_IO.hiddenOut];
      inputs.push(i + 1 >= this.lowestBackward && i + 1 < L ? hidden : null);
      const keep: Feeds = {};
      for (const [name, t] of Object.entries(out)) if (name.startsWith('saved/')) keep[name] = t;
      saved.push(keep);
    }

    // the top layers and the head: the loss and the first gradients
    const top = this.top(L);
    const inputGrad = this.lowestBackward < L || this.embedding.spec.trainable.length > 0;
    const head = await this.run(`top:${L}:${T}:train:${dropout}:${inputGrad}`, () => buildHeadGraph(this.cfg, top.spec, { T, lossMode: this.lossMode, grads: true, dropout, firstLayer: L, inputGrad }), {
      [TRAIN_IO.hidden]: hidden, ...tokens, ...top.feeds, ...this.seedFeeds(dropout, seed, 0),
    });
    const result = lossResult(head);
    if (!Number.isFinite(result.loss)) throw new TrainingError(`training: the loss is ${result.loss} (diverged or bad batch); no gradients were kept`);
    // Each segment's gradients go into the pending sums (buffers allocated once) as soon as they
    // come back, so at most one segment's output arrays exist beside the sums. (Keeping the output
    // arrays as the sums instead measured slower: 40% on a 4-layer 350M step.)
    const first = this.micro.length === 0;
    if (first) this.grads = new Map();
    let normSq = 0;
    const collect = (seg: Segment, out: Record<string, Tensor>) => {
      for (const [name, t] of Object.entries(out)) {
        if (!name.startsWith('grad/')) continue;
        const param = seg.names.get(name.slice(5))!;
        const g = t.data as Float32Array;
        let sum = this.gradBuffers.get(param);
        if (!sum) { sum = new Float32Array(g.length); this.gradBuffers.set(param, sum); }
        if (first || !this.grads!.has(param)) sum.set(g);
        else for (let j = 0; j < sum.length; j++) sum[j] += g[j];
        this.grads!.set(param, sum);
      }
      if (out[TRAIN_IO.gradNormSq]) normSq += (out[TRAIN_IO.gradNormSq].data as Float32Array)[0];
    };
    collect(top, head);

    // backward through the layers, top to bottom
    let grad = head[TRAIN_IO.gradHidden];
    for (let i = L - 1; i >= this.lowestBackward; i--) {
      const layer = this.layers[i];
      const inputGrad = i > this.lowestBackward || this.embedding.spec.trainable.length > 0;
      const key = `backward:${dropout}:${save(i)}:${inputGrad}:${signature(layer.spec.lora)}:${layer.spec.trainable.join(',')}`;
      const out = await this.run(key, () => buildLayerBackward(this.cfg, layer.spec, { dropout, saved: save(i), inputGrad }), {
        [TRAIN_IO.hidden]: inputs[i]!, [TRAIN_IO.mask]: tokens[GRAPH_IO.mask(kinds[i])], [TRAIN_IO.gradOut]: grad,
        ...layer.feeds, ...this.seedFeeds(dropout, seed, i), ...saved[i]!,
      });
      collect(layer, out);
      grad = out[TRAIN_IO.gradHidden];
      inputs[i + 1] = null;
      saved[i] = null;
    }
    if (this.embedding.spec.trainable.length) {
      const spec = this.embedding.spec.trainable;
      collect(this.embedding, await this.run('embed-backward', () => buildEmbedGraph(this.cfg, spec), { ...tokens, ...this.embedding.feeds, [TRAIN_IO.gradOut]: grad }));
    }

    for (const name of this.trainable) if (!this.grads!.has(name)) throw new TrainingError(`training: no gradient came back for ${name}`);
    this.normSq = first ? normSq : NaN;
    this.micro.push(result);
    return result;
  }

  /** The loss of a batch without gradients or dropout (validation). */
  async evaluate(batch: Batch): Promise<LossResult> {
    const { T, tokens } = this.prepare(batch);
    const kinds = layerMaskKinds(this.cfg.numLayers);
    const L = this.cfg.numLayers - this.plan(batch.batch, T).fused;
    let hidden = (await this.run('embed', () => buildEmbedGraph(this.cfg, null), { ...tokens, ...this.embedding.feeds }))[TRAIN_IO.hidden];
    for (let i = 0; i < L; i++) {
      const layer = this.layers[i];
      const out = await this.run(`forward:false:false:${signature(layer.spec.lora)}`, () => buildLayerForward(this.cfg, layer.spec, { dropout: false, save: false }), {
        [TRAIN_IO.hidden]: hidden, [TRAIN_IO.mask]: tokens[GRAPH_IO.mask(kinds[i])], ...layer.feeds,
      });
      hidden = out[TRAIN_IO.hiddenOut];
    }
    const top = this.top(L);
    return lossResult(await this.run(`top:${L}:${T}:eval`, () => buildHeadGraph(this.cfg, top.spec, { T, lossMode: this.lossMode, grads: false, dropout: false, firstLayer: L }), {
      [TRAIN_IO.hidden]: hidden, ...tokens, ...top.feeds,
    }));
  }

  /** Averages the pending gradients over the accumulated micro-batches, clips, and takes one AdamW step. */
  apply(): TrainStepResult {
    if (!this.grads || this.micro.length === 0) throw new TrainingError('trainer: apply() without accumulated gradients');
    const n = this.micro.length;
    // one micro-batch: the graphs already summed the squares (saves a pass over every gradient)
    const { norm, factor } = n === 1
      ? clipFactorOfNorm(Math.sqrt(this.normSq), this.opts.clipGradNorm)
      : clipFactor(this.grads.values(), this.opts.clipGradNorm, 1 / n);
    const lr = this.currentLr;
    this.optimizer.apply(this.tensors, this.grads, { lr, gradScale: factor / n });
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
    for (const b of list) await this.accumulate(b); // a failing one discards the pending gradients
    return this.apply();
  }

  /** The pending (summed, unscaled) gradients, for inspection; null when none. */
  pendingGradients(): ReadonlyMap<string, Float32Array> | null { return this.grads; }

  discardGradients(): void {
    this.grads = null;
    this.normSq = 0;
    this.micro = [];
  }

  /** Frees the onnxruntime sessions (they are rebuilt if the trainer is used again). */
  async release(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const p of sessions) {
      try {
        await (await p).session.release();
      } catch {
        // a session that failed to build has nothing to release
      }
    }
  }

  private prepare(batch: Batch): { T: number; tokens: Feeds } {
    const T = batch.ids.length / batch.batch;
    if (!Number.isInteger(batch.batch) || batch.batch < 1 || !Number.isInteger(T)) {
      throw new InputError(`training batch: ${batch.ids.length} ids do not form ${batch.batch} rows`);
    }
    const tokens = {
      ...tokenFeeds(this.cfg, batch.ids, batch.batch, 0, T, 0),
      ...lossFeeds(lossTargets(this.cfg, batch.ids, batch.batch, this.lossMode), batch.batch, this.lossWeights),
    };
    return { T, tokens };
  }

  /** How layers are kept for micro-batches of B rows of length T. */
  private plan(B: number, T: number): LayerPlan {
    return layerPlan(this.cfg, B, T, this.opts.activationMemory ?? DEFAULT_ACTIVATION_MEMORY);
  }

  private top(first: number): Segment {
    let seg = this.tops.get(first);
    if (!seg) { seg = this.makeTop(first); this.tops.set(first, seg); }
    return seg;
  }

  private seedFeeds(dropout: boolean, seed: Tensor, layer: number): Feeds {
    return dropout ? { [TRAIN_IO.seed]: seed, [TRAIN_IO.layer]: u32(Uint32Array.of(layer), []) } : {};
  }

  /** Runs a segment graph (built and opened on first use), feeding only the inputs it declares. */
  private async run(key: string, build: () => SegmentGraph, feeds: Feeds): Promise<Record<string, Tensor>> {
    let hit = this.sessions.get(key);
    if (!hit) {
      hit = (async () => {
        const graph = build();
        const session = await Session.fromGraph(graph.g, `rudolph training segment (${key.split(':')[0]})`, { threads: this.opts.threads, executionProviders: this.opts.executionProviders, memoryPattern: false });
        releaseGraph(graph.g);
        return { session, graph };
      })();
      hit.catch(() => this.sessions.delete(key));
      this.sessions.set(key, hit);
    }
    const { session } = await hit;
    const picked: Feeds = {};
    for (const name of session.inputNames) {
      const t = feeds[name];
      if (!t) throw new TrainingError(`training segment ${key}: no value for input ${name}`);
      picked[name] = t;
    }
    return session.run(picked);
  }
}

function releaseGraph(g: GraphBuilder): void {
  g.releaseWeights();
}

function signature(lora: ReadonlyMap<string, { rank: number; scale: number; dropout: number }>): string {
  return [...lora].map(([m, s]) => `${m}/${s.rank}/${s.scale}/${s.dropout}`).join(',');
}

function lossResult(out: Record<string, Tensor>): LossResult {
  const scalar = (name: string) => (out[name] ? (out[name].data as Float32Array)[0] : undefined);
  return { loss: scalar(TRAIN_IO.loss)!, left: scalar(TRAIN_IO.left)!, image: scalar(TRAIN_IO.image), right: scalar(TRAIN_IO.right) };
}
