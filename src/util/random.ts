/**
 * The one seeded random generator of the library: PCG32 (XSH-RR, 64-bit state), seeded through
 * SplitMix64 from (seed, stream). Integer-only, so a seed gives the same stream on every
 * platform. Tasks give candidate i stream i, so a candidate does not depend on the batch size
 * it was generated in; weight initialisation and BPE-dropout draw from it too.
 *
 * The 64-bit state lives in two int32 halves: stepping needs no BigInt (which made weight
 * initialisation of a 350M model take minutes); seeding and snapshots still use BigInt.
 */
import { InputError } from '../errors.js';

const MASK64 = (1n << 64n) - 1n;
// PCG's multiplier 6364136223846793005 as two uint32 halves
const MULT_HI = 0x5851f42d;
const MULT_LO = 0x4c957f2d;
const MULT_LO_HI16 = MULT_LO >>> 16;
const MULT_LO_LO16 = MULT_LO & 0xffff;

function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** Scratch of `step`: [state hi, state lo, output], as int32 (no boxed numbers in the hot loop). */
const S = new Int32Array(3);

/**
 * One PCG32 step from state (oh, ol) with increment (ih, il), all int32 halves: the next state
 * and the output (as int32 bits) land in S.
 */
function step(oh: number, ol: number, ih: number, il: number): void {
  // state = old · MULT + inc (mod 2^64). The high half of ol·MULT_LO from two products below
  // 2^48 (exact in doubles): ol·MULT_LO = x·2^16 + y with x = ol·(MULT_LO >> 16), y = ol·(MULT_LO & 0xffff).
  const olu = ol >>> 0;
  const x = olu * MULT_LO_HI16, y = olu * MULT_LO_LO16;
  const lo = Math.imul(ol, MULT_LO);
  const hi = (Math.floor((x + Math.floor(y / 65536)) / 65536) + Math.imul(oh, MULT_LO) + Math.imul(ol, MULT_HI)) | 0;
  const sumLo = (lo >>> 0) + (il >>> 0);
  S[1] = sumLo | 0;
  S[0] = (hi + ih + (sumLo > 0xffffffff ? 1 : 0)) | 0;
  // output: rotr32(((old >> 18) ^ old) >> 27, old >> 59)
  const xh = oh ^ (oh >>> 18);
  const xl = ol ^ ((ol >>> 18) | (oh << 14));
  const xorshifted = (xl >>> 27) | (xh << 5);
  const rot = oh >>> 27;
  S[2] = (xorshifted >>> rot) | (xorshifted << ((-rot) & 31));
}

export class Rng {
  private hi = 0;
  private lo = 0;
  private incHi = 0;
  private incLo = 0;

  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
    this.setInc(((splitmix64(BigInt(stream) ^ 0x5851f42d4c957f2dn) << 1n) | 1n) & MASK64);
    this.nextUint32();
    this.setState((this.state64() + splitmix64(BigInt(seed))) & MASK64);
    this.nextUint32();
  }

  nextUint32(): number {
    step(this.hi, this.lo, this.incHi, this.incLo);
    this.hi = S[0];
    this.lo = S[1];
    return S[2] >>> 0;
  }

  /** Uniform in [0, 1) with 53 bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /**
   * Fills `out` with uniform values in [low, high), one 32-bit draw each — the same draws as
   * `nextUint32()` in a loop, with the state in locals (weight initialisation of large models).
   */
  fillUniform(out: Float32Array, low: number, high: number): void {
    const scale = (high - low) / 4294967296;
    let hi = this.hi, lo = this.lo;
    const ih = this.incHi, il = this.incLo;
    for (let i = 0; i < out.length; i++) {
      step(hi, lo, ih, il);
      hi = S[0];
      lo = S[1];
      out[i] = low + (S[2] >>> 0) * scale;
    }
    this.hi = hi;
    this.lo = lo;
  }

  /** The generator state, to save and restore (e.g. training checkpoints). */
  get snapshot(): string { return `${this.state64().toString(16)}:${((BigInt(this.incHi >>> 0) << 32n) | BigInt(this.incLo >>> 0)).toString(16)}`; }

  static restore(snapshot: string): Rng {
    const [s, inc] = snapshot.split(':');
    const r = Object.create(Rng.prototype) as Rng;
    r.setState(BigInt(`0x${s}`));
    r.setInc(BigInt(`0x${inc}`));
    return r;
  }

  private state64(): bigint { return (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo >>> 0); }
  private setState(v: bigint): void { this.hi = Number(v >> 32n) | 0; this.lo = Number(v & 0xffffffffn) | 0; }
  private setInc(v: bigint): void { this.incHi = Number(v >> 32n) | 0; this.incLo = Number(v & 0xffffffffn) | 0; }
}

/** The caller's seed (checked), or a fresh one reported back so results can be reproduced. */
export function resolveSeed(seed: number | undefined): number {
  if (seed === undefined) return Math.floor(Math.random() * 2 ** 32);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InputError(`seed must be an integer in [0, ${Number.MAX_SAFE_INTEGER}], got ${seed}`);
  return seed;
}

/** Uniform doubles in [0, 1) from stream 0 of `seed` (BPE-dropout). */
export function uniformSource(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}
