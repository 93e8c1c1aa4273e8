/**
 * Sampling from logits: temperature, then top-k, then top-p (nucleus) filtering with the
 * semantics of transformers' `top_k_top_p_filtering` (4.10) that the official API uses, then
 * softmax and one draw from the seeded generator.
 */
import { InputError } from '../errors.js';
import type { Rng } from '../util/random.js';

export interface SamplingOptions {
  /** keep the k highest logits (ties with the k-th are kept); 0 = off */
  topK: number;
  /** keep the smallest prefix of sorted tokens whose probability mass exceeds p (always ≥ 1 token); 1 = off */
  topP: number;
  /** logits are divided by it; must be > 0 */
  temperature: number;
}

function checkSampling(o: SamplingOptions, what: string): void {
  if (!Number.isInteger(o.topK) || o.topK < 0) throw new InputError(`${what}: topK must be a non-negative integer, got ${o.topK}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new InputError(`${what}: topP must be in (0, 1], got ${o.topP}`);
  // below ~1e-4 the divided float32 logits overflow; use topK 1 for greedy decoding
  if (!(o.temperature >= 1e-4) || !Number.isFinite(o.temperature)) throw new InputError(`${what}: temperature must be a number ≥ 0.0001 (use topK 1 for greedy), got ${o.temperature}`);
}

/** The caller's sampling options over a task's defaults, checked. */
export function resolveSampling(o: Partial<SamplingOptions>, defaults: SamplingOptions, what: string): SamplingOptions {
  const out = { topK: o.topK ?? defaults.topK, topP: o.topP ?? defaults.topP, temperature: o.temperature ?? defaults.temperature };
  checkSampling(out, what);
  return out;
}

/** Filters one row of logits in place: removed entries become -Infinity. */
export function filterTopKTopP(logits: Float32Array, topK: number, topP: number): Float32Array {
  const n = logits.length;
  if (topK > 0 && topK < n) {
    const kth = kthLargest(logits, topK);
    for (let i = 0; i < n; i++) if (logits[i] < kth) logits[i] = -Infinity;
  }
  if (topP < 1) {
    // only entries still in play need sorting (after top-k: k of them, not the whole vocabulary)
    const order = sortedKept(logits);
    const max = logits[order[0]];
    const e = new Float64Array(order.length);
    let total = 0;
    for (let j = 0; j < order.length; j++) total += (e[j] = Math.exp(logits[order[j]] - max));
    // softmax(sorted) cumulative; remove where the mass BEFORE this token already exceeds p
    let cum = 0;
    let removeFrom = order.length;
    for (let j = 0; j < order.length; j++) {
      if (j > 0 && cum > topP) { removeFrom = j; break; }
      cum += e[j] / total;
    }
    for (let j = removeFrom; j < order.length; j++) logits[order[j]] = -Infinity;
  }
  return logits;
}

const f32Scratch = new Float32Array(1);
const f32Bits = new Uint32Array(f32Scratch.buffer);
/** Scratch space of the sort and the selection, kept between calls: a token is sampled per model step. */
let keyScratch = new Float64Array(0);
let selectScratch = new Float32Array(0);

/**
 * Indices of the entries that are not -Infinity, by value descending, ties by index ascending.
 * Sorts numbers natively instead of calling a comparator per comparison: each key is
 * (order-preserving bits of -value) · 2^indexBits + index, exact in a float64.
 */
function sortedKept(logits: Float32Array): ArrayLike<number> {
  const n = logits.length;
  const indexBits = Math.max(1, Math.ceil(Math.log2(n)));
  if (32 + indexBits > 53) return sortedKeptByComparator(logits); // keys would not be exact
  if (keyScratch.length < n) keyScratch = new Float64Array(n);
  const keys = keyScratch;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = logits[i];
    if (v === -Infinity) continue;
    if (v !== v) return sortedKeptByComparator(logits); // NaN has no place in the key order
    f32Scratch[0] = v === 0 ? 0 : v; // -0 ties with +0, as in the comparator
    const bits = f32Bits[0];
    // ascending unsigned order of floats, then flipped for descending values
    const ascending = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    keys[m++] = (0xffffffff - ascending) * 2 ** indexBits + i;
  }
  const sorted = keys.subarray(0, m).sort();
  const out = new Uint32Array(m);
  const mask = 2 ** indexBits;
  for (let j = 0; j < m; j++) out[j] = sorted[j] % mask;
  return out;
}

function sortedKeptByComparator(logits: Float32Array): number[] {
  const kept: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) kept.push(i);
  return kept.sort((a, b) => logits[b] - logits[a] || a - b);
}

/** The k-th largest value (quickselect on a copy: O(n), no full sort). */
function kthLargest(values: Float32Array, k: number): number {
  if (selectScratch.length < values.length) selectScratch = new Float32Array(values.length);
  const a = selectScratch.subarray(0, values.length);
  a.set(values);
  const target = a.length - k;
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}

/** softmax of filtered logits (−∞ entries get probability 0). */
export function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  let sum = 0;
  // filtered entries (-∞) are 0 and add nothing: skipping them gives the same sum, bit for bit
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] === -Infinity) continue;
    const e = Math.exp(logits[i] - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) if (out[i] !== 0) out[i] /= sum;
  return out;
}

/** One draw from a probability vector (need not be normalised). */
export function drawIndex(probs: ArrayLike<number>, rng: Rng): number {
  let total = 0;
  for (let i = 0; i < probs.length; i++) total += probs[i];
  if (!(total > 0) || !Number.isFinite(total)) throw new RangeError(`sampling: probabilities sum to ${total} (non-finite logits?)`);
  let u = rng.next() * total;
  let last = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    last = i;
    u -= probs[i];
    if (u < 0) return i;
  }
  return last;
}

/** Temperature → filtering (a copy of `row`), the filtered logits returned for mixing. */
export function filteredLogits(row: Float32Array, o: SamplingOptions): Float32Array {
  const x = Float32Array.from(row);
  const t = o.temperature;
  if (t !== 1) for (let i = 0; i < x.length; i++) x[i] = row[i] / t;
  return filterTopKTopP(x, o.topK, o.topP);
}

/** Samples one index from a row of logits. */
export function sampleLogits(row: Float32Array, o: SamplingOptions, rng: Rng): number {
  return drawIndex(softmax(filteredLogits(row, o)), rng);
}
