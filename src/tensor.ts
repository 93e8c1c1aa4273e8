/**
 * Host-side tensors: what checkpoint readers produce and what the model code consumes.
 * float16 / bfloat16 data are kept as raw Uint16Array bits until converted with `toFloat32`.
 */
export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type TensorData =
  | Float32Array | Float64Array | Uint16Array
  | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

/** An ordered name → tensor map, as in a torch state_dict. */
export type StateDict = Map<string, HostTensor>;

/** A model parameter a network expects: its official name and shape. */
export interface ParamSpec { name: string; shape: number[] }

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2,
  int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits → float32 value (exact: every half is representable in float32). */
export function halfToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) { u32[0] = sign; return f32[0]; }
    // subnormal half: value = mant * 2^-24
    const v = mant * 5.960464477539063e-8;
    return sign ? -v : v;
  }
  if (exp === 0x1f) { u32[0] = sign | 0x7f800000 | (mant << 13); return f32[0]; }
  u32[0] = sign | ((exp + 112) << 23) | (mant << 13);
  return f32[0];
}

/** float32 values → IEEE half bits, rounded to nearest even (overflow → ±Infinity, as torch's .half()). */
export function floatToHalfBits(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) { out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); continue; }
    const e = exp - 112; // rebias 127 → 15
    if (e >= 0x1f) { out[i] = sign | 0x7c00; continue; }
    if (e <= 0) {
      // subnormal half (or zero): shift the implicit-1 mantissa right, round to nearest even
      if (e < -10) { out[i] = sign; continue; }
      mant |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = mant & ((1 << shift) - 1);
      let m = mant >>> shift;
      if (rest > half || (rest === half && (m & 1))) m++;
      out[i] = sign | m;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct (→ Infinity at the top)
    out[i] = sign | h;
  }
  return out;
}

/** Converts any floating or integer tensor to float32 (fp16/bf16 bits decoded exactly). */
export function toFloat32(t: HostTensor): Float32Array {
  const n = numel(t.shape);
  switch (t.dtype) {
    case 'float32': return t.data as Float32Array;
    case 'float16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i]);
      return out;
    }
    case 'bfloat16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'int64': {
      const src = t.data as BigInt64Array;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    default:
      return Float32Array.from(t.data as ArrayLike<number>);
  }
}
