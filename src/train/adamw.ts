/**
 * AdamW with torch.optim.AdamW's update (decoupled weight decay applied first, bias-corrected
 * moments, eps added after the square root), global-norm gradient clipping as
 * torch.nn.utils.clip_grad_norm_, over Float32Arrays updated in place.
 *
 * The update is O(parameters) elementwise work over memory that already lives in JS; running it
 * through onnxruntime would copy every output (RUNTIME.md: outputs are always copied), which
 * costs more than the arithmetic. Measured in bench/train.ts.
 */
import { TrainingError } from './errors.js';

export interface AdamWOptions {
  lr: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface AdamWMoments { m: Float32Array; v: Float32Array }

/** What `state()` returns and `loadState()` accepts: the step count and both moments per parameter. */
export interface AdamWState {
  step: number;
  moments: Map<string, AdamWMoments>;
}

export interface AdamWStepOptions {
  /** learning rate of this step (schedules), default the constructor's */
  lr?: number;
  /** multiplies every gradient first (micro-batch averaging, clipping) */
  gradScale?: number;
}

export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private stepCount = 0;
  private moments = new Map<string, AdamWMoments>();

  constructor(opts: AdamWOptions) {
    const [beta1, beta2] = opts.betas ?? [0.9, 0.999];
    this.lr = opts.lr;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    const bad = (what: string, v: number) => new TrainingError(`AdamW: ${what} must be ${v}`);
    if (!(this.lr >= 0) || !Number.isFinite(this.lr)) throw bad('lr', this.lr);
    if (!(beta1 >= 0 && beta1 < 1)) throw bad('beta1 in [0, 1), got', beta1);
    if (!(beta2 >= 0 && beta2 < 1)) throw bad('beta2 in [0, 1), got', beta2);
    if (!(this.eps >= 0)) throw bad('eps ≥ 0, got', this.eps);
    if (!(this.weightDecay >= 0)) throw bad('weightDecay ≥ 0, got', this.weightDecay);
  }

  /** Optimizer steps taken so far. */
  get step(): number { return this.stepCount; }

  /** One update of every parameter in `grads` (params[name] updated in place). */
  apply(params: ReadonlyMap<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, opts: AdamWStepOptions = {}): void {
    const lr = opts.lr ?? this.lr;
    const gradScale = opts.gradScale ?? 1;
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p) throw new TrainingError(`AdamW: gradient for unknown parameter ${name}`);
      if (p.length !== g.length) throw new TrainingError(`AdamW: gradient of ${name} has ${g.length} values, the parameter ${p.length}`);
    }
    this.stepCount++;
    for (const [name, g] of grads) {
      const p = params.get(name)!;
      let mom = this.moments.get(name);
      if (!mom) {
        mom = { m: new Float32Array(p.length), v: new Float32Array(p.length) };
        this.moments.set(name, mom);
      }
      adamwUpdate(p, g, mom.m, mom.v, {
        lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.stepCount, gradScale,
      });
    }
  }

  state(): AdamWState {
    return { step: this.stepCount, moments: this.moments };
  }

  /** Restores a state (e.g. from a checkpoint); moments must match the parameters' sizes. */
  loadState(state: AdamWState, params: ReadonlyMap<string, Float32Array>): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new TrainingError(`AdamW state: step must be a non-negative integer, got ${state.step}`);
    for (const [name, mom] of state.moments) {
      const p = params.get(name);
      if (!p) throw new TrainingError(`AdamW state: moments for unknown parameter ${name}`);
      if (mom.m.length !== p.length || mom.v.length !== p.length) {
        throw new TrainingError(`AdamW state: moments of ${name} hold ${mom.m.length}/${mom.v.length} values, the parameter ${p.length}`);
      }
    }
    this.stepCount = state.step;
    this.moments = new Map(state.moments);
  }
}

export interface AdamWHyper {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number;
  /** 1-based step number (bias correction) */
  step: number;
  gradScale: number;
}

/**
 * torch's single-tensor AdamW for one parameter: p ← p·(1-lr·wd); m ← β1·m + (1-β1)·g;
 * v ← β2·v + (1-β2)·g²; p ← p - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + eps).
 */
function adamwUpdate(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWHyper): void {
  const decay = 1 - h.lr * h.weightDecay;
  const stepSize = h.lr / (1 - Math.pow(h.beta1, h.step));
  const invBc2Sqrt = 1 / Math.sqrt(1 - Math.pow(h.beta2, h.step));
  const b1 = h.beta1, b2 = h.beta2, c1 = 1 - h.beta1, c2 = 1 - h.beta2, eps = h.eps, scale = h.gradScale;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i] * scale;
    // moments rounded to float32 as torch stores them, before they enter the update
    const mi = Math.fround(b1 * m[i] + c1 * gi);
    const vi = Math.fround(b2 * v[i] + c2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi) * invBc2Sqrt + eps);
  }
}

/**
 * The global L2 norm of all gradients (as scaled by `gradScale`) and the factor that clips it
 * to `maxNorm` — torch's clip_grad_norm_: factor = min(1, maxNorm / (norm + 1e-6)).
 */
export function clipFactor(grads: Iterable<Float32Array>, maxNorm: number | undefined, gradScale = 1): { norm: number; factor: number } {
  let sum = 0;
  for (const g of grads) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    sum += s;
  }
  return clipFactorOfNorm(Math.sqrt(sum) * Math.abs(gradScale), maxNorm);
}

/** As `clipFactor`, from a norm computed elsewhere (the training graph outputs it). */
export function clipFactorOfNorm(norm: number, maxNorm: number | undefined): { norm: number; factor: number } {
  if (maxNorm === undefined) return { norm, factor: 1 };
  if (!(maxNorm > 0)) throw new TrainingError(`gradient clipping: max norm must be positive, got ${maxNorm}`);
  return { norm, factor: Math.min(1, maxNorm / (norm + 1e-6)) };
}
