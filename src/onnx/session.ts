/**
 * onnxruntime sessions through the runtime seam: one place for creating them (from bytes, a
 * graph file, or a graph built in memory), running them, and wrapping failures from the native
 * side as RudolphError('RUNTIME').
 */
import { RudolphError } from '../errors.js';
import { runtime } from '../runtime/current.js';
import type { ExecutionProvider, InferenceSession, SessionOptions, Tensor } from '../runtime/types.js';
import type { GraphBuilder } from './graph.js';

export type { ExecutionProvider, SessionOptions };
export type Feeds = Record<string, Tensor>;
export type Results = Record<string, Tensor>;

export class Session {
  private constructor(private readonly inner: InferenceSession, readonly name: string) {}

  /** A session on serialized graph bytes, or on a graph file (external weights beside it). */
  static async create(model: Uint8Array | string, name: string, opts: SessionOptions = {}): Promise<Session> {
    return Session.open(() => runtime().createSession(model, opts), name, opts);
  }

  /** A session on a graph built in memory; the runtime decides how it reaches onnxruntime. */
  static async fromGraph(g: GraphBuilder, name: string, opts: SessionOptions = {}): Promise<Session> {
    return Session.open(() => runtime().sessionOnGraph(g, opts), name, opts);
  }

  private static async open(create: () => Promise<InferenceSession>, name: string, opts: SessionOptions): Promise<Session> {
    try {
      return new Session(await create(), name);
    } catch (e) {
      const message = (e as Error).message;
      const hint = opts.executionProviders?.includes('cuda') && /shared library|providers_shared|cuda/i.test(message)
        ? ' — the CUDA execution provider is not installed: ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js (README, "GPU")'
        : '';
      throw new RudolphError('RUNTIME', `${name}: onnxruntime could not create the session: ${message}${hint}`, { cause: e });
    }
  }

  get inputNames(): readonly string[] { return this.inner.inputNames; }
  get outputNames(): readonly string[] { return this.inner.outputNames; }

  async run(feeds: Feeds, fetch?: string[]): Promise<Results> {
    try {
      return (fetch ? await this.inner.run(feeds, fetch) : await this.inner.run(feeds)) as Results;
    } catch (e) {
      throw new RudolphError('RUNTIME', `${this.name}: onnxruntime run failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}

export function f32(data: Float32Array, dims: number[]): Tensor { return runtime().tensor('float32', data, dims); }
export function i64(data: BigInt64Array, dims: number[]): Tensor { return runtime().tensor('int64', data, dims); }
export function bool(data: Uint8Array, dims: number[]): Tensor { return runtime().tensor('bool', data, dims); }
export function i64From(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}
