/**
 * RudolphModel: the forward pass on onnxruntime-node. `forward` runs a whole prefix;
 * `step` feeds k ≥ 1 new tokens against a KVCache. Both return logits only for the
 * positions asked for, so sampling loops never pay for logits they don't use.
 */
import os from 'node:os';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { InputError } from '../errors.js';
import type { GraphBuilder } from '../onnx/graph.js';
import { bool, f32, i64, i64From, Session, type Feeds, type SessionOptions } from '../onnx/session.js';
import type { RudolphConfig } from './config.js';
import { KVCache } from './kv-cache.js';
import { prepareInputIds } from './layout.js';
import { layerMaskKinds, stepMask, type MaskKind } from './masks.js';
import { buildRudolphGraph, GRAPH_IO, type RudolphGraphOptions } from './rudolph-graph.js';
import type { RudolphWeights } from './weights.js';

/** Which new positions get logits: the last one, all of them, or chosen offsets (0-based within the new tokens). */
export type LogitsSelection = 'last' | 'all' | number[];

export interface Logits {
  /** [batch, positions, logitsWidth] */
  data: Float32Array;
  batch: number;
  positions: number;
  width: number;
}

export interface ModelOptions extends SessionOptions, Pick<RudolphGraphOptions, 'precision' | 'debugOutputs'> {
  /** Where to write the converted graph for large models (default: a temp folder, removed after load). */
  workDir?: string;
}

/** Graphs above this many weight bytes are loaded by path (RUNTIME.md: faster, leaner than from memory). */
const LOAD_BY_PATH_BYTES = 256 * 1024 * 1024;

export class RudolphModel {
  private readonly kinds: MaskKind[];

  private constructor(readonly cfg: RudolphConfig, private readonly session: Session, readonly precision: string) {
    this.kinds = [...new Set(layerMaskKinds(cfg.numLayers))];
  }

