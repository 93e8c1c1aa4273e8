/**
 * The one decoding loop every generating task uses: feed a prefix, then per position either
 * take known tokens (image prompts) or sample from the last position's logits; known tokens
 * are fed together with the next model call (the cache grows by several tokens at once).
 */
import type { ProgressReporter } from '../util/progress.js';
import type { ModelContext } from './context.js';

export interface DecodeSpec {
  /** rows × prefix tokens, all rows the same length */
  prefix: Int32Array[];
  /** positions to fill after the prefix */
  steps: number;
  /** tokens known in advance at step j (one per row), or null to sample */
  known?: (step: number) => ArrayLike<number> | null;
  /** picks one token per row from the last logits ([rows, width]) */
  choose: (logits: Float32Array, width: number, step: number) => ArrayLike<number>;
  /** candidates these rows stand for, for progress (default: one per row) */
  candidates?: number;
  /** stop early when this says every row is finished */
  finished?: (tokens: Int32Array[], filled: number) => boolean;
  /** called after every step with the tokens so far (streaming) */
  onStep?: (tokens: Int32Array[], step: number) => void;
}

/** Returns the generated tokens per row (length `steps`, or fewer on an early stop). */
export async function autoregress(ctx: ModelContext, spec: DecodeSpec, progress?: ProgressReporter): Promise<Int32Array[]> {
  const B = spec.prefix.length;
  // all slots, as every cache of the model: the buffers then fit the next task's caches (pages
  // past the positions filled are never touched), and the fed width grows with the filled length
  const cache = ctx.model.newCache(B);
  try {
    const out = spec.prefix.map(() => new Int32Array(spec.steps));
    // tokens waiting to be fed: rows × pending
    let pending: number[][] = spec.prefix.map((row) => Array.from(row));
    let filled = 0;
    const units = spec.candidates ?? B;
    for (let j = 0; j < spec.steps; j++) {
      const known = spec.known?.(j) ?? null;
      let tokens: ArrayLike<number>;
      if (known) {
        tokens = known;
      } else {
        const k = pending[0].length;
        const ids = new Int32Array(B * k);
        pending.forEach((row, b) => ids.set(row, b * k));
        const res = await ctx.model.step(cache, ids, { select: 'last' });
        pending = spec.prefix.map(() => []);
        tokens = spec.choose(res.logits!, res.width, j);
      }
      for (let b = 0; b < B; b++) { out[b][j] = tokens[b]; pending[b].push(tokens[b]); }
      filled = j + 1;
      spec.onStep?.(out, j);
      const done = spec.finished?.(out, filled) ?? false;
      progress?.tick(units * (done ? spec.steps - j : 1));
      if (done) break;
    }
    return out.map((row) => row.subarray(0, filled));
  } finally {
    cache.release();
  }
}
