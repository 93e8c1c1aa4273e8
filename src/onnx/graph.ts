/**
 * A small ONNX graph builder. Model code calls `g.op('MatMul', [a, b])` and gets symbolic
 * values back; `serialize` writes a ModelProto, with weights inline (small models) or streamed
 * into one external data file (large models: protobuf is limited to 2 GB and loading by path
 * is the fastest, leanest way into onnxruntime — see shared/RUNTIME.md).
 */
import { encodeModel, type AttrValue, type NodeSpec, type OnnxDType, type TensorProtoSpec, type ValueInfoSpec } from './proto.js';

export class Value {
  constructor(readonly name: string) {}
}

export type Dim = number | string;
export type Attr = AttrValue;
export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
  ints: (value: number[]): Attr => ({ kind: 'ints', value }),
  floats: (value: number[]): Attr => ({ kind: 'floats', value }),
};

export type WeightData = Float32Array | Uint8Array | Int8Array | Int32Array | Uint32Array | BigInt64Array | Uint16Array;

/**
 * Weight bytes produced only when the graph is serialized (streaming conversion of big checkpoints:
 * one tensor in memory at a time). Graphs with lazy weights can only be `serialize`d.
 */
export interface LazyWeight {
  readonly byteLength: number;
  load(): Promise<WeightData>;
}

export function isLazy(d: WeightData | LazyWeight): d is LazyWeight {
  return typeof (d as LazyWeight).load === 'function';
}

interface Initializer {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  data: WeightData | LazyWeight;
}

/** How weights enter the graph: baked in as initializers, or fed as inputs at run time (training). */
export type WeightMode = 'initializer' | 'input';

/** Weights fed at run time (mode 'input'): name → data, in the order they were declared. */
export interface WeightFeed {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  data: WeightData;
}

export class GraphBuilder {
  private nodes: NodeSpec[] = [];
  private initializers: Initializer[] = [];
  private inputs: ValueInfoSpec[] = [];
  private outputs: ValueInfoSpec[] = [];
  private weightInputs: WeightFeed[] = [];
  private names = new Set<string>();
  private counter = 0;
  private scopeStack: string[] = [];
  private opsets = new Map<string, number>([['', 20]]);

  constructor(readonly name: string, readonly weightMode: WeightMode = 'initializer') {}

  /** Prefixes node/value names made inside `fn` (readable graphs, easier debugging). */
  scope<T>(prefix: string, fn: () => T): T {
    this.scopeStack.push(prefix);
    try { return fn(); } finally { this.scopeStack.pop(); }
  }

