/**
 * The KV cache: key/value buffers per layer, owned by JS and fed to the graph as inputs every
 * step (zero-copy on Node). The graph returns only the new rows, which are written in place;
 * slots not yet filled are hidden by the attention mask (RUNTIME.md's copy-free pattern).
 *
 * The buffers hold `slots` positions, but a step feeds only the first `width` of them: width grows
 * with the filled length in steps of WIDTH_STEP. Every fed slot is read by the attention, masked
 * or not, and a browser copies every fed byte into WASM memory: feeding 320 slots from the first
 * image token on read 63 MB per 350M step at batch 1 (more than the int8 weights at batch 8).
 * Keys and values share one layout, [B, H, width, d]: a head's rows are contiguous, so a new
 * row is one copy and a growth moves one block per head.
 */
import type { RudolphConfig } from './config.js';

/** Slots by which the fed width grows (each growth re-lays the filled rows once). */
export const WIDTH_STEP = 64;

export class KVCache {
  /** per layer: keys and values [B, H, width, d], in buffers sized for `slots` */
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

  private get fedSize(): number { return this.batch * this.cfg.heads * this.width * this.cfg.headDim; }
  /** Layer i's keys as fed: [B, H, width, d] */
  fedKeys(layer: number): Float32Array { return this.keys[layer].subarray(0, this.fedSize); }
  /** Layer i's values as fed: [B, H, width, d] */
  fedValues(layer: number): Float32Array { return this.values[layer].subarray(0, this.fedSize); }

  /** Makes room for `positions` filled positions in the fed width (the filled rows move to the wider stride). */
  reserve(positions: number): void {
    if (positions <= this.width) return;
    if (positions > this.slots) throw new RangeError(`cache: ${positions} positions exceed its ${this.slots} slots`);
    const from = this.width, to = Math.min(this.slots, Math.ceil(positions / WIDTH_STEP) * WIDTH_STEP);
    const d = this.cfg.headDim, n = this.length;
    const heads = this.batch * this.cfg.heads;
    for (const buffers of [this.keys, this.values]) {
      for (const buf of buffers) {
        // last head first: every head's block moves to a higher offset, so none is overwritten before it moved
        for (let bh = heads - 1; bh >= 0; bh--) {
          buf.copyWithin(bh * to * d, bh * from * d, (bh * from + n) * d);
          buf.fill(0, (bh * to + n) * d, (bh + 1) * to * d);
        }
      }
    }
    this.width = to;
  }

  /** Writes k new rows ([B, H, k, d] each) at positions [length, length+k) of layer i (reserve() them first). */
  write(layer: number, newKeys: Float32Array, newValues: Float32Array, k: number): void {
    const d = this.cfg.headDim;
    const S = this.width, start = this.length;
    if (start + k > S) throw new RangeError(`cache: writing positions up to ${start + k} past the fed width ${S}`);
    const K = this.keys[layer], V = this.values[layer];
    for (let bh = 0; bh < this.batch * this.cfg.heads; bh++) {
      K.set(newKeys.subarray(bh * k * d, (bh + 1) * k * d), (bh * S + start) * d);
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
