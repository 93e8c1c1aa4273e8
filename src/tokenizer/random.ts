/**
 * Small seeded PRNG (mulberry32) for BPE-dropout: uniform doubles in [0, 1).
 * YTTM itself draws from a process-wide std::mt19937, so dropout with 0 < p < 1 is only
 * statistically comparable to the C++ library; the seed makes our own runs reproducible.
 */
export function seededRandom(seed: number): () => number {
  let state = (Math.trunc(seed) ^ 0x6d2b79f5) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