  private fresh(hint: string): string {
    const base = [...this.scopeStack, hint].join('/');
    let n = base;
    while (this.names.has(n)) n = `${base}_${++this.counter}`;
    this.names.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: duplicate value name ${name}`);
    this.names.add(name);
    return name;
  }

  useOpset(domain: string, version: number): void { this.opsets.set(domain, version); }

  input(name: string, dtype: OnnxDType, shape: Dim[]): Value {
    this.inputs.push({ name: this.claim(name), dtype, shape });
    return new Value(name);
  }

  output(v: Value, name: string, dtype: OnnxDType, shape: Dim[]): void {
    this.claim(name);
    this.nodes.push({ opType: 'Identity', name: `out/${name}`, inputs: [v.name], outputs: [name], attributes: {} });
    this.outputs.push({ name, dtype, shape });
  }

  /** A model parameter: an initializer, or a graph input in 'input' mode (fed zero-copy at run time). */
  weight(name: string, dtype: OnnxDType, dims: number[], data: WeightData | LazyWeight): Value {
    this.claim(name);
    if (this.weightMode === 'input') {
      if (isLazy(data)) throw new Error(`graph ${this.name}: weight ${name} must be in memory to be fed as an input`);
      this.inputs.push({ name, dtype, shape: dims });
      this.weightInputs.push({ name, dtype, dims, data });
    } else {
      this.initializers.push({ name, dtype, dims, data });
    }
    return new Value(name);
  }

  /**
   * A constant baked into the graph whatever the weight mode: small constants, and weights derived
   * from parameters (quantised, cast), which are lazy when the parameters are.
   */
  constant(hint: string, dtype: OnnxDType, dims: number[], data: WeightData | LazyWeight): Value {
    const name = this.fresh(hint);
    this.initializers.push({ name, dtype, dims, data });
    return new Value(name);
  }

  int64s(values: number[], hint = 'const'): Value {
    return this.constant(hint, 'int64', [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  scalarInt64(value: number, hint = 'const'): Value {
    return this.constant(hint, 'int64', [], BigInt64Array.of(BigInt(value)));
  }

  scalarFloat(value: number, hint = 'const'): Value {
    return this.constant(hint, 'float32', [], Float32Array.of(value));
  }

  /** Adds a node with `nOutputs` outputs. */
  opN(opType: string, inputs: (Value | null)[], attributes: Record<string, Attr> = {}, nOutputs = 1, domain = ''): Value[] {
    const outs = Array.from({ length: nOutputs }, (_, i) => this.fresh(nOutputs === 1 ? opType : `${opType}_${i}`));
    this.nodes.push({
      opType, domain: domain || undefined, name: this.fresh(`${opType}_node`),
      inputs: inputs.map((v) => (v ? v.name : '')), outputs: outs, attributes,
    });
    return outs.map((n) => new Value(n));
  }

  op(opType: string, inputs: (Value | null)[], attributes: Record<string, Attr> = {}, domain = ''): Value {
    return this.opN(opType, inputs, attributes, 1, domain)[0];
  }

  /** Weights declared in 'input' mode, to feed at run time. */
  get weightFeeds(): readonly WeightFeed[] { return this.weightInputs; }

  /** The recorded nodes in creation order, which is topological (autodiff walks them backwards). */
  get nodeList(): readonly NodeSpec[] { return this.nodes; }

  /** dtype, shape and (for initializers and weights) data of a graph input or initializer; undefined for node outputs. */
  declared(name: string): { dtype: OnnxDType; shape: Dim[]; data?: WeightData } | undefined {
    const init = this.initializers.find((t) => t.name === name);
    if (init) return { dtype: init.dtype, shape: init.dims, data: isLazy(init.data) ? undefined : init.data };
    const input = this.inputs.find((t) => t.name === name);
    if (!input) return undefined;
    return { dtype: input.dtype, shape: input.shape, data: this.weightInputs.find((t) => t.name === name)?.data };
  }

  private spec(initializers: TensorProtoSpec[]) {
    return {
      graphName: this.name,
      nodes: foldOutputIdentities(this.nodes, this.outputs),
      initializers,
      inputs: this.inputs,
      outputs: this.outputs,
      opsets: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      producer: 'rudolph-ts',
    };
  }

  /** The whole model in one buffer with weights inline (small models, tests). */
  toBytes(): Uint8Array {
    return encodeModel(this.spec(this.initializers.map((t) => {
      if (isLazy(t.data)) throw new Error(`graph ${this.name}: weight ${t.name} is lazy; serialize() the graph instead`);
      return { name: t.name, dtype: t.dtype, dims: t.dims, raw: bytesOf(t.data) };
    })));
  }

  /**
   * The model with its large weights external: tensors above `inlineLimit` bytes are handed to
   * `sink` one after another at 4 KiB-aligned offsets of one data file named `location` (so
   * onnxruntime can map them), lazy weights loaded one at a time; returns the ModelProto bytes
   * that refer to them. A Node caller streams the sink into a file, a browser into memory.
   */
  async serialize(sink: (bytes: Uint8Array) => Promise<void>, location: string, inlineLimit = 1024): Promise<Uint8Array> {
    const specs: TensorProtoSpec[] = [];
    let offset = 0;
    for (const t of this.initializers) {
      const raw = bytesOf(isLazy(t.data) ? await t.data.load() : t.data);
      if (raw.byteLength <= inlineLimit) {
        specs.push({ name: t.name, dtype: t.dtype, dims: t.dims, raw });
        continue;
      }
      const pad = (4096 - (offset % 4096)) % 4096;
      if (pad) { await sink(new Uint8Array(pad)); offset += pad; }
      await sink(raw);
      specs.push({ name: t.name, dtype: t.dtype, dims: t.dims, external: { location, offset, length: raw.byteLength } });
      offset += raw.byteLength;
    }
    return encodeModel(this.spec(specs));
  }

  /**
   * Every use of value `from` (node inputs, graph outputs) now reads `to` instead. Used to feed a
   * value computed elsewhere (a saved activation) in place of recomputing it; `prune` then drops
   * the nodes that only served the replaced value.
   */
  substitute(from: Value, to: Value): void {
    for (const node of this.nodes) node.inputs = node.inputs.map((name) => (name === from.name ? to.name : name));
  }

  /** Removes nodes no graph output depends on, and initializers nothing reads any more. */
  prune(): void {
    const needed = new Set(this.outputs.map((o) => o.name));
    const kept: NodeSpec[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      if (!node.outputs.some((o) => needed.has(o))) continue;
      kept.push(node);
      for (const name of node.inputs) if (name) needed.add(name);
    }
    this.nodes = kept.reverse();
    this.initializers = this.initializers.filter((t) => needed.has(t.name));
  }

  /** Names of the graph inputs (weights fed in 'input' mode included). */
  get inputNames(): string[] { return this.inputs.map((i) => i.name); }

  /** Bytes of all weights, lazy ones included (size of the data `serialize` writes, padding aside). */
  get weightBytes(): number {
    return this.initializers.reduce((n, t) => n + t.data.byteLength, 0);
  }

  /** An upper bound of the external data `serialize` writes: the weights plus one alignment pad per tensor. */
  get serializedBytesBound(): number {
    return this.weightBytes + 4096 * this.initializers.length;
  }

  /** Drops references to weight data once serialized, so the JS heap can release them. */
  releaseWeights(): void {
    this.initializers = [];
    this.weightInputs = [];
  }
}

/**
 * The nodes as written to the model, with each output's naming Identity folded into the node that
 * computes the value (that node's output takes the graph output's name): onnxruntime keeps an
 * Identity that produces a graph output, and a node run costs microseconds whatever it does (the
 * 350M decoding graph had 48 of them per step, one per cached key and value). Kept: Identities of
 * graph inputs and initializers, and a second output of the same value.
 */
function foldOutputIdentities(nodes: NodeSpec[], outputs: readonly ValueInfoSpec[]): NodeSpec[] {
  const outputNames = new Set(outputs.map((o) => o.name));
  const producer = new Map<string, NodeSpec>();
  for (const node of nodes) for (const o of node.outputs) producer.set(o, node);
  const renamed = new Map<string, string>();
  const dropped = new Set<NodeSpec>();
  for (const node of nodes) {
    if (node.opType !== 'Identity' || !node.name.startsWith('out/') || node.domain) continue;
    const [source] = node.inputs, [target] = node.outputs;
    if (!producer.has(source) || outputNames.has(source) || renamed.has(source)) continue;
    renamed.set(source, target);
    dropped.add(node);
  }
  if (renamed.size === 0) return nodes;
  const rename = (name: string) => renamed.get(name) ?? name;
  return nodes.filter((n) => !dropped.has(n)).map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
}

export function bytesOf(d: WeightData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}
