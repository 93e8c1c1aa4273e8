/**
 * A pickle reader for the subset torch checkpoints use (protocols 2–5).
 *
 * It never imports or runs anything named in the stream: GLOBAL only yields an inert
 * `PickleGlobal`, and calling one (REDUCE / NEWOBJ) runs our own data-building code only for an
 * allow-listed name; any other call becomes a `PickleObject` that just records what was asked.
 */
import { CheckpointError } from '../errors.js';

/** Values torch-specific code builds from allow-listed calls (tensors, storages) extend this. */
export abstract class PickleHostValue {}

export type PickleValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PickleValue[]          // list
  | PickleTuple
  | PickleDict
  | PickleSet
  | PickleGlobal
  | PickleObject
  | PickleHostValue;

export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** dict and collections.OrderedDict; `state` holds what BUILD set (e.g. a state_dict's `_metadata`). */
export class PickleDict extends Map<PickleValue, PickleValue> {
  state: PickleValue | undefined = undefined;
}

export class PickleSet {
  constructor(readonly items: PickleValue[], readonly frozen: boolean) {}
}

/** A reference to `module.name`, resolved to nothing. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualifiedName(): string { return `${this.module}.${this.name}`; }
}

/** Inert stand-in for an object the stream asked us to construct by a non-allow-listed call. */
export class PickleObject {
  /** Set by BUILD (the object's `__setstate__` argument). */
  state: PickleValue | undefined = undefined;
  readonly listItems: PickleValue[] = [];
  readonly dictItems: Array<[PickleValue, PickleValue]> = [];
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: readonly PickleValue[],
  ) {}
}

/** An allow-listed constructor: pure data building from the call's arguments. */
export type PickleCallable = (args: readonly PickleValue[]) => PickleValue;

export interface UnpickleOptions {
  /** Used in error messages (the checkpoint path plus the entry inside it). */
  source: string;
  /** Resolves BINPERSID ids (torch: storages). Without it a persistent id is an error. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Extra allow-listed callables by `module.name`, on top of the built-in ones. */
  callables?: Readonly<Record<string, PickleCallable>>;
  /** Work the program may do, in opcodes (a dict costs 4): bounds time and memory (default MAX_PICKLE_OPS). */
  maxOps?: number;
}

/**
 * Opcodes a pickle may execute. A state_dict needs ~25 per tensor (a 2.7B RUDOLPH ~15k, a
 * Lightning checkpoint with optimizer state ~100k); a stream of 4 MB could otherwise build 4 M
 * dicts (~900 MB). A dict costs 4, so whatever the program, the VM holds ≲ 60 MB.
 */
export const MAX_PICKLE_OPS = 2 ** 20;

/** Thrown by callables/loaders for malformed arguments; the VM adds file and offset. */
export class PickleDataError extends Error {}

const BUILTIN_CALLABLES: Readonly<Record<string, PickleCallable>> = {
  'collections.OrderedDict': orderedDict,
  'builtins.dict': orderedDict,
  '__builtin__.dict': orderedDict,
  'builtins.set': (args) => new PickleSet(iterableItems(args[0]), false),
  '__builtin__.set': (args) => new PickleSet(iterableItems(args[0]), false),
  'builtins.frozenset': (args) => new PickleSet(iterableItems(args[0]), true),
  '__builtin__.frozenset': (args) => new PickleSet(iterableItems(args[0]), true),
  'torch.Size': (args) => new PickleTuple(iterableItems(args[0])),
  // Protocol-2 pickles written by Python 3 encode `bytes` as _codecs.encode(str, 'latin1').
  '_codecs.encode': codecsEncode,
};

function orderedDict(args: readonly PickleValue[]): PickleDict {
  const d = new PickleDict();
  for (const pair of iterableItems(args[0])) {
    const kv = pair instanceof PickleTuple ? pair.items : Array.isArray(pair) ? pair : null;
    if (!kv || kv.length !== 2) throw new PickleDataError('OrderedDict expects (key, value) pairs');
    d.set(kv[0], kv[1]);
  }
  return d;
}

function iterableItems(v: PickleValue | undefined): PickleValue[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  if (v instanceof PickleTuple) return [...v.items];
  if (v instanceof PickleSet) return v.items;
  throw new PickleDataError(`expected a list or tuple argument, got ${describePickleValue(v)}`);
}

function codecsEncode(args: readonly PickleValue[]): Uint8Array {
  const [text, encoding] = args;
  if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
    throw new PickleDataError('_codecs.encode is only accepted as (str, "latin1")');
  }
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 255) throw new PickleDataError('_codecs.encode: character outside latin1');
    out[i] = c;
  }
  return out;
}

