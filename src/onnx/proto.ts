/**
 * A minimal protobuf writer for the ONNX messages we emit (ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto, ValueInfoProto). Field numbers follow onnx/onnx.proto.
 * Weight bytes never pass through here when they live in an external data file.
 */

class Writer {
  private chunks: Uint8Array[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = new Uint8Array(Math.max(n, this.buf.length * 2));
  }

  private flush(): void {
    if (this.pos > 0) this.chunks.push(this.buf.slice(0, this.pos));
    this.pos = 0;
  }

  varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    if (x < 0x80n) { this.buf[this.pos++] = Number(x); return; }
    while (x >= 0x80n) {
      this.buf[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    this.buf[this.pos++] = Number(x);
  }

  tag(field: number, wire: number): void { this.varint((field << 3) | wire); }

  bytes(field: number, data: Uint8Array): void {
    this.tag(field, 2);
    this.varint(data.length);
    if (data.length > 4096) { this.flush(); this.chunks.push(data); return; }
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }

  string(field: number, s: string): void { this.bytes(field, new TextEncoder().encode(s)); }
  int(field: number, v: number | bigint): void { this.tag(field, 0); this.varint(v); }
  float(field: number, v: number): void {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).setFloat32(0, v, true);
    this.pos += 4;
  }
  message(field: number, m: Writer): void { this.bytes(field, m.finish()); }

  finish(): Uint8Array {
    this.flush();
    let n = 0;
    for (const c of this.chunks) n += c.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) { out.set(c, o); o += c.length; }
    this.chunks = [out];
    return out;
  }
}

/** onnx.TensorProto.DataType */
export const OnnxDataType = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7,
  uint32: 12, bool: 9, float16: 10, float64: 11, bfloat16: 16,
} as const;
export type OnnxDType = keyof typeof OnnxDataType;

export interface TensorProtoSpec {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  /** Inline bytes, or a location in an external file. */
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: TensorProtoSpec };

export interface NodeSpec {
  opType: string;
  domain?: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttrValue>;
}

export interface ValueInfoSpec {
  name: string;
  dtype: OnnxDType;
  /** number = fixed size, string = symbolic dimension */
  shape: (number | string)[];
}

export interface ModelSpec {
  graphName: string;
  nodes: NodeSpec[];
  initializers: TensorProtoSpec[];
  inputs: ValueInfoSpec[];
  outputs: ValueInfoSpec[];
  opsets: { domain: string; version: number }[];
  producer: string;
  docString?: string;
}

function tensorProto(t: TensorProtoSpec): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, OnnxDataType[t.dtype]);
  w.string(8, t.name);
  if (t.external) {
    const entry = (k: string, v: string) => { const e = new Writer(); e.string(1, k); e.string(2, v); return e; };
    w.message(13, entry('location', t.external.location));
    w.message(13, entry('offset', String(t.external.offset)));
    w.message(13, entry('length', String(t.external.length)));
    w.int(14, 1);
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return w;
}

const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function attributeProto(name: string, a: AttrValue): Writer {
  const w = new Writer();
  w.string(1, name);
  switch (a.kind) {
    case 'float': w.float(2, a.value); break;
    case 'int': w.int(3, a.value); break;
    case 'string': w.string(4, a.value); break;
    case 'tensor': w.message(5, tensorProto(a.value)); break;
    case 'floats': for (const v of a.value) w.float(7, v); break;
    case 'ints': for (const v of a.value) w.int(8, v); break;
  }
  w.int(20, ATTR_TYPE[a.kind]);
  return w;
}

function valueInfoProto(v: ValueInfoSpec): Writer {
  const shape = new Writer();
  for (const d of v.shape) {
    const dim = new Writer();
    if (typeof d === 'number') dim.int(1, d); else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new Writer();
  tensorType.int(1, OnnxDataType[v.dtype]);
  tensorType.message(2, shape);
  const type = new Writer();
  type.message(1, tensorType);
  const w = new Writer();
  w.string(1, v.name);
  w.message(2, type);
  return w;
}

export function encodeModel(m: ModelSpec): Uint8Array {
  const g = new Writer();
  for (const n of m.nodes) {
    const nw = new Writer();
    for (const i of n.inputs) nw.string(1, i);
    for (const o of n.outputs) nw.string(2, o);
    nw.string(3, n.name);
    nw.string(4, n.opType);
    for (const [k, a] of Object.entries(n.attributes)) nw.message(5, attributeProto(k, a));
    if (n.domain) nw.string(7, n.domain);
    g.message(1, nw);
  }
  g.string(2, m.graphName);
  for (const t of m.initializers) g.message(5, tensorProto(t));
  if (m.docString) g.string(10, m.docString);
  for (const v of m.inputs) g.message(11, valueInfoProto(v));
  for (const v of m.outputs) g.message(12, valueInfoProto(v));

  const model = new Writer();
  model.int(1, 9); // IR version 9 (opset 20/21 era)
  model.string(2, m.producer);
  model.message(7, g);
  for (const o of m.opsets) {
    const ow = new Writer();
    if (o.domain) ow.string(1, o.domain);
    ow.int(2, o.version);
    model.message(8, ow);
  }
  return model.finish();
}
