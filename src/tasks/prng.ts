/**
 * The seeded random generator behind every sampling decision: PCG32 (XSH-RR, 64-bit state),
 * seeded through SplitMix64 from (seed, stream). Integer-only, so a seed gives the same
 * stream on every platform. Each candidate i of a task draws from stream i, so a candidate
 * does not depend on the batch size it was generated in.
 */
import { InputError } from '../errors.js';

const MASK64 = (1n << 64n) - 1n;
const MULT = 6364136223846793005n;

function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

export class Rng {
  private state: bigint;
  private readonly inc: bigint;

  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    this.inc = ((splitmix64(BigInt(stream) ^ 0x5851f42d4c957f2dn) << 1n) | 1n) & MASK64;
    this.state = 0n;
    this.nextUint32();
    this.state = (this.state + splitmix64(BigInt(seed))) & MASK64;
    this.nextUint32();
  }

  nextUint32(): number {
    const old = this.state;
    this.state = (old * MULT + this.inc) & MASK64;
    const xorshifted = Number(((old >> 18n) ^ old) >> 27n & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((xorshifted >>> rot) | (xorshifted << ((-rot) & 31))) >>> 0;
  }

  /** Uniform in [0, 1) with 53 bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** The generator state, to save and restore (e.g. training checkpoints). */
  get snapshot(): string { return `${this.state.toString(16)}:${this.inc.toString(16)}`; }

  static restore(snapshot: string): Rng {
    const [s, inc] = snapshot.split(':');
    const r = Object.create(Rng.prototype) as { state: bigint; inc: bigint };
    r.state = BigInt(`0x${s}`);
    r.inc = BigInt(`0x${inc}`);
    return r as unknown as Rng;
  }
}

/** The caller's seed (checked), or a fresh one reported back so results can be reproduced. */
export function resolveSeed(seed: number | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 2 ** 32);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InputError(`seed must be an integer in [0, ${Number.MAX_SAFE_INTEGER}], got ${seed}`);
  return seed;
}
