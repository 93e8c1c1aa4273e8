import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng, uniformSource } from '../src/util/random.js';

/** PCG32 XSH-RR with SplitMix64 seeding, written plainly in BigInt: the definition `Rng` must match. */
class ReferencePcg32 {
  private static readonly MASK = (1n << 64n) - 1n;
  private state = 0n;
  private readonly inc: bigint;
  constructor(seed: number, stream: number) {
    const M = ReferencePcg32.MASK;
    const splitmix = (x: bigint) => {
      let z = (x + 0x9e3779b97f4a7c15n) & M;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      return z ^ (z >> 31n);
    };
    this.inc = ((splitmix(BigInt(stream) ^ 0x5851f42d4c957f2dn) << 1n) | 1n) & M;
    this.next();
    this.state = (this.state + splitmix(BigInt(seed))) & M;
    this.next();
  }
  next(): number {
    const old = this.state;
    this.state = (old * 6364136223846793005n + this.inc) & ReferencePcg32.MASK;
    const x = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rot = Number(old >> 59n);
    return ((x >>> rot) | (x << ((-rot) & 31))) >>> 0;
  }
}

describe('Rng (PCG32 + SplitMix64 streams)', () => {
  it('draws exactly the reference PCG32 stream for seeds and streams across the integer range', () => {
    for (const [seed, stream] of [[0, 0], [1, 0], [42, 7], [2 ** 31, 2 ** 31 + 5], [Number.MAX_SAFE_INTEGER, 123456]]) {
      const ours = new Rng(seed, stream);
      const ref = new ReferencePcg32(seed, stream);
      for (let i = 0; i < 20000; i++) assert.equal(ours.nextUint32(), ref.next(), `seed ${seed} stream ${stream} draw ${i}`);
    }
  });

  it('restores a snapshot to the same continuation', () => {
    const a = new Rng(9, 3);
    for (let i = 0; i < 17; i++) a.next();
    const b = Rng.restore(a.snapshot);
    for (let i = 0; i < 100; i++) assert.equal(b.nextUint32(), a.nextUint32());
  });

  it('fillUniform makes the same draws as nextUint32, scaled into [low, high)', () => {
    const out = new Float32Array(5000);
    new Rng(11).fillUniform(out, -2, 3);
    const r = new Rng(11);
    for (let i = 0; i < out.length; i++) {
      assert.equal(out[i], Math.fround(-2 + r.nextUint32() * (5 / 4294967296)));
      assert.ok(out[i] >= -2 && out[i] <= 3);
    }
  });

  it('next() is uniform in [0, 1) and uniformSource is stream 0', () => {
    const src = uniformSource(5);
    const r = new Rng(5);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const v = src();
      assert.equal(v, r.next());
      assert.ok(v >= 0 && v < 1);
      sum += v;
    }
    assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02, `mean ${sum / 10000}`);
  });

  it('refuses seeds that are not non-negative safe integers', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => new Rng(bad), RangeError);
  });
});