  /** Builds the graph from weights and opens it. */
  static async fromWeights(cfg: RudolphConfig, weights: RudolphWeights, opts: ModelOptions = {}): Promise<RudolphModel> {
    const g = buildRudolphGraph(cfg, weights, { precision: opts.precision, debugOutputs: opts.debugOutputs });
    let bytes = 0;
    for (const w of weights.values()) bytes += w.byteLength;
    if (bytes < LOAD_BY_PATH_BYTES && !opts.workDir) {
      return new RudolphModel(cfg, await Session.create(g.toBytes(), 'rudolph', opts), opts.precision ?? 'fp32');
    }
    const dir = opts.workDir ?? await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-graph-'));
    try {
      await g.save(dir);
      g.releaseWeights();
      return await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), opts);
    } finally {
      if (!opts.workDir) await fsp.rm(dir, { recursive: true, force: true });
    }
  }

  /** Opens a graph written earlier by `saveGraph` (the converted-model cache). */
  static async fromGraphFile(cfg: RudolphConfig, file: string, opts: ModelOptions = {}): Promise<RudolphModel> {
    return new RudolphModel(cfg, await Session.create(file, `rudolph (${file})`, opts), opts.precision ?? 'fp32');
  }

  /** Writes the graph + external weights to `dir` (model.onnx, weights.bin). */
  static async saveGraph(cfg: RudolphConfig, weights: RudolphWeights, dir: string, opts: Pick<RudolphGraphOptions, 'precision'> = {}): Promise<GraphBuilder> {
    const g = buildRudolphGraph(cfg, weights, opts);
    await g.save(dir);
    g.releaseWeights();
    return g;
  }

  newCache(batch: number, slots = this.cfg.totalLength): KVCache {
    if (!Number.isInteger(batch) || batch < 1) throw new InputError(`cache: batch must be a positive integer, got ${batch}`);
    if (slots < 1 || slots > this.cfg.totalLength) throw new InputError(`cache: slots must be in [1, ${this.cfg.totalLength}], got ${slots}`);
    return new KVCache(this.cfg, batch, slots);
  }

  /** Full forward over a prefix: ids [batch, length] (row-major) → logits of the selected positions. */
  async forward(ids: ArrayLike<number>, batch: number, select: LogitsSelection = 'all', extraFetch: string[] = []): Promise<Logits & { extra: Record<string, Float32Array> }> {
    const length = ids.length / batch;
    if (!Number.isInteger(length) || length < 1) throw new InputError(`forward: ${ids.length} ids do not form ${batch} rows`);
    const { feeds, index } = this.feeds(ids, batch, 0, length, 0, select);
    const { heads: H, headDim: d } = this.cfg;
    const empty = new Float32Array(0);
    for (let i = 0; i < this.cfg.numLayers; i++) {
      feeds[GRAPH_IO.pastKey(i)] = f32(empty, [batch, H, d, 0]);
      feeds[GRAPH_IO.pastValue(i)] = f32(empty, [batch, H, 0, d]);
    }
    const out = await this.session.run(feeds, [GRAPH_IO.logits, ...extraFetch]);
    const extra: Record<string, Float32Array> = {};
    for (const name of extraFetch) extra[name] = out[name].data as Float32Array;
    return { ...this.logitsOf(out[GRAPH_IO.logits].data as Float32Array, batch, index.length), extra };
  }

  /** Feeds k new tokens per row (ids [batch, k]) at positions [cache.length, +k), updating the cache. */
  async step(cache: KVCache, ids: ArrayLike<number>, select: LogitsSelection = 'last'): Promise<Logits> {
    const k = ids.length / cache.batch;
    if (!Number.isInteger(k) || k < 1) throw new InputError(`step: ${ids.length} ids do not form ${cache.batch} rows`);
    if (cache.length + k > cache.slots) throw new InputError(`step: ${cache.length} cached + ${k} new tokens exceed the cache's ${cache.slots} slots`);
    const { feeds, index } = this.feeds(ids, cache.batch, cache.length, k, cache.slots, select);
    const { heads: H, headDim: d } = this.cfg;
    const fetch: string[] = [GRAPH_IO.logits];
    for (let i = 0; i < this.cfg.numLayers; i++) {
      feeds[GRAPH_IO.pastKey(i)] = f32(cache.keys[i], [cache.batch, H, d, cache.slots]);
      feeds[GRAPH_IO.pastValue(i)] = f32(cache.values[i], [cache.batch, H, cache.slots, d]);
      fetch.push(GRAPH_IO.newKey(i), GRAPH_IO.newValue(i));
    }
    const out = await this.session.run(feeds, fetch);
    for (let i = 0; i < this.cfg.numLayers; i++) {
      cache.write(i, out[GRAPH_IO.newKey(i)].data as Float32Array, out[GRAPH_IO.newValue(i)].data as Float32Array, k);
    }
    cache.length += k;
    return this.logitsOf(out[GRAPH_IO.logits].data as Float32Array, cache.batch, index.length);
  }

  async release(): Promise<void> { await this.session.release(); }

  private feeds(ids: ArrayLike<number>, batch: number, start: number, k: number, slots: number, select: LogitsSelection): { feeds: Feeds; index: number[] } {
    const index = select === 'last' ? [k - 1] : select === 'all' ? Array.from({ length: k }, (_, i) => i) : select;
    for (const i of index) {
      if (!Number.isInteger(i) || i < 0 || i >= k) throw new InputError(`logits selection: offset ${i} is outside the ${k} new positions`);
    }
    const feeds: Feeds = {
      [GRAPH_IO.ids]: i64(prepareInputIds(this.cfg, ids, batch, start, k), [batch, k]),
      [GRAPH_IO.positions]: i64(i64From(Array.from({ length: k }, (_, i) => start + i)), [k]),
      [GRAPH_IO.logitsIndex]: i64(i64From(index), [index.length]),
    };
    for (const kind of this.kinds) feeds[GRAPH_IO.mask(kind)] = bool(stepMask(kind, this.cfg, start, k, slots), [k, slots + k]);
    return { feeds, index };
  }

  private logitsOf(data: Float32Array, batch: number, positions: number): Logits {
    return { data, batch, positions, width: this.cfg.logitsWidth };
  }
}
