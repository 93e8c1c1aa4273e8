/**
 * Weight quantisers for the precisions of graph-context.ts. Every function takes torch's linear
 * layout W [out, in] (row o holds the weights of output o) and returns what its onnxruntime
 * operator wants.
 */

/**
 * int8 for DynamicQuantizeMatMul: per output channel, uint8 with zero point 128 (full-range
 * signed int8 saturates in onnxruntime's AVX2 kernel: RUNTIME.md).
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

/**
 * Block-wise quantisation for com.microsoft MatMulNBits (4 or 8 bits): each output column's
 * `in` weights are cut into blocks of `blockSize`, each block gets a float scale and an unsigned
 * zero point (asymmetric min/max, the range always containing 0 so that 0 stays exact).
 */
export interface BlockQuantized {
  /** [out, blocks, blockSize·bits/8]: 4-bit values two per byte, the even index in the low nibble */
  data: Uint8Array;
  /** [out · blocks] */
  scales: Float32Array;
  /** 4 bits: [out · ceil(blocks/2)] packed like the data; 8 bits: [out · blocks] */
  zeroPoints: Uint8Array;
  blocks: number;
}

export function quantizeBlockwise(w: Float32Array, out: number, inp: number, bits: 4 | 8, blockSize: number): BlockQuantized {
  const blocks = Math.ceil(inp / blockSize);
  const maxQ = (1 << bits) - 1;
  const blob = (blockSize * bits) / 8;
  const data = new Uint8Array(out * blocks * blob);
  const scales = new Float32Array(out * blocks);
  const zpPerRow = bits === 4 ? Math.ceil(blocks / 2) : blocks;
  const zeroPoints = new Uint8Array(out * zpPerRow);
  const q = new Uint8Array(blockSize);
  for (let o = 0; o < out; o++) {
    for (let b = 0; b < blocks; b++) {
      const from = o * inp + b * blockSize;
      const n = Math.min(blockSize, inp - b * blockSize);
      let lo = 0, hi = 0;
      for (let i = 0; i < n; i++) { const v = w[from + i]; if (v < lo) lo = v; if (v > hi) hi = v; }
      const scale = hi > lo ? (hi - lo) / maxQ : 1;
      const zp = Math.min(maxQ, Math.max(0, Math.round(-lo / scale)));
      scales[o * blocks + b] = scale;
      q.fill(zp); // a short last block is padded with zeros (= the zero point)
      for (let i = 0; i < n; i++) q[i] = Math.min(maxQ, Math.max(0, Math.round(w[from + i] / scale) + zp));
      const dst = (o * blocks + b) * blob;
      if (bits === 8) {
        data.set(q, dst);
        zeroPoints[o * blocks + b] = zp;
      } else {
        for (let j = 0; j < blob; j++) data[dst + j] = q[2 * j] | (q[2 * j + 1] << 4);
        zeroPoints[o * zpPerRow + (b >> 1)] |= zp << ((b & 1) * 4);
      }
    }
  }
  return { data, scales, zeroPoints, blocks };
}

/** int8 rows with a float scale per row (embedding tables: one row is gathered per token). */
export interface QuantizedRows { data: Int8Array; scales: Float32Array }

export function quantizeRows(w: Float32Array, rows: number, cols: number): QuantizedRows {
  const data = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(w[r * cols + c]));
    const s = m > 0 ? m / 127 : 1;
    scales[r] = s;
    for (let c = 0; c < cols; c++) data[r * cols + c] = Math.round(w[r * cols + c] / s);
  }
  return { data, scales };
}
