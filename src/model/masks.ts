/**
 * RUDOLPH's sparse attention masks (SPEC §6). Positions are absolute sequence positions
 * (0 = first left-text token). Base is causal; only the image×image block is sparse.
 */
import type { RudolphConfig } from './config.js';

export type MaskKind = 'row' | 'col' | 'conv' | 'last_conv';
export const MASK_KINDS: readonly MaskKind[] = ['row', 'col', 'conv', 'last_conv'];

/** The mask kind used by layer i (0-based) of L layers, as the official `_get_layer_mask`. */
export function layerMaskKind(i: number, numLayers: number): MaskKind {
  if ((i - 1) % 4 === 0) return 'col';
  if (i === numLayers - 1) return 'last_conv';
  if ((i - 3) % 4 === 0) return 'conv';
  return 'row';
}

export function layerMaskKinds(numLayers: number): MaskKind[] {
  return Array.from({ length: numLayers }, (_, i) => layerMaskKind(i, numLayers));
}

/** May query position q attend to key position k under this mask kind? */
export function maskAllows(kind: MaskKind, cfg: RudolphConfig, q: number, k: number): boolean {
  if (k > q) return false;
  const { l, n, imageLength } = cfg;
  const qImage = q >= l && q < l + imageLength;
  const kImage = k >= l && k < l + imageLength;
  if (!qImage || !kImage) return true;
  const d = q - k;
  switch (kind) {
    case 'row':
      return d <= n;
    case 'col':
      return d % n === 0;
    case 'conv':
    case 'last_conv': {
      if (d === 0) return true;
      const half = Math.floor((kind === 'conv' ? cfg.kernel : cfg.lastKernel) / 2);
      const jq = q - l;
      const jk = k - l;
      return Math.abs(Math.floor(jq / n) - Math.floor(jk / n)) <= half && Math.abs((jq % n) - (jk % n)) <= half;
    }
  }
}

/** The full [size, size] mask (1 = may attend), as the official buffers. */
export function fullMask(kind: MaskKind, cfg: RudolphConfig, size = cfg.totalLength): Uint8Array {
  const out = new Uint8Array(size * size);
  for (let q = 0; q < size; q++) {
    for (let k = 0; k <= q; k++) out[q * size + k] = maskAllows(kind, cfg, q, k) ? 1 : 0;
  }
  return out;
}

/**
 * The attention mask for one call of the cached model: queries are the new positions
 * [start, start+count); keys are `slots` cache slots (slot s holds position s, valid when
 * s < start) followed by the new positions themselves. Shape [count, slots + count].
 */
export function stepMask(kind: MaskKind, cfg: RudolphConfig, start: number, count: number, slots: number): Uint8Array {
  const width = slots + count;
  const out = new Uint8Array(count * width);
  for (let i = 0; i < count; i++) {
    const q = start + i;
    const row = i * width;
    const filled = Math.min(slots, start);
    for (let s = 0; s < filled; s++) out[row + s] = maskAllows(kind, cfg, q, s) ? 1 : 0;
    for (let j = 0; j <= i; j++) out[row + slots + j] = maskAllows(kind, cfg, q, start + j) ? 1 : 0;
  }
  return out;
}
