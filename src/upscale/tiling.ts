/**
 * The image side of Real-ESRGAN's `predict` (rudalle/realesrgan/utils.py semantics):
 * 1. `pad_reflect`: a mirror border of padSize, numpy's 'symmetric' (the edge pixel repeated);
 * 2. split: extend bottom/right by edge replication to multiples of patchSize, pad all four sides
 *    by `padding` (edge replication again), cut (patchSize + 2·padding)² patches at
 *    (i·patchSize, j·patchSize), row-major;
 * 3. (the network runs on the patches, u8 / 255 as float32)
 * 4. stitch: clamp to [0, 1], crop padding·scale off every side of each output patch, lay the
 *    tiles out, crop to the padded image, `(x · 255)` truncated to uint8, drop the mirror border.
 * Steps 2–4 map coordinates directly instead of building the padded and stitched canvases.
 */
import { RudolphError } from '../errors.js';
import type { RgbImage } from '../image/index.js';
import type { Tiling } from './config.js';

/** `pad_reflect(image, q)`: [H + 2q, W + 2q], the border mirrored with the edge pixel repeated. Needs q ≤ min(H, W). */
export function padSymmetric(img: RgbImage, q: number): RgbImage {
  const { width: W, height: H, data } = img;
  const width = W + 2 * q;
  const height = H + 2 * q;
  const out = new Uint8Array(width * height * 3);
  const srcX = Int32Array.from({ length: width }, (_, x) => symmetric(x - q, W));
  for (let y = 0; y < height; y++) {
    const row = symmetric(y - q, H) * W * 3;
    const dst = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + srcX[x] * 3;
      out[dst + 3 * x] = data[s];
      out[dst + 3 * x + 1] = data[s + 1];
      out[dst + 3 * x + 2] = data[s + 2];
    }
  }
  return { width, height, data: out };
}

/** Index i ∈ [−n, 2n) mirrored into [0, n) with the edge repeated: −1 → 0, n → n − 1. */
function symmetric(i: number, n: number): number {
  if (i < 0) return -i - 1;
  if (i >= n) return 2 * n - 1 - i;
  return i;
}

/** Where the patches of an (already mirror-padded) image lie. */
export interface PatchGrid {
  /** the mirror-padded image's size */
  width: number;
  height: number;
  rows: number;
  cols: number;
  /** network input side: patchSize + 2·padding */
  side: number;
  patchSize: number;
  padding: number;
  /** tiles per row of the stitched canvas: `cols`, or the official count (see Tiling.officialStitch) */
  tilesPerRow: number;
}

export function patchGrid(width: number, height: number, t: Tiling): PatchGrid {
  const P = t.patchSize;
  const extended = (n: number) => n + ((P - (n % P)) % P);
  const cols = extended(width) / P;
  // stich_together's n_patches_per_row = padded width·s // (P·s): one too many once 2·padding ≥ P
  const official = Math.floor((extended(width) + 2 * t.padding) / P);
  return {
    width, height, rows: extended(height) / P, cols, side: P + 2 * t.padding, patchSize: P, padding: t.padding,
    tilesPerRow: t.officialStitch ? official : cols,
  };
}

/**
 * Patch k (row-major) as float32 CHW u8 / 255 into `out` at `offset`: pixels of the edge-extended,
 * edge-padded image, i.e. of `img` at coordinates clamped into it.
 */
export function writePatch(img: RgbImage, grid: PatchGrid, k: number, out: Float32Array, offset: number): void {
  const { side, patchSize: P, padding: p } = grid;
  const top = Math.floor(k / grid.cols) * P - p;
  const left = (k % grid.cols) * P - p;
  const plane = side * side;
  const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  const srcX = Int32Array.from({ length: side }, (_, x) => clamp(left + x, img.width) * 3);
  for (let y = 0; y < side; y++) {
    const row = clamp(top + y, img.height) * img.width * 3;
    const dst = offset + y * side;
    for (let x = 0; x < side; x++) {
      const s = row + srcX[x];
      // a double quotient rounded to float32 equals float32 u / 255 for every byte
      out[dst + x] = img.data[s] / 255;
      out[plane + dst + x] = img.data[s + 1] / 255;
      out[2 * plane + dst + x] = img.data[s + 2] / 255;
    }
  }
}

/** Collects the network's output patches into the upscaled image (and, on request, its float values). */
export class Stitcher {
  readonly image: RgbImage;
  /** the clamped floats before the uint8 conversion, HWC (only with keepFloat) */
  readonly float: Float32Array | null;
  private readonly tile: number;
  private readonly outSide: number;
  private readonly offset: number;

  /**
   * @param grid     the patch grid of the mirror-padded image
   * @param scale    the network's scale
   * @param padSize  the mirror border to drop (original size = grid size − 2·padSize)
   */
  constructor(private readonly grid: PatchGrid, private readonly scale: number, padSize: number, keepFloat = false) {
    const width = (grid.width - 2 * padSize) * scale;
    const height = (grid.height - 2 * padSize) * scale;
    this.image = { width, height, data: new Uint8Array(width * height * 3) };
    this.float = keepFloat ? new Float32Array(width * height * 3) : null;
    this.tile = grid.patchSize * scale;
    this.outSide = grid.side * scale;
    this.offset = padSize * scale;
  }

  /** Places output patch k, given as CHW floats [3, side·s, side·s] at `at` in `data`. */
  place(k: number, data: Float32Array, at: number): void {
    const { tile, outSide, offset } = this;
    const { width, height } = this.image;
    const crop = this.grid.padding * this.scale;
    const plane = outSide * outSide;
    // canvas position of the tile, then shifted by the mirror border that is dropped at the end
    const y0 = Math.floor(k / this.grid.tilesPerRow) * tile - offset;
    const x0 = (k % this.grid.tilesPerRow) * tile - offset;
    const tyFrom = Math.max(0, -y0), tyTo = Math.min(tile, height - y0);
    const txFrom = Math.max(0, -x0), txTo = Math.min(tile, width - x0);
    const bytes = this.image.data;
    for (let ty = tyFrom; ty < tyTo; ty++) {
      const src = at + (crop + ty) * outSide + crop;
      const dst = ((y0 + ty) * width + x0) * 3;
      for (let tx = txFrom; tx < txTo; tx++) {
        for (let c = 0; c < 3; c++) {
          let v = data[src + c * plane + tx];
          if (Number.isNaN(v)) throw new RudolphError('RUNTIME', `upscale: the network produced NaN (patch ${k}); the weights are broken`);
          v = v < 0 ? 0 : v > 1 ? 1 : v;
          // float32 value times 255 in double, truncated: numpy's (x * 255).astype(np.uint8)
          bytes[dst + 3 * tx + c] = Math.trunc(v * 255);
          if (this.float) this.float[dst + 3 * tx + c] = v;
        }
      }
    }
  }
}
