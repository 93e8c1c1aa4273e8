/**
 * Static shape knowledge for autodiff: ranks, and dims that are numbers, symbols or unknown.
 * Gradient rules use it to skip work (no broadcast to undo when shapes provably match) and to
 * build static constants (pads, split sizes); where it knows nothing they fall back to Shape ops.
 *
 * A symbolic dim is a canonical product string such as "batch*tokens": graph inputs name their
 * dynamic dims, and Reshape/Shape/Concat carry those names through, so [batch*tokens, h] after a
 * flatten and [batch, tokens, h] after the matching unflatten are both known.
 */
import type { GraphBuilder } from '../graph.js';
import type { AttrValue, NodeSpec } from '../proto.js';

/** number = fixed, string = symbolic product, null = unknown */
export type SymDim = number | string | null;
/** dims of a value; null when even the rank is unknown */
export type Dims = SymDim[] | null;

export interface ShapeTable {
  dims(name: string): Dims;
  /** Known values of a small int tensor (shape vectors, axes, scalars); entries may be symbolic or unknown. */
  ints(name: string): SymDim[] | undefined;
}

// ---- symbolic products -----------------------------------------------------------------

interface Product { coef: number; syms: string[] }

function toProduct(d: SymDim): Product | null {
  if (d === null) return null;
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const f of d.split('*')) {
    if (/^\d+$/.test(f)) coef *= Number(f);
    else syms.push(f);
  }
  return { coef, syms };
}

function fromProduct(p: Product): SymDim {
  if (p.syms.length === 0) return p.coef;
  const syms = [...p.syms].sort();
  return p.coef === 1 ? syms.join('*') : [String(p.coef), ...syms].join('*');
}

function mulDims(ds: SymDim[]): SymDim {
  const out: Product = { coef: 1, syms: [] };
  for (const d of ds) {
    const p = toProduct(d);
    if (!p) return null;
    if (p.coef === 0) return 0;
    out.coef *= p.coef;
    out.syms.push(...p.syms);
  }
  return fromProduct(out);
}

function divDims(a: SymDim, b: SymDim): SymDim {
  const pa = toProduct(a), pb = toProduct(b);
  if (!pa || !pb || pb.coef === 0 || pa.coef % pb.coef !== 0) return null;
  const syms = [...pa.syms];
  for (const s of pb.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return null;
    syms.splice(i, 1);
  }
  return fromProduct({ coef: pa.coef / pb.coef, syms });
}

function addDims(ds: SymDim[]): SymDim {
  let sum = 0;
  for (const d of ds) {
    if (typeof d !== 'number') return null;
    sum += d;
  }
  return sum;
}

// ---- helpers -------------------------------------------------------------------------------

export function attrInt(node: NodeSpec, name: string, fallback: number): number;
export function attrInt(node: NodeSpec, name: string): number | undefined;
export function attrInt(node: NodeSpec, name: string, fallback?: number): number | undefined {
  const a: AttrValue | undefined = node.attributes[name];
  return a && a.kind === 'int' ? a.value : fallback;
}

export function attrInts(node: NodeSpec, name: string): number[] | undefined {
  const a = node.attributes[name];
  return a && a.kind === 'ints' ? a.value : undefined;
}

export function attrFloat(node: NodeSpec, name: string, fallback: number): number {
  const a = node.attributes[name];
  return a && a.kind === 'float' ? a.value : fallback;
}

