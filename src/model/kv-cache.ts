/**
 * The KV cache: key/value buffers per layer, owned by JS and fed to the graph as inputs every
 * step (zero-copy on Node). The graph returns only the new rows, which are written in place;
 * slots not yet filled are hidden by the attention mask (RUNTIME.md's copy-free pattern).
 *
 * The buffers hold `slots` positions, but a step feeds only the first `width` of them: width grows
 * with the filled length in steps of WIDTH_STEP. Every fed slot is read by the attention, masked
 * or not, and a browser copies every fed byte into WASM memory: feeding 320 slots from the first
 * image token on read 63 MB per 350M step at batch 1 (more than the int8 weights at batch 8).
 */
import type { RudolphConfig } from './config.js';

/** Slots by which the fed width grows (each growth re-lays the filled rows once). */
export const WIDTH_STEP = 64;

export class KVCache {
  /** per layer: keys [B, H, d, width] (transposed), values [B, H, width, d], in buffers sized for `slots` */
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** positions [0, length) are filled */
  length = 0;
  /** slots fed per step: the layout's stride, ≥ length, a multiple of WIDTH_STEP or `slots` */
  width: number;

  constructor(readonly cfg: RudolphConfig, readonly batch: number, readonly slots: number = cfg.totalLength) {
    const size = batch * cfg.heads * cfg.headDim * slots;
    this.keys = Array.from({ length: cfg.numLayers }, () => new Float32Array(size));
    this.values = Array.from({ length: cfg.numLayers }, () => new Float32Array(size));
    this.width = Math.min(slots, WIDTH_STEP);
  }

  get bytes(): number { return 2 * this.cfg.numLayers * this.keys[0].byteLength; }

  /** Layer i's keys as fed: [B, H, d, width] */
  fedKeys(layer: number): Float32Array { return this.keys[layer].subarray(0, this.batch * this.cfg.heads * this.cfg.headDim * this.width); }
  /** Layer i's values as fed: [B, H, width, d] */
  fedValues(layer: number): Float32Array { return this.values[layer].subarray(0, this.batch * this.cfg.heads * this.width * this.cfg.headDim); }

  /** Makes room for `positions` filled positions in the fed width (the filled rows move to the wider stride). */
  reserve(positions: number): void {
    if (positions <= this.width) return;
    if (positions > this.slots) throw new RangeError(`cache: ${positions} positions exceed its ${this.slots} slots`);
    const from = this.width, to = Math.min(this.slots, Math.ceil(positions / WIDTH_STEP) * WIDTH_STEP);
    const { heads, headDim: d } = this.cfg, n = this.length;
    const rows = this.batch * heads;
    for (let i = 0; i < this.cfg.numLayers; i++) {
      const K = this.keys[i], V = this.values[i];
      // last row first: every row moves to a higher offset, so no row is overwritten before it moved
      for (let r = rows * d - 1; r >= 0; r--) {
        K.copyWithin(r * to, r * from, r * from + n);
        K.fill(0, r * to + n, (r + 1) * to);
      }
      for (let bh = rows - 1; bh >= 0; bh--) {
        V.copyWithin(bh * to * d, bh * from * d, (bh * from + n) * d);
        V.fill(0, (bh * to + n) * d, (bh + 1) * to * d);
      }
    }
    this.width = to;
  }

  /** Writes k new rows at positions [length, length+k) of layer i (reserve() them first). */
  write(layer: number, newKeys: Float32Array, newValues: Float32Array, k: number): void {
    const { heads, headDim: d } = this.cfg;
    const S = this.width, start = this.length;
    if (start + k > S) throw new RangeError(`cache: writing positions up to ${start + k} past the fed width ${S}`);
    const K = this.keys[layer], V = this.values[layer];
    for (let bh = 0; bh < this.batch * heads; bh++) {
      // keys are stored transposed: each of the d rows of this head gets k values at `start`
      for (let j = 0; j < d; j++) {
        const src = (bh * d + j) * k;
        const dst = (bh * d + j) * S + start;
        for (let t = 0; t < k; t++) K[dst + t] = newKeys[src + t];
      }
      V.set(newValues.subarray(bh * k * d, (bh + 1) * k * d), (bh * S + start) * d);
    }
  }

  /** Keeps only the given batch rows (in that order), e.g. after candidates are dropped. */
  select(rows: number[]): KVCache {
    const out = new KVCache(this.cfg, rows.length, this.slots);
    out.width = this.width;
    const per = this.cfg.heads * this.cfg.headDim * this.width;
    for (let i = 0; i < this.cfg.numLayers; i++) {
      rows.forEach((r, j) => {
        out.keys[i].set(this.keys[i].subarray(r * per, (r + 1) * per), j * per);
        out.values[i].set(this.values[i].subarray(r * per, (r + 1) * per), j * per);
      });
    }
    out.length = this.length;
    return out;
  }
}
