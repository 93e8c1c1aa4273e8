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

/**
 * Buffers of released caches, kept for the model's next caches. A fresh buffer pays a page fault
 * per 4 kB on its first writes, and on this project's VM that dominated: writing 63 MB of fresh
 * memory (a 350M batch-1 image generation's cache; 0.5 GB at batch 8) took ~195 ms, the same
 * bytes once touched 2.4 ms. Holds at most what was in use at once, and no more than two caches'
 * worth of buffers.
 */
export class KVBufferPool {
  private spare: Float32Array[] = [];

  constructor(private readonly maxBuffers: number) {}

  /**
   * A spare buffer of `size` to 2·`size` floats, the smallest that fits, as it was left (the cache
   * zeroes what it feeds); none when no spare one fits (a small cache on a much larger buffer would
   * hold memory that a later, larger cache then allocates anew).
   */
  take(size: number): Float32Array | undefined {
    let best = -1;
    for (let i = 0; i < this.spare.length; i++) {
      const n = this.spare[i].length;
      if (n >= size && n <= 2 * size && (best < 0 || n < this.spare[best].length)) best = i;
    }
    return best < 0 ? undefined : this.spare.splice(best, 1)[0];
  }

  give(buffers: Float32Array[]): void {
    this.spare.push(...buffers);
    // over the bound: keep the largest (a cache of that size is the one most costly to allocate)
    if (this.spare.length > this.maxBuffers) this.spare = this.spare.sort((a, b) => b.length - a.length).slice(0, this.maxBuffers);
  }

  clear(): void { this.spare = []; }
}

export class KVCache {
  /** per layer: keys and values [B, H, width, d], in buffers of at least `slots` positions (pooled ones may be longer) */
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** positions [0, length) are filled */
  length = 0;
  /** slots fed per step: the layout's stride, ≥ length, a multiple of WIDTH_STEP or `slots` */
  width: number;
  private released = false;

  /** `pool`: where the buffers come from and go back to on release() (the model's); none: fresh buffers. */
  constructor(readonly cfg: RudolphConfig, readonly batch: number, readonly slots: number = cfg.totalLength, private readonly pool?: KVBufferPool) {
    const size = batch * cfg.heads * cfg.headDim * slots;
    this.width = Math.min(slots, WIDTH_STEP);
    // a pooled buffer is zeroed as far as it is fed; each growth of the width zeroes the new slots
    const buffer = () => pool?.take(size)?.fill(0, 0, this.fedSize) ?? new Float32Array(size);
    this.keys = Array.from({ length: cfg.numLayers }, buffer);
    this.values = Array.from({ length: cfg.numLayers }, buffer);
  }

  get bytes(): number { return 2 * this.cfg.numLayers * this.batch * this.cfg.heads * this.cfg.headDim * this.slots * 4; }

  /** Hands the buffers back to the pool for the next cache; this cache is unusable afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.pool?.give([...this.keys, ...this.values]);
  }

  private live(): void {
    if (this.released) throw new Error('cache: used after release()');
  }

  private get fedSize(): number { return this.batch * this.cfg.heads * this.width * this.cfg.headDim; }
  /** Layer i's keys as fed: [B, H, width, d] */
  fedKeys(layer: number): Float32Array { return this.keys[layer].subarray(0, this.fedSize); }
  /** Layer i's values as fed: [B, H, width, d] */
  fedValues(layer: number): Float32Array { return this.values[layer].subarray(0, this.fedSize); }

  /** Makes room for `positions` filled positions in the fed width (the filled rows move to the wider stride). */
  reserve(positions: number): void {
    this.live();
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
    this.live();
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
    this.live();
    const out = new KVCache(this.cfg, rows.length, this.slots, this.pool);
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
