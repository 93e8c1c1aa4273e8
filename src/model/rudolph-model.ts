/**
 * RudolphModel: the forward pass on onnxruntime. `forward` runs a whole prefix;
 * `step` feeds k ≥ 1 new tokens against a KVCache. Both return logits only for the
 * positions asked for, so sampling loops never pay for logits they don't use.
 */
import { InputError } from '../errors.js';
import type { GraphBuilder } from '../onnx/graph.js';
import { f32, type Feeds, i64, i64From, Session, type SessionOptions } from '../onnx/session.js';
import { runtime } from '../runtime/current.js';
import type { ExecutionProvider } from '../runtime/types.js';
import type { QuantOptions } from './graph-context.js';
import type { RudolphConfig } from './config.js';
import { tokenFeeds } from './feeds.js';
import { KVBufferPool, KVCache } from './kv-cache.js';
import { buildRudolphGraph, GRAPH_IO, type RudolphGraphOptions } from './rudolph-graph.js';
import type { RudolphWeights } from './weights.js';

export interface RunOptions {
  /** which new positions get outputs (forward default: all; step default: last) */
  select?: LogitsSelection;
  /** fetch the logits (default true); scoring only needs the target/lse outputs */
  logits?: boolean;
  /** [batch, selected] absolute logit columns whose logit (and the range log-sum-exps) to return */
  targets?: ArrayLike<number>;
  /** extra graph outputs to fetch (debug graphs: embeddings, hidden_i, transformer_output) */
  extra?: string[];
}

export interface ModelOutputs {
  batch: number;
  /** number of selected positions */
  positions: number;
  width: number;
  /** [batch, positions, width] */
  logits?: Float32Array;
  /** [batch, positions] each, when targets were given */
  targetLogits?: Float32Array;
  lseText?: Float32Array;
  lseImage?: Float32Array;
  extra: Record<string, Float32Array>;
}

/** Which new positions get logits: the last one, all of them, or chosen offsets (0-based within the new tokens). */
export type LogitsSelection = 'last' | 'all' | number[];


export type ModelOptions = SessionOptions & Pick<RudolphGraphOptions, 'precision' | 'quant' | 'debugOutputs' | 'adapter'>;

/** `quant` with the runtime's own int8 kernel where the caller chose none (WASM runs another kernel fastest). */
export function runtimeQuant(quant: QuantOptions | undefined, executionProviders: readonly ExecutionProvider[] | undefined): QuantOptions {
  const int8Kernel = quant?.int8Kernel ?? runtime().int8Kernel?.(executionProviders);
  return { ...quant, ...(int8Kernel ? { int8Kernel } : {}) };
}

export class RudolphModel {
  /** buffers of released caches, for the next ones (two caches' worth at most) */
  private readonly cachePool: KVBufferPool;

  private constructor(readonly cfg: RudolphConfig, private readonly session: Session, readonly precision: string) {
    this.cachePool = new KVBufferPool(4 * cfg.numLayers);
  }

  /** Builds the graph from weights and opens it. */
  static async fromWeights(cfg: RudolphConfig, weights: RudolphWeights, opts: ModelOptions = {}): Promise<RudolphModel> {
    const g = buildRudolphGraph(cfg, weights, { precision: opts.precision, quant: runtimeQuant(opts.quant, opts.executionProviders), debugOutputs: opts.debugOutputs, adapter: opts.adapter });
    return RudolphModel.opened(cfg, await Session.fromGraph(g, 'rudolph', opts), opts.precision);
  }

  /** Opens a graph built elsewhere (a browser builds it from lazily read checkpoint tensors). */
  static async fromGraph(cfg: RudolphConfig, g: GraphBuilder, opts: ModelOptions = {}): Promise<RudolphModel> {
    return RudolphModel.opened(cfg, await Session.fromGraph(g, 'rudolph', opts), opts.precision);
  }

  /** Opens a graph file written earlier (the converted-model cache). */
  static async fromGraphFile(cfg: RudolphConfig, file: string, opts: ModelOptions = {}): Promise<RudolphModel> {
    return RudolphModel.opened(cfg, await Session.create(file, `rudolph (${file})`, opts), opts.precision);
  }

  /**
   * A session's first run costs far more than the next ones (350M fp32: a one-token forward took
   * 1.25 s first, then 0.06 s; each Gemm's first call ~10–25 ms), so one token is run while the
   * model loads: a user's first task is then as fast as the next. Released if that run fails.
   */
  private static async opened(cfg: RudolphConfig, session: Session, precision: string | undefined): Promise<RudolphModel> {
    const model = new RudolphModel(cfg, session, precision ?? 'fp32');
    try {
      await model.forward([0], 1, { select: 'last' });
    } catch (e) {
      await model.release();
      throw e;
    }
    return model;
  }

  /** A cache on the model's pooled buffers: release() it when done, and the next cache reuses them. */
  newCache(batch: number, slots = this.cfg.totalLength): KVCache {
    if (!Number.isInteger(batch) || batch < 1) throw new InputError(`cache: batch must be a positive integer, got ${batch}`);
    if (slots < 1 || slots > this.cfg.totalLength) throw new InputError(`cache: slots must be in [1, ${this.cfg.totalLength}], got ${slots}`);
    return new KVCache(this.cfg, batch, slots, this.cachePool);
  }

