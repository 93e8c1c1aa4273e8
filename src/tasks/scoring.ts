/**
 * Perplexities and rerank scores exactly as the official API computes them (SPEC §9).
 */
import { InputError } from '../errors.js';

/**
 * ppl of each row = mean over its non-zero entries of exp(ce) (the official `ce_to_ppl`:
 * zeros mark ignored positions, so a CE of exactly 0 is ignored too). A row with no scored
 * position has no perplexity: NaN.
 */
export function ceToPpl(ce: ArrayLike<number>, rows: number): Float64Array {
  const cols = ce.length / rows;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0, count = 0;
    for (let c = 0; c < cols; c++) {
      const v = ce[r * cols + c];
      if (v !== 0) { sum += Math.fround(Math.exp(v)); count++; }
    }
    out[r] = count > 0 ? sum / count : NaN;
  }
  return out;
}

/** torch.quantile with linear interpolation. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Array.from(values).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/**
 * The official rerank score (lower is better):
 *   (t - min t) / (quantile(t, q) - min t) · w + (i - min i) / (quantile(i, q) - min i) · (1 - w)
 * Where the official code divides 0 by 0 (all candidates tie on a perplexity, or a single
 * candidate) it yields NaN; we treat that term as 0 so ties rank equal instead of poisoning the
 * order. `officialNaN: true` keeps the official NaN.
 */
export function rerankScores(pplText: ArrayLike<number>, pplImage: ArrayLike<number>, textWeight: number, q = 0.5, officialNaN = false): Float64Array {
  if (!(textWeight >= 0 && textWeight <= 1)) throw new InputError(`rerank: textWeight must be in [0, 1], got ${textWeight}`);
  if (!(q > 0 && q <= 1)) throw new InputError(`rerank: quantile must be in (0, 1], got ${q}`);
  const term = (v: ArrayLike<number>) => {
    let min = Infinity;
    for (let i = 0; i < v.length; i++) min = Math.min(min, v[i]);
    const span = quantile(v, q) - min;
    return (x: number) => {
      const t = (x - min) / span;
      return Number.isNaN(t) && !officialNaN ? 0 : t;
    };
  };
  const t = term(pplText), im = term(pplImage);
  return Float64Array.from({ length: pplText.length }, (_, i) => t(pplText[i]) * textWeight + im(pplImage[i]) * (1 - textWeight));
}

/** Indices that sort `scores` ascending (stable; NaN last). */
export function argsort(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => {
    const x = scores[a], y = scores[b];
    if (Number.isNaN(x)) return Number.isNaN(y) ? a - b : 1;
    if (Number.isNaN(y)) return -1;
    return x - y || a - b;
  });
}