/** Short human description of a value, for error messages. */
export function describePickleValue(v: PickleValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (Array.isArray(v)) return `list[${v.length}]`;
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  if (v instanceof PickleTuple) return `tuple[${v.items.length}]`;
  if (v instanceof PickleDict) return `dict[${v.size}]`;
  if (v instanceof PickleSet) return `set[${v.items.length}]`;
  if (v instanceof PickleGlobal) return `global ${v.qualifiedName}`;
  if (v instanceof PickleObject) return `placeholder ${v.module}.${v.name}`;
  if (v instanceof PickleHostValue) return v.constructor.name;
  return typeof v;
}

const MARK_SENTINEL: unique symbol = Symbol('mark');

const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  BINFLOAT: 0x47, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, NONE: 0x4e,
  BINPERSID: 0x51, REDUCE: 0x52, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58,
  EMPTY_LIST: 0x5d, APPEND: 0x61, BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, APPENDS: 0x65,
  BINGET: 0x68, LONG_BINGET: 0x6a, LIST: 0x6c, BINPUT: 0x71, LONG_BINPUT: 0x72,
  SETITEM: 0x73, TUPLE: 0x74, SETITEMS: 0x75, EMPTY_DICT: 0x7d, EMPTY_TUPLE: 0x29,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  PROTO: 0x80, NEWOBJ: 0x81, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f,
  ADDITEMS: 0x90, FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94,
  FRAME: 0x95, BYTEARRAY8: 0x96,
} as const;

type StackItem = PickleValue | typeof MARK_SENTINEL;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Runs the pickle program in `bytes` and returns the value STOP leaves on the stack.
 * Any structural problem is a CheckpointError naming `opts.source` and the byte offset.
 */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions): PickleValue {
  return new Unpickler(bytes, opts).run();
}

class Unpickler {
  private pos = 0;
  private opStart = 0;
  private readonly stack: StackItem[] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly view: DataView;
  private readonly callables: Readonly<Record<string, PickleCallable>>;
  private budget: number;

