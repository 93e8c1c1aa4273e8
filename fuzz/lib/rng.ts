/** The seeded choices a fuzz input is made of: the project's PCG32, one stream per input. */
import { Rng } from '../../src/util/random.js';

export class FuzzRng {
  private readonly rng: Rng;
  constructor(seed: number, stream: number) {
    this.rng = new Rng(seed, stream);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.rng.next();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.rng.next() * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.rng.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  /** Small sizes often, large ones now and then (log-uniform up to `max`). */
  size(max: number): number {
    return Math.floor(Math.exp(this.rng.next() * Math.log(max + 1))) - 1;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.rng.nextUint32();
      for (let b = 0; b < 4 && i + b < n; b++) out[i + b] = (v >>> (8 * b)) & 0xff;
    }
    return out;
  }
  /** An integer from the values that break parsers: edges of every width, powers of two, their neighbours. */
  interestingInt(): number {
    return this.pick(INTERESTING_INTS);
  }
}

export const INTERESTING_INTS: readonly number[] = [
  0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1000, 1023, 1024, 4095, 4096, 65535, 65536,
  2 ** 20, 2 ** 24, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53 - 1, -1, -2, -128, -(2 ** 31), 1e9, 1e12,
];
