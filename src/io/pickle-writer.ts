/**
 * Emits protocol-2 pickle opcodes laid out as CPython's pickler does for the values torch writes:
 * every string, global, non-empty tuple, dict and REDUCE result is memoised (BINPUT), repeated
 * strings and globals become BINGETs, TUPLE1-3 for short tuples, SETITEMS in batches of 1000.
 * (CPython memoises by object identity; keying strings by value matches it for torch state dicts,
 * whose repeated strings are interned.) Only opcodes torch's weights-only unpickler accepts are used.
 */

const BATCH = 1000;

export class PickleWriter {
  private readonly chunks: Uint8Array[] = [];
  private readonly memo = new Map<string, number>();
  private readonly encoder = new TextEncoder();

  constructor() {
    this.raw(0x80, 2); // PROTO 2
  }

  /** `module.name` as a GLOBAL, memoised so later uses are BINGETs. */
  global(module: string, name: string): this {
    return this.memoised(`g:${module}\n${name}`, () => {
      this.raw(0x63);
      this.bytes(this.encoder.encode(`${module}\n${name}\n`));
    });
  }

  string(s: string): this {
    return this.memoised(`s:${s}`, () => {
      const b = this.encoder.encode(s);
      this.raw(0x58); // BINUNICODE
      this.u32(b.length);
      this.bytes(b);
    });
  }

  /** A non-negative or negative integer with the smallest opcode CPython would pick. */
  int(v: number): this {
    if (!Number.isSafeInteger(v)) throw new RangeError(`pickle int: ${v} is not a safe integer`);
    if (v >= 0 && v < 0x100) return this.raw(0x4b, v); // BININT1
    if (v >= 0 && v < 0x10000) return this.raw(0x4d, v & 0xff, v >>> 8); // BININT2
    if (v >= -0x80000000 && v <= 0x7fffffff) { this.raw(0x4a); return this.i32(v); } // BININT
    const bytes = longBytes(BigInt(v));
    this.raw(0x8a, bytes.length); // LONG1
    return this.bytes(bytes);
  }

  bool(v: boolean): this { return this.raw(v ? 0x88 : 0x89); }
  none(): this { return this.raw(0x4e); }
  mark(): this { return this.raw(0x28); }
  emptyTuple(): this { return this.raw(0x29); }
  emptyDict(): this { this.raw(0x7d); return this.put(); }
  /** Closes a tuple of `n` items already on the stack (after `mark()` when n > 3). */
  tuple(n: number): this {
    if (n === 0) return this.raw(0x29);
    if (n <= 3) this.raw(0x84 + n); // TUPLE1..3
    else this.raw(0x74);
    return this.put();
  }
  /** Writes a tuple of ints (torch sizes and strides). */
  intTuple(values: readonly number[]): this {
    if (values.length > 3) this.mark();
    for (const v of values) this.int(v);
    return this.tuple(values.length);
  }
  reduce(): this { this.raw(0x52); return this.put(); }
  build(): this { return this.raw(0x62); }
  binpersid(): this { return this.raw(0x51); }
  setitem(): this { return this.raw(0x73); }
  setitems(): this { return this.raw(0x75); }

  /** Writes `count` key/value pairs as CPython does: SETITEM for one, MARK…SETITEMS batches otherwise. */
  dictItems(count: number, writePair: (index: number) => void): this {
    for (let start = 0; start < count; start += BATCH) {
      const n = Math.min(BATCH, count - start);
      if (n === 1) { writePair(start); this.setitem(); continue; }
      this.mark();
      for (let i = start; i < start + n; i++) writePair(i);
      this.setitems();
    }
    return this;
  }

  finish(): Uint8Array {
    this.raw(0x2e); // STOP
    const total = this.chunks.reduce((n, c) => n + c.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of this.chunks) { out.set(c, at); at += c.length; }
    return out;
  }

  /** Memoises a fresh object just written (it is never looked up again, but CPython numbers it). */
  private put(): this {
    const id = this.memo.size;
    this.memo.set(`#${id}`, id);
    return this.binput(id);
  }

  private memoised(key: string, write: () => void): this {
    const id = this.memo.get(key);
    if (id !== undefined) return this.binget(id);
    write();
    const next = this.memo.size;
    this.memo.set(key, next);
    return this.binput(next);
  }

  private binput(id: number): this {
    if (id < 0x100) return this.raw(0x71, id);
    this.raw(0x72);
    return this.u32(id);
  }

  private binget(id: number): this {
    if (id < 0x100) return this.raw(0x68, id);
    this.raw(0x6a);
    return this.u32(id);
  }

  private raw(...b: number[]): this { return this.bytes(Uint8Array.from(b)); }

  private u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    return this.bytes(b);
  }

  private i32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    return this.bytes(b);
  }

  private bytes(b: Uint8Array): this {
    this.chunks.push(b);
    return this;
  }
}

/** Minimal two's-complement little-endian encoding, as CPython's encode_long. */
function longBytes(v: bigint): Uint8Array {
  const out: number[] = [];
  let x = v;
  for (;;) {
    const byte = Number(x & 0xffn);
    out.push(byte);
    x >>= 8n;
    if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
  }
  return Uint8Array.from(out);
}