  /** Full forward over a prefix: ids [batch, length] (row-major) → outputs for the selected positions. */
  async forward(ids: ArrayLike<number>, batch: number, opts: RunOptions = {}): Promise<ModelOutputs> {
    const length = ids.length / batch;
    if (!Number.isInteger(length) || length < 1) throw new InputError(`forward: ${ids.length} ids do not form ${batch} rows`);
    const { heads: H, headDim: d } = this.cfg;
    // One empty, masked cache slot rather than none: zero-size MatMuls are an edge case some
    // onnxruntime fusions get wrong, and a masked slot contributes exactly 0 after the softmax.
    const empty = new Float32Array(batch * H * d);
    const past: Feeds = {};
    for (let i = 0; i < this.cfg.numLayers; i++) {
      past[GRAPH_IO.pastKey(i)] = f32(empty, [batch, H, 1, d]);
      past[GRAPH_IO.pastValue(i)] = f32(empty, [batch, H, 1, d]);
    }
    return (await this.run(ids, batch, 0, length, 1, past, [], opts)).result;
  }

  /** Feeds k new tokens per row (ids [batch, k]) at positions [cache.length, +k), updating the cache. */
  async step(cache: KVCache, ids: ArrayLike<number>, opts: RunOptions = {}): Promise<ModelOutputs> {
    const k = ids.length / cache.batch;
    if (!Number.isInteger(k) || k < 1) throw new InputError(`step: ${ids.length} ids do not form ${cache.batch} rows`);
    if (cache.length + k > cache.slots) throw new InputError(`step: ${cache.length} cached + ${k} new tokens exceed the cache's ${cache.slots} slots`);
    const { heads: H, headDim: d } = this.cfg;
    cache.reserve(cache.length + k);
    const past: Feeds = {};
    const fetch: string[] = [];
    for (let i = 0; i < this.cfg.numLayers; i++) {
      past[GRAPH_IO.pastKey(i)] = f32(cache.fedKeys(i), [cache.batch, H, cache.width, d]);
      past[GRAPH_IO.pastValue(i)] = f32(cache.fedValues(i), [cache.batch, H, cache.width, d]);
      fetch.push(GRAPH_IO.newKey(i), GRAPH_IO.newValue(i));
    }
    const { out, result } = await this.run(ids, cache.batch, cache.length, k, cache.width, past, fetch, { select: 'last', ...opts });
    for (let i = 0; i < this.cfg.numLayers; i++) {
      cache.write(i, out[GRAPH_IO.newKey(i)].data as Float32Array, out[GRAPH_IO.newValue(i)].data as Float32Array, k);
    }
    cache.length += k;
    return result;
  }

  private async run(ids: ArrayLike<number>, batch: number, start: number, k: number, slots: number, past: Feeds, fetch: string[], opts: RunOptions) {
    const select = opts.select ?? 'all';
    const index = select === 'last' ? [k - 1] : select === 'all' ? Array.from({ length: k }, (_, i) => i) : select;
    for (const i of index) {
      if (!Number.isInteger(i) || i < 0 || i >= k) throw new InputError(`logits selection: offset ${i} is outside the ${k} new positions`);
    }
    const m = index.length;
    let targets: BigInt64Array;
    if (opts.targets) {
      if (opts.targets.length !== batch * m) throw new InputError(`targets: expected ${batch}×${m} column ids, got ${opts.targets.length}`);
      targets = i64From(opts.targets);
      for (const t of targets) if (t < 0n || t >= BigInt(this.cfg.logitsWidth)) throw new InputError(`targets: column ${t} is outside the logits [0, ${this.cfg.logitsWidth})`);
    } else {
      targets = new BigInt64Array(batch * m);
    }
    const feeds: Feeds = {
      ...past,
      ...tokenFeeds(this.cfg, ids, batch, start, k, slots),
      [GRAPH_IO.logitsIndex]: i64(i64From(index), [m]),
      [GRAPH_IO.targets]: i64(targets, [batch, m]),
    };
    const wanted = [...fetch, ...(opts.extra ?? [])];
    if (opts.logits !== false) wanted.push(GRAPH_IO.logits);
    if (opts.targets) wanted.push(GRAPH_IO.targetLogits, GRAPH_IO.lseText, GRAPH_IO.lseImage);
    const out = await this.session.run(feeds, wanted);
    const data = (name: string) => (out[name] ? (out[name].data as Float32Array) : undefined);
    const extra: Record<string, Float32Array> = {};
    for (const name of opts.extra ?? []) extra[name] = data(name)!;
    const result: ModelOutputs = {
      batch, positions: m, width: this.cfg.logitsWidth,
      logits: data(GRAPH_IO.logits),
      targetLogits: data(GRAPH_IO.targetLogits), lseText: data(GRAPH_IO.lseText), lseImage: data(GRAPH_IO.lseImage),
      extra,
    };
    return { out, result };
  }

  async release(): Promise<void> {
    this.cachePool.clear();
    await this.session.release();
  }
}
