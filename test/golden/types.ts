/** Shared types of the data-driven golden suite (manifest format: ../shared/golden/README.md). */
import type { HostTensor } from '../../src/tensor.js';

export interface TensorRef { tensor: string; dtype: string; shape: number[] | null }
export type CaseValue = TensorRef | number | string | number[] | unknown;

export interface GoldenCase {
  id: string;
  model: string | null;
  function: string;
  inputs?: Record<string, CaseValue>;
  outputs?: Record<string, CaseValue>;
  notes?: string;
  [extra: string]: unknown;
}

export interface GoldenModel {
  kind: 'rudolph' | 'vqgan' | 'none' | string;
  files?: Record<string, string>;
  golden: string;
  paired_vqgan?: string;
  spc_tokens?: Record<string, number>;
  [extra: string]: unknown;
}

export interface Manifest {
  models: Record<string, GoldenModel>;
  cases: GoldenCase[];
}

export interface CaseResult {
  status: 'PASS' | 'FAIL' | 'SKIP';
  /** max abs error, or a reason */
  info: string;
}

export interface GoldenContext {
  /** the golden folder (a path on Node, a URL in the browser) */
  dir: string;
  manifest: Manifest;
  /** how sessions run (default: 2 threads on the CPU / WASM); the browser run may ask for WebGPU */
  session: { threads?: number; executionProviders?: ('webgpu' | 'wasm' | 'cpu')[] };
  /** a file of the golden folder, as the runtime opens it: `file('rudolph-tiny', 'config.json')` */
  file(...parts: string[]): string;
  /** All tensors of a model's golden.safetensors (cached). */
  golden(model: string): Promise<Map<string, HostTensor>>;
  /** A tensor referenced by a case input/output, from the case model's golden file. */
  tensor(c: GoldenCase, ref: CaseValue): Promise<HostTensor>;
}

export type CaseHandler = (c: GoldenCase, ctx: GoldenContext) => Promise<CaseResult>;

export function isTensorRef(v: unknown): v is TensorRef {
  return typeof v === 'object' && v !== null && typeof (v as TensorRef).tensor === 'string';
}

/** Max |a-b| over two float arrays (NaN in either → Infinity). Lengths must agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function countMismatches(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** PASS when err ≤ tol, with the error as info. */
export function judge(err: number, tol: number, what = 'max abs'): CaseResult {
  return { status: err <= tol ? 'PASS' : 'FAIL', info: `${what} ${err.toExponential(2)} (tol ${tol})` };
}

export const FLOAT_TOL = 1e-4;
