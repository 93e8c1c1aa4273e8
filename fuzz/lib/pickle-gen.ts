/**
 * Random pickle programs: opcode sequences with plausible-to-hostile arguments (lengths that
 * fit or lie, wide integers, memo indexes that exist or not, GLOBALs naming torch rebuild
 * functions and dangerous builtins alike), to reach every corner of the unpickler.
 */
import type { FuzzRng } from './rng.js';

const GLOBALS = [
  ['collections', 'OrderedDict'], ['torch._utils', '_rebuild_tensor_v2'], ['torch._utils', '_rebuild_parameter'], ['torch', 'FloatStorage'],
  ['torch', 'HalfStorage'], ['torch', 'LongStorage'], ['torch', 'BoolStorage'], ['builtins', 'set'], ['builtins', 'frozenset'], ['_codecs', 'encode'],
  ['torch', 'Size'], ['os', 'system'], ['builtins', 'eval'], ['__builtin__', 'dict'], ['numpy.core.multiarray', 'scalar'],
] as const;

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

function u64(v: number): number[] {
  const big = BigInt.asUintN(64, BigInt(Math.trunc(v)));
  return Array.from({ length: 8 }, (_, b) => Number((big >> BigInt(8 * b)) & 0xffn));
}

/** A length that usually matches the data that follows, sometimes lies (larger, huge, negative). */
function length(rng: FuzzRng, actual: number): number {
  return rng.chance(0.85) ? actual : rng.chance(0.5) ? actual + rng.range(1, 64) : rng.interestingInt();
}

function text(rng: FuzzRng): Uint8Array {
  const s = rng.pick(['storage', 'cpu', '0', 'weight', 'state_dict', '_metadata', 'version', 'latin1', 'ключ', 'a'.repeat(rng.size(5000))]);
  return new TextEncoder().encode(s);
}

/** One cheap opcode repeated up to millions of times (object and memo storms, deep stacks). */
function storm(rng: FuzzRng): Uint8Array {
  const n = rng.size(5_000_000) + 1;
  const out = new Uint8Array(n + 4);
  out.set([0x80, 4, 0x7d]);
  out.fill(rng.pick([0x7d, 0x5d, 0x8f, 0x28, 0x4e, 0x32, 0x94, 0x29, 0x88]), 3, n + 3);
  out[n + 3] = 0x2e;
  return out;
}

export function randomPickle(rng: FuzzRng): Uint8Array {
  if (rng.chance(0.03)) return storm(rng);
  const out: number[] = [];
  const put = (bytes: ArrayLike<number>): void => {
    for (let i = 0; i < bytes.length; i++) out.push(bytes[i]);
  };
  if (rng.chance(0.9)) out.push(0x80, rng.pick([2, 2, 3, 4, 5, 6]));
  const ops = rng.size(400) + 1;
  for (let k = 0; k < ops; k++) {
    const op = rng.pick([
      0x28, 0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x4a, 0x4b, 0x4d, 0x8a, 0x8b, 0x47, 0x58, 0x8c, 0x8d, 0x54, 0x55, 0x42, 0x43, 0x8e, 0x96,
      0x5d, 0x29, 0x7d, 0x8f, 0x85, 0x86, 0x87, 0x74, 0x6c, 0x64, 0x91, 0x61, 0x65, 0x73, 0x75, 0x90, 0x71, 0x72, 0x94, 0x68, 0x6a,
      0x63, 0x93, 0x52, 0x81, 0x92, 0x62, 0x51, 0x95, 0x2e, rng.int(256),
    ]);
    out.push(op);
    switch (op) {
      case 0x4a: put(u32(rng.interestingInt())); break; // BININT
      case 0x4b: out.push(rng.int(256)); break; // BININT1
      case 0x4d: out.push(rng.int(256), rng.int(256)); break; // BININT2
      case 0x47: put(rng.bytes(8)); break; // BINFLOAT
      case 0x8a: { // LONG1
        const n = rng.int(20);
        out.push(length(rng, n) & 0xff);
        put(rng.bytes(n));
        break;
      }
      case 0x8b: { // LONG4: small, or wide enough to have been quadratic
        const n = rng.chance(0.9) ? rng.int(16) : rng.size(600_000);
        put(u32(length(rng, n)));
        put(rng.bytes(n));
        break;
      }
      case 0x58: case 0x54: case 0x42: { // BINUNICODE, BINSTRING, BINBYTES
        const t = text(rng);
        put(u32(length(rng, t.length)));
        put(t);
        break;
      }
      case 0x8c: case 0x55: case 0x43: { // SHORT_*
        const t = text(rng).slice(0, 255);
        out.push(length(rng, t.length) & 0xff);
        put(t);
        break;
      }
      case 0x8d: case 0x8e: case 0x96: { // 8-byte lengths
        const t = text(rng);
        put(u64(length(rng, t.length)));
        put(t);
        break;
      }
      case 0x71: out.push(rng.int(8)); break; // BINPUT
      case 0x68: out.push(rng.int(8)); break; // BINGET
      case 0x72: case 0x6a: put(u32(rng.chance(0.8) ? rng.int(8) : rng.interestingInt())); break;
      case 0x63: { // GLOBAL
        const [m, n] = rng.pick(GLOBALS);
        put(new TextEncoder().encode(rng.chance(0.95) ? `${m}\n${n}\n` : `${m}${n}`));
        break;
      }
      case 0x95: put(u64(rng.interestingInt())); break; // FRAME
      default: break;
    }
  }
  if (rng.chance(0.8)) out.push(0x2e);
  return Uint8Array.from(out);
}