  constructor(private readonly bytes: Uint8Array, private readonly opts: UnpickleOptions) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.callables = { ...BUILTIN_CALLABLES, ...opts.callables };
    this.budget = opts.maxOps ?? MAX_PICKLE_OPS;
  }

  private spend(units: number): void {
    this.budget -= units;
    if (this.budget < 0) {
      throw this.fail(`more than ${this.opts.maxOps ?? MAX_PICKLE_OPS} operations; a state_dict needs far fewer`);
    }
  }

  run(): PickleValue {
    try {
      for (;;) {
        this.opStart = this.pos;
        const op = this.u8();
        if (op === OP.STOP) return this.pop();
        this.spend(op === OP.EMPTY_DICT || op === OP.DICT || op === OP.REDUCE || op === OP.NEWOBJ ? 4 : 1);
        this.step(op);
      }
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw this.fail(msg, e);
    }
  }

  private fail(message: string, cause?: unknown): CheckpointError {
    return new CheckpointError(`${this.opts.source}: bad pickle at byte ${this.opStart}: ${message}`, { cause });
  }

  private step(op: number): void {
    const s = this.stack;
    switch (op) {
      case OP.PROTO: {
        const v = this.u8();
        if (v > 5) throw this.fail(`unsupported pickle protocol ${v}`);
        return;
      }
      case OP.FRAME: this.take(8); return;
      case OP.MARK: s.push(MARK_SENTINEL); return;
      case OP.POP: this.pop(); return;
      case OP.POP_MARK: this.popMark(); return;
      case OP.DUP: { const v = this.pop(); s.push(v, v); return; }
      case OP.NONE: s.push(null); return;
      case OP.NEWTRUE: s.push(true); return;
      case OP.NEWFALSE: s.push(false); return;
      case OP.BININT: s.push(this.view.getInt32(this.advance(4), true)); return;
      case OP.BININT1: s.push(this.u8()); return;
      case OP.BININT2: s.push(this.view.getUint16(this.advance(2), true)); return;
      case OP.LONG1: s.push(this.long(this.u8())); return;
      case OP.LONG4: s.push(this.long(this.len32(true))); return;
      case OP.BINFLOAT: s.push(this.view.getFloat64(this.advance(8), false)); return;
      case OP.BINUNICODE: s.push(this.text(this.len32(false))); return;
      case OP.SHORT_BINUNICODE: s.push(this.text(this.u8())); return;
      case OP.BINUNICODE8: s.push(this.text(this.len64())); return;
      case OP.BINSTRING: s.push(latin1(this.take(this.len32(true)))); return;
      case OP.SHORT_BINSTRING: s.push(latin1(this.take(this.u8()))); return;
      case OP.BINBYTES: s.push(this.take(this.len32(false)).slice()); return;
      case OP.SHORT_BINBYTES: s.push(this.take(this.u8()).slice()); return;
      case OP.BINBYTES8:
      case OP.BYTEARRAY8: s.push(this.take(this.len64()).slice()); return;
      case OP.EMPTY_LIST: s.push([]); return;
      case OP.EMPTY_TUPLE: s.push(new PickleTuple([])); return;
      case OP.EMPTY_DICT: s.push(new PickleDict()); return;
      case OP.EMPTY_SET: s.push(new PickleSet([], false)); return;
      case OP.TUPLE1: s.push(new PickleTuple(this.popN(1))); return;
      case OP.TUPLE2: s.push(new PickleTuple(this.popN(2))); return;
      case OP.TUPLE3: s.push(new PickleTuple(this.popN(3))); return;
      case OP.TUPLE: s.push(new PickleTuple(this.popMark())); return;
      case OP.LIST: s.push(this.popMark()); return;
      case OP.DICT: {
        const d = new PickleDict();
        this.setItems(d, this.popMark());
        s.push(d);
        return;
      }
      case OP.FROZENSET: s.push(new PickleSet(this.popMark(), true)); return;
      case OP.APPEND: { const v = this.pop(); this.append(this.top(), [v]); return; }
      case OP.APPENDS: { const items = this.popMark(); this.append(this.top(), items); return; }
      case OP.SETITEM: { const [k, v] = this.popN(2); this.setItems(this.top(), [k, v]); return; }
      case OP.SETITEMS: { const items = this.popMark(); this.setItems(this.top(), items); return; }
      case OP.ADDITEMS: {
        const items = this.popMark();
        const target = this.top();
        if (!(target instanceof PickleSet)) throw this.fail(`ADDITEMS on ${describePickleValue(target)}`);
        for (const item of items) target.items.push(item);
        return;
      }
      case OP.BINPUT: this.memo.set(this.u8(), this.peek()); return;
      case OP.LONG_BINPUT: this.memo.set(this.len32(false), this.peek()); return;
      case OP.MEMOIZE: this.memo.set(this.memo.size, this.peek()); return;
      case OP.BINGET: s.push(this.memoGet(this.u8())); return;
      case OP.LONG_BINGET: s.push(this.memoGet(this.len32(false))); return;
      case OP.GLOBAL: {
        const module = this.line();
        const name = this.line();
        s.push(new PickleGlobal(module, name));
        return;
      }
      case OP.STACK_GLOBAL: {
        const [module, name] = this.popN(2);
        if (typeof module !== 'string' || typeof name !== 'string') throw this.fail('STACK_GLOBAL needs two strings');
        s.push(new PickleGlobal(module, name));
        return;
      }
      case OP.REDUCE: {
        const [callee, args] = this.popN(2);
        if (!(args instanceof PickleTuple)) throw this.fail(`REDUCE arguments are ${describePickleValue(args)}, not a tuple`);
        s.push(this.call(callee, args.items));
        return;
      }
      case OP.NEWOBJ: {
        const [cls, args] = this.popN(2);
        if (!(args instanceof PickleTuple)) throw this.fail(`NEWOBJ arguments are ${describePickleValue(args)}, not a tuple`);
        s.push(this.call(cls, args.items));
        return;
      }
      case OP.NEWOBJ_EX: {
        const [cls, args, kwargs] = this.popN(3);
        if (!(args instanceof PickleTuple)) throw this.fail('NEWOBJ_EX arguments are not a tuple');
        const obj = this.placeholder(cls, args.items);
        obj.state = kwargs;
        s.push(obj);
        return;
      }
      case OP.BUILD: {
        const state = this.pop();
        const target = this.top();
        if (target instanceof PickleObject || target instanceof PickleDict) target.state = state;
        else if (target instanceof PickleHostValue) { /* tensor state (hooks) is irrelevant here */ }
        else throw this.fail(`BUILD on ${describePickleValue(target)}`);
        return;
      }
      case OP.BINPERSID: {
        const pid = this.pop();
        if (!this.opts.persistentLoad) throw this.fail('persistent id without a loader');
        s.push(this.opts.persistentLoad(pid));
        return;
      }
      default:
        throw this.fail(`unknown or unsupported opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }

  private call(callee: PickleValue, args: readonly PickleValue[]): PickleValue {
    if (callee instanceof PickleGlobal) {
      const fn = this.callables[callee.qualifiedName];
      if (fn && Object.hasOwn(this.callables, callee.qualifiedName)) return fn(args);
    }
    return this.placeholder(callee, args);
  }

  private placeholder(callee: PickleValue, args: readonly PickleValue[]): PickleObject {
    if (callee instanceof PickleGlobal) return new PickleObject(callee.module, callee.name, args);
    if (callee instanceof PickleObject) return new PickleObject(callee.module, callee.name, args);
    return new PickleObject('', describePickleValue(callee), args);
  }

  private append(target: PickleValue, items: PickleValue[]): void {
    // element by element: spreading a huge APPENDS into push() overflows the call stack
    const into = Array.isArray(target) ? target : target instanceof PickleObject ? target.listItems : null;
    if (into) for (const item of items) into.push(item);
    else throw this.fail(`APPEND on ${describePickleValue(target)}`);
  }

  private setItems(target: PickleValue, flat: PickleValue[]): void {
    if (flat.length % 2 !== 0) throw this.fail('SETITEMS with an odd number of items');
    if (target instanceof PickleDict) {
      for (let i = 0; i < flat.length; i += 2) target.set(flat[i], flat[i + 1]);
    } else if (target instanceof PickleObject) {
      for (let i = 0; i < flat.length; i += 2) target.dictItems.push([flat[i], flat[i + 1]]);
    } else {
      throw this.fail(`SETITEM on ${describePickleValue(target)}`);
    }
  }

  private memoGet(i: number): PickleValue {
    if (!this.memo.has(i)) throw this.fail(`memo entry ${i} read before it was written`);
    return this.memo.get(i) as PickleValue;
  }

  private pop(): PickleValue {
    const v = this.stack.pop();
    if (v === undefined) throw this.fail('stack underflow');
    if (v === MARK_SENTINEL) throw this.fail('unexpected MARK on the stack');
    return v;
  }

  private popN(n: number): PickleValue[] {
    const out = new Array<PickleValue>(n);
    for (let i = n - 1; i >= 0; i--) out[i] = this.pop();
    return out;
  }

  private peek(): PickleValue {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined) throw this.fail('stack underflow');
    if (v === MARK_SENTINEL) throw this.fail('unexpected MARK on the stack');
    return v;
  }

  private top(): PickleValue { return this.peek(); }

  private popMark(): PickleValue[] {
    const i = this.stack.lastIndexOf(MARK_SENTINEL);
    if (i < 0) throw this.fail('no MARK on the stack');
    const items = this.stack.splice(i) as StackItem[];
    return items.slice(1) as PickleValue[];
  }

  private advance(n: number): number {
    if (this.pos + n > this.bytes.length) {
      throw this.fail(`truncated: needs ${n} more bytes, ${this.bytes.length - this.pos} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private take(n: number): Uint8Array {
    const at = this.advance(n);
    return this.bytes.subarray(at, at + n);
  }

  private u8(): number { return this.bytes[this.advance(1)]; }

  private len32(signed: boolean): number {
    const at = this.advance(4);
    const n = signed ? this.view.getInt32(at, true) : this.view.getUint32(at, true);
    if (n < 0) throw this.fail('negative length');
    return n;
  }

  private len64(): number {
    const n = this.view.getBigUint64(this.advance(8), true);
    if (n > BigInt(this.bytes.length)) throw this.fail(`truncated: length ${n} exceeds the stream`);
    return Number(n);
  }

  /** A LONG1/LONG4 integer, refused beyond MAX_LONG_BYTES before any of it is decoded. */
  private long(n: number): number | bigint {
    if (n > MAX_LONG_BYTES) {
      throw this.fail(`an integer of ${n} bytes; a state_dict holds nothing wider than ${MAX_LONG_BYTES} bytes`);
    }
    return decodeLong(this.take(n));
  }

  private text(n: number): string {
    try {
      return utf8.decode(this.take(n));
    } catch (e) {
      if (e instanceof CheckpointError) throw e;
      throw this.fail('invalid UTF-8 in a string', e);
    }
  }

  private line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw this.fail('truncated: unterminated GLOBAL name');
    const s = latin1(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/**
 * The widest LONG1/LONG4 accepted. A state_dict's integers (sizes, strides, offsets, element
 * counts, versions, a Lightning checkpoint's step counters) fit in 8 bytes; 64 leaves room for
 * odd hyper-parameters while keeping a hostile 512 KB integer from costing anything.
 */
export const MAX_LONG_BYTES = 64;

/** Two's-complement little-endian integer; a number when it is exactly representable. Linear in the length. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let hex = '';
  for (let i = b.length - 1; i >= 0; i--) hex += HEX_BYTE[b[i]];
  let v = BigInt(`0x${hex}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
