/**
 * onnxruntime-node sessions: creation options in one place (threads, execution providers),
 * and errors from the native side wrapped as RudolphError('RUNTIME').
 */
import * as ort from 'onnxruntime-node';
import { RudolphError } from '../errors.js';

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu' | 'dml' | 'coreml';

export interface SessionOptions {
  /** intra-op threads (default: onnxruntime's choice, all cores) */
  threads?: number;
  /** execution providers in order of preference; 'cpu' is always the fallback */
  executionProviders?: ExecutionProvider[];
}

export type Feeds = Record<string, ort.Tensor>;
export type Results = Record<string, ort.Tensor>;

export class Session {
  private constructor(private readonly inner: ort.InferenceSession, readonly name: string) {}

  static async create(model: string | Uint8Array, name: string, opts: SessionOptions = {}): Promise<Session> {
    const providers = [...(opts.executionProviders ?? []).filter((p) => p !== 'cpu'), 'cpu'];
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: providers,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      interOpNumThreads: 1,
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    };
    try {
      const inner = typeof model === 'string'
        ? await ort.InferenceSession.create(model, options)
        : await ort.InferenceSession.create(model, options);
      return new Session(inner, name);
    } catch (e) {
      const message = (e as Error).message;
      const hint = providers.includes('cuda') && /shared library|providers_shared|cuda/i.test(message)
        ? ' — the CUDA execution provider is not installed: npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12 (README, "GPU")'
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

export function f32(data: Float32Array, dims: number[]): ort.Tensor { return new ort.Tensor('float32', data, dims); }
export function i64(data: BigInt64Array, dims: number[]): ort.Tensor { return new ort.Tensor('int64', data, dims); }
export function bool(data: Uint8Array, dims: number[]): ort.Tensor { return new ort.Tensor('bool', data, dims); }
export function i64From(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}
