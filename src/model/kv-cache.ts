/**
 * The KV cache: fixed-size key/value buffers per layer, owned by JS and fed to the graph as
 * inputs every step (zero-copy). The graph returns only the new rows, which are written in
 * place; slots not yet filled are hidden by the attention mask (RUNTIME.md's copy-free pattern).
 */
import type { RudolphConfig } from './config.js';

export class KVCache {
  /** per layer: keys [B, H, d, slots] (transposed), values [B, H, slots, d] */
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** positions [0, length) are filled */
  length = 0;

  constructor(readonly cfg: RudolphConfig, readonly batch: number, readonly slots: number = cfg.totalLength) {
    const size = batch * cfg.heads * cfg.headDim * slots;
    this.keys = Array.from({ length: cfg.numLayers }, () => new Float32Array(size));
    this.values = Array.from({ length: cfg.numLayers }, () => new Float32Array(size));
  }

  get bytes(): number { return 2 * this.cfg.numLayers * this.keys[0].byteLength; }

  /** Writes k new rows at positions [length, length+k) of layer i. */
  write(layer: number, newKeys: Float32Array, newValues: Float32Array, k: number): void {
    const { heads, headDim: d } = this.cfg;
    const S = this.slots, start = this.length;
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
    const per = this.keys[0].length / this.batch;
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
