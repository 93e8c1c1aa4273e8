/**
 * Generic byte mutations (AFL-style): flips, interesting values, integer overwrites, inserts,
 * deletes, duplications, splices and truncation. Targets add structure-aware mutations on top.
 */
import type { FuzzRng } from './rng.js';

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x0a, 0x22, 0x7b, 0x5b, 0x2c, 0x30, 0x39];

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One mutation of `data` (a copy; `data` is untouched). `donor` is another input to splice from. */
export function mutateOnce(rng: FuzzRng, input: Uint8Array, donor?: Uint8Array): Uint8Array {
  // a plain view: Buffer#slice shares memory, and a mutation must never reach the seed
  const data = new Uint8Array(input.buffer, input.byteOffset, input.length);
  const n = data.length;
  const at = n === 0 ? 0 : rng.int(n);
  const out = data.slice();
  switch (rng.int(11)) {
    case 0: // flip a bit
      if (n) out[at] ^= 1 << rng.int(8);
      return out;
    case 1: // an interesting byte
      if (n) out[at] = rng.pick(INTERESTING_BYTES);
      return out;
    case 2: // a random byte
      if (n) out[at] = rng.int(256);
      return out;
    case 3: { // an interesting little-endian integer of 1, 2, 4 or 8 bytes
      const width = rng.pick([1, 2, 4, 8]);
      if (n < width) return out;
      const p = rng.int(n - width + 1);
      const v = BigInt.asUintN(64, BigInt(Math.trunc(rng.interestingInt())));
      for (let b = 0; b < width; b++) out[p + b] = Number((v >> BigInt(8 * b)) & 0xffn);
      return out;
    }
    case 4: // insert random bytes
      return concat(data.subarray(0, at), rng.bytes(rng.size(64) + 1), data.subarray(at));
    case 5: { // delete a range
      const len = Math.min(n - at, rng.size(256) + 1);
      return concat(data.subarray(0, at), data.subarray(at + len));
    }
    case 6: { // duplicate a range, sometimes many times
      const len = Math.min(n - at, rng.size(256) + 1);
      const piece = data.subarray(at, at + len);
      const times = rng.chance(0.1) ? rng.size(2000) + 1 : 1;
      return concat(data.subarray(0, at + len), ...Array.from({ length: times }, () => piece), data.subarray(at + len));
    }
    case 7: // truncate
      return data.slice(0, at);
    case 8: { // splice in a piece of another input
      if (!donor || donor.length === 0) return out;
      const from = rng.int(donor.length);
      const len = Math.min(donor.length - from, rng.size(4096) + 1);
      return concat(data.subarray(0, at), donor.subarray(from, from + len), data.subarray(Math.min(n, at + len)));
    }
    case 9: { // overwrite a range with one repeated byte
      const len = Math.min(n - at, rng.size(512) + 1);
      out.fill(rng.pick(INTERESTING_BYTES), at, at + len);
      return out;
    }
    default: // an ASCII digit run (numbers in text formats)
      return concat(data.subarray(0, at), new TextEncoder().encode(String(rng.interestingInt())), data.subarray(Math.min(n, at + 1)));
  }
}

/** A few stacked mutations (1 to 8, mostly few). */
export function mutate(rng: FuzzRng, data: Uint8Array, donor?: Uint8Array): Uint8Array {
  let out = data;
  const count = 1 + Math.min(7, rng.size(16));
  for (let k = 0; k < count; k++) out = mutateOnce(rng, out, donor);
  return out;
}
