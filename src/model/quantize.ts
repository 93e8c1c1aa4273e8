/**
 * int8 weight quantization for DynamicQuantizeMatMul: per output channel, uint8 with zero
 * point 128 (full-range signed int8 saturates in onnxruntime's AVX2 kernel: RUNTIME.md).
 */
export interface QuantizedLinear {
  /** [in, out] uint8, transposed from torch's [out, in] */
  data: Uint8Array;
  scale: Float32Array;
  zeroPoint: Uint8Array;
}

export function quantizeLinearWeight(w: Float32Array, out: number, inp: number): QuantizedLinear {
  const scale = new Float32Array(out);
  const zeroPoint = new Uint8Array(out).fill(128);
  const data = new Uint8Array(out * inp);
  for (let o = 0; o < out; o++) {
    let m = 0;
    const row = o * inp;
    for (let i = 0; i < inp; i++) m = Math.max(m, Math.abs(w[row + i]));
    const s = m > 0 ? m / 127 : 1;
    scale[o] = s;
    for (let i = 0; i < inp; i++) {
      const q = Math.round(w[row + i] / s) + 128;
      data[i * out + o] = q < 1 ? 1 : q > 255 ? 255 : q;
    }
  }
  return { data, scale, zeroPoint };
}