export function attrString(node: NodeSpec, name: string, fallback: string): string {
  const a = node.attributes[name];
  return a && a.kind === 'string' ? a.value : fallback;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Numpy-style broadcast of dims (right-aligned). */
export function broadcastDims(list: Dims[]): Dims {
  if (list.some((d) => d === null)) return null;
  const ds = list as SymDim[][];
  const rank = Math.max(...ds.map((d) => d.length));
  const out: SymDim[] = [];
  for (let i = 0; i < rank; i++) {
    let r: SymDim = 1;
    let unknown = false;
    for (const d of ds) {
      const v = i - (rank - d.length) >= 0 ? d[i - (rank - d.length)] : 1;
      if (v === 1) continue;
      if (typeof v === 'number') { r = v; unknown = false; break; }
      if (r === 1) r = v;
      else if (r !== v) unknown = true;
    }
    out.push(unknown ? null : r);
  }
  return out;
}

/** Dims known to be identical at run time. */
export function sameDims(a: Dims, b: Dims): boolean {
  return a !== null && b !== null && a.length === b.length && a.every((d, i) => d !== null && d === b[i]);
}

function sliceInts(values: SymDim[], start: number, end: number): SymDim[] {
  const n = values.length;
  const s = Math.max(0, Math.min(n, start < 0 ? start + n : start));
  const e = Math.max(0, Math.min(n, end < 0 ? end + n : end));
  return values.slice(s, Math.max(s, e));
}

function knownNumbers(v: SymDim[] | undefined): number[] | undefined {
  return v && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
}

// ---- inference -----------------------------------------------------------------------------

/** What a shape rule sees of its node: input dims, known int values, and where to put results. */
interface ShapeIO {
  /** dims of each input ('' inputs: null) */
  din: Dims[];
  /** known values of a small int input tensor */
  intsOf(name: string): SymDim[] | undefined;
  /** records output i's dims (and its known int values) */
  set(i: number, d: Dims, v?: SymDim[]): void;
}

/** Infers a node's output dims; an operator without a rule gets unknown outputs. */
type ShapeRule = (node: NodeSpec, io: ShapeIO) => void;

const sameAsInput0: ShapeRule = (node, { din, intsOf, set }) => set(0, din[0], node.opType === 'Identity' || node.opType === 'Cast' ? intsOf(node.inputs[0]) : undefined);
const broadcasting: ShapeRule = (_, { din, set }) => set(0, broadcastDims(din));
const reducer: ShapeRule = (node, { din, intsOf, set }) => set(0, reduceDims(node, din[0], node.inputs[1] ? intsOf(node.inputs[1]) : undefined));
const rulesFor = (ops: string[], rule: ShapeRule) => Object.fromEntries(ops.map((op) => [op, rule]));

/** Shape rules per operator (the forward counterpart of VJP_RULES). */
const SHAPE_RULES: Readonly<Record<string, ShapeRule>> = {
  ...rulesFor([
    'Identity', 'Neg', 'Abs', 'Relu', 'Tanh', 'Sigmoid', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Erf', 'Cast', 'CastLike',
    'Gelu', 'Softmax', 'LogSoftmax', 'Clip', 'Not', 'ScatterND', 'ScatterElements', 'IsNaN',
  ], sameAsInput0),
  ...rulesFor([
    'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mod', 'Equal', 'Less', 'LessOrEqual', 'Greater',
    'GreaterOrEqual', 'And', 'Or', 'Xor', 'Where', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor',
  ], broadcasting),
  ...rulesFor(['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSumSquare', 'ReduceL2'], reducer),
  Dropout: (_, { din, set }) => { set(0, din[0]); set(1, din[0]); },
  LayerNormalization: (node, { din, set }) => {
    const d0 = din[0];
    set(0, d0);
    const stat = d0 ? d0.map((d, i) => (i >= normAxis(attrInt(node, 'axis', -1), d0.length) ? 1 : d)) : null;
    set(1, stat); set(2, stat);
  },
  Shape: (node, { din, set }) => {
    const d0 = din[0];
    if (!d0) return set(0, [null]);
    const v = sliceInts(d0, attrInt(node, 'start', 0), attrInt(node, 'end', d0.length));
    set(0, [v.length], v);
  },
  Size: (_, { din, set }) => set(0, [], din[0] ? [mulDims(din[0])] : undefined),
  NonZero: (_, { din, set }) => set(0, din[0] ? [din[0].length, null] : [null, null]),
  ConstantOfShape: (node, { din, intsOf, set }) => {
    const v = intsOf(node.inputs[0]);
    set(0, v ? [...v] : din[0] && typeof din[0][0] === 'number' ? Array.from({ length: din[0][0] }, () => null) : null);
  },
  Range: (_, { set }) => set(0, [null]),
  Expand: (node, { din, intsOf, set }) => {
    const v = intsOf(node.inputs[1]);
    const target: Dims = v ? v.map((x) => (x === 1 ? 1 : x)) : din[1] && typeof din[1][0] === 'number' ? Array.from({ length: din[1][0] }, () => null) : null;
    set(0, broadcastDims([din[0], target]));
  },
  Reshape: (node, { din, intsOf, set }) => set(0, reshapeDims(din[0], intsOf(node.inputs[1]), din[1])),
  Flatten: (node, { din, set }) => {
    const d0 = din[0];
    const axis = d0 ? normAxis(attrInt(node, 'axis', 1), d0.length) : 0;
    set(0, d0 ? [mulDims(d0.slice(0, axis)), mulDims(d0.slice(axis))] : null);
  },
  Unsqueeze: (node, { din, intsOf, set }) => {
    const axes = knownNumbers(intsOf(node.inputs[1]));
    const d0 = din[0];
    if (!axes || !d0) return set(0, null);
    const rank = d0.length + axes.length;
    const norm = new Set(axes.map((a) => normAxis(a, rank)));
    const out: SymDim[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) out.push(norm.has(i) ? 1 : d0[j++]);
    set(0, out, rank === 1 && d0.length === 0 ? intsOf(node.inputs[0]) : undefined);
  },
  Squeeze: (node, { din, intsOf, set }) => {
    const d0 = din[0];
    const axes = node.inputs[1] ? knownNumbers(intsOf(node.inputs[1])) : d0?.every((d) => d !== null && typeof d === 'number') ? d0.flatMap((d, i) => (d === 1 ? [i] : [])) : undefined;
    if (!axes || !d0) return set(0, null);
    const norm = new Set(axes.map((a) => normAxis(a, d0.length)));
    set(0, d0.filter((_, i) => !norm.has(i)));
  },
  Transpose: (node, { din, set }) => {
    const d0 = din[0];
    if (!d0) return set(0, null);
    const perm = attrInts(node, 'perm') ?? d0.map((_, i) => d0.length - 1 - i);
    set(0, perm.map((p) => d0[p]));
  },
  Concat: (node, { din, intsOf, set }) => {
    if (din.some((d) => d === null)) return set(0, null);
    const ds = din as SymDim[][];
    const rank = ds[0].length;
    const axis = normAxis(attrInt(node, 'axis', 0), rank);
    const out = ds[0].map((_, i) => (i === axis ? addDims(ds.map((d) => d[i])) : ds.map((d) => d[i]).find((x) => x !== null) ?? null));
    const vs = node.inputs.map(intsOf);
    set(0, out, rank === 1 && vs.every((v) => v) ? vs.flatMap((v) => v!) : undefined);
  },
  Split: (node, { din, intsOf, set }) => {
    const d0 = din[0];
    const sizes = node.inputs[1] ? knownNumbers(intsOf(node.inputs[1])) : undefined;
    node.outputs.forEach((_, i) => {
      if (!d0) return set(i, null);
      const axis = normAxis(attrInt(node, 'axis', 0), d0.length);
      set(i, d0.map((d, j) => (j === axis ? (sizes ? sizes[i] : null) : d)));
    });
  },
  Slice: (node, { din, intsOf, set }) => set(0, ...sliceShape(din[0], intsOf(node.inputs[0]), node.inputs.slice(1).map(intsOf))),
  Gather: (node, { din, intsOf, set }) => {
    const d0 = din[0], di = din[1];
    if (!d0 || !di) return set(0, null);
    const axis = normAxis(attrInt(node, 'axis', 0), d0.length);
    const data = intsOf(node.inputs[0]), idx = knownNumbers(intsOf(node.inputs[1]));
    const picked = d0.length === 1 && data && idx ? idx.map((i) => data[i < 0 ? i + data.length : i] ?? null) : undefined;
    set(0, [...d0.slice(0, axis), ...di, ...d0.slice(axis + 1)], picked);
  },
  MatMul: (_, { din, set }) => set(0, matmulDims(din[0], din[1])),
  Gemm: (node, { din, set }) => {
    const a = din[0], b = din[1];
    set(0, a && b ? [attrInt(node, 'transA', 0) ? a[1] : a[0], attrInt(node, 'transB', 0) ? b[0] : b[1]] : null);
  },
  SoftmaxCrossEntropyLoss: (node, { din, set }) => {
    const d0 = din[0];
    set(0, attrString(node, 'reduction', 'mean') === 'none' ? (d0 ? [d0[0], ...d0.slice(2)] : null) : []);
    set(1, d0);
  },
  Pad: (_, { din, set }) => set(0, din[0] ? din[0].map(() => null) : null),
};

/** Infers dims for every value of `g`'s recorded nodes (forward part: call before adding backward nodes). */
export function inferShapes(g: GraphBuilder): ShapeTable {
  const dims = new Map<string, Dims>();
  const ints = new Map<string, SymDim[]>();
  const declaredCache = new Map<string, Dims>();

  const dimsOf = (name: string): Dims => {
    if (!name) return null;
    const hit = dims.get(name);
    if (hit !== undefined) return hit;
    let d = declaredCache.get(name);
    if (d === undefined) {
      const decl = g.declared(name);
      d = decl ? decl.shape.map((x) => x) : null;
      declaredCache.set(name, d);
      if (decl?.data && (decl.dtype === 'int64' || decl.dtype === 'int32') && decl.shape.length <= 1) {
        ints.set(name, Array.from(decl.data as ArrayLike<number | bigint>, (x) => Number(x)));
      }
    }
    return d;
  };
  const intsOf = (name: string): SymDim[] | undefined => {
    if (!name) return undefined;
    dimsOf(name);
    return ints.get(name);
  };

  for (const node of g.nodeList) {
    const set = (i: number, d: Dims, v?: SymDim[]) => {
      const name = node.outputs[i];
      if (!name) return;
      dims.set(name, d);
      if (v) ints.set(name, v);
    };
    // other domains (com.microsoft) and operators without a rule: outputs unknown
    const rule = node.domain ? undefined : SHAPE_RULES[node.opType];
    if (rule) rule(node, { din: node.inputs.map(dimsOf), intsOf, set });
    else node.outputs.forEach((_, i) => set(i, null));
  }
  return { dims: dimsOf, ints: intsOf };
}

function reshapeDims(d0: Dims, target: SymDim[] | undefined, targetDims: Dims): Dims {
  if (!target) {
    const n = targetDims?.[0];
    return typeof n === 'number' ? Array.from({ length: n }, () => null) : null;
  }
  const out: SymDim[] = target.map((t, i) => (t === 0 ? (d0 ? d0[i] ?? null : null) : t === -1 ? null : t));
  const minus = target.indexOf(-1);
  if (minus >= 0 && d0) {
    const others = out.filter((_, i) => i !== minus);
    out[minus] = divDims(mulDims(d0), mulDims(others));
  }
  return out;
}

function sliceShape(d0: Dims, data: SymDim[] | undefined, args: (SymDim[] | undefined)[]): [Dims, SymDim[] | undefined] {
  if (!d0) return [null, undefined];
  const [starts, ends, axesIn, steps] = args.map(knownNumbers);
  if (!starts || !ends) return [d0.map(() => null), undefined];
  const axes = axesIn ?? starts.map((_, i) => i);
  if (steps && steps.some((s) => s !== 1)) return [d0.map(() => null), undefined];
  const out = [...d0];
  axes.forEach((a, i) => {
    const ax = normAxis(a, d0.length);
    const n = d0[ax];
    if (typeof n !== 'number') {
      // start ≥ 0 and end within a dim we cannot see: the length is end - start only if end fits
      out[ax] = null;
      return;
    }
    const s = Math.max(0, Math.min(n, starts[i] < 0 ? starts[i] + n : starts[i]));
    const e = Math.max(0, Math.min(n, ends[i] < 0 ? ends[i] + n : ends[i]));
    out[ax] = Math.max(0, e - s);
  });
  const values = data && d0.length === 1 && axes.length === 1 ? sliceInts(data, starts[0], ends[0]) : undefined;
  return [out, values];
}

function reduceDims(node: NodeSpec, d0: Dims, axesInput: SymDim[] | undefined): Dims {
  if (!d0) return null;
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const axesAttr = attrInts(node, 'axes');
  let axes: number[] | undefined = axesAttr ?? knownNumbers(axesInput);
  if (node.inputs[1] && !axes) return keep ? d0.map(() => null) : null;
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0) === 1) return d0;
    axes = d0.map((_, i) => i);
  }
  const norm = new Set(axes.map((a) => normAxis(a, d0.length)));
  return keep ? d0.map((d, i) => (norm.has(i) ? 1 : d)) : d0.filter((_, i) => !norm.has(i));
}

function matmulDims(a: Dims, b: Dims): Dims {
  if (!a || !b || a.length < 2 || b.length < 2) return null;
  const batch = broadcastDims([a.slice(0, -2), b.slice(0, -2)]);
  return batch ? [...batch, a[a.length - 2], b[b.length - 1]] : null;
}
