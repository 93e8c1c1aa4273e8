/**
 * `RealESRGAN.predict`: mirror-pad the image, cut overlapping patches, run them through the
 * network in batches, stitch the clamped outputs, ×255 truncated to uint8, drop the border.
 * Patches are converted, run and stitched one batch at a time, so memory holds one batch of
 * network activations plus the input and output images.
 */
import { InputError } from '../errors.js';
import { assertRgbImage, type RgbImage } from '../image/index.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import type { Tiling } from './config.js';
import type { RrdbNet } from './rrdbnet.js';
import { padSymmetric, patchGrid, Stitcher, writePatch } from './tiling.js';

/** Default cap on the upscaled image: 4096 × 4096 pixels (48 MiB of RGB). */
export const DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 4096;

export interface PredictControl extends RunControl {
  /** largest width × height of the result (default DEFAULT_MAX_OUTPUT_PIXELS) */
  maxOutputPixels?: number;
  /** also return the clamped floats before the uint8 conversion (parity checks) */
  keepFloat?: boolean;
}

export interface PredictResult {
  image: RgbImage;
  /** HWC floats in [0, 1] (only with keepFloat) */
  float: Float32Array | null;
  /** the mirror-padded input */
  padded: RgbImage;
  /** patches per network call, in order */
  batches: number[];
}

export async function predict(net: RrdbNet, image: RgbImage, tiling: Tiling, ctl: PredictControl = {}): Promise<PredictResult> {
  if (typeof image !== 'object' || image === null) throw new InputError('upscale: image must be an RgbImage { width, height, data }');
  assertRgbImage(image, 'upscale: image');
  const s = net.scale;
  const q = tiling.padSize;
  const maxOut = ctl.maxOutputPixels ?? DEFAULT_MAX_OUTPUT_PIXELS;
  if (!Number.isSafeInteger(maxOut) || maxOut < 1) throw new InputError(`upscale: maxOutputPixels must be a positive integer, got ${maxOut}`);
  const { width, height } = image;
  if (width * height * s * s > maxOut) {
    throw new InputError(`upscale: ${width}×${height} ×${s} gives ${width * s}×${height * s} = ${width * height * s * s} pixels, over the limit of ${maxOut} (maxOutputPixels)`);
  }
  if (width < q || height < q) {
    throw new InputError(`upscale: the image (${width}×${height}) must be at least padSize = ${q} pixels on each side (the mirror border is taken from inside it)`);
  }

  const padded = padSymmetric(image, q);
  const grid = patchGrid(padded.width, padded.height, tiling);
  const total = grid.rows * grid.cols;
  const stitcher = new Stitcher(grid, s, q, ctl.keepFloat ?? false);
  const progress = new ProgressReporter(ctl, 'upscale', 'patches', total);
  const plane = 3 * grid.side * grid.side;
  const outPlane = plane * s * s;
  const batches: number[] = [];
  for (let first = 0; first < total; first += tiling.batchSize) {
    const n = Math.min(tiling.batchSize, total - first);
    const input = new Float32Array(n * plane);
    for (let i = 0; i < n; i++) writePatch(padded, grid, first + i, input, i * plane);
    const out = await net.forward({ data: input, shape: [n, 3, grid.side, grid.side] });
    for (let i = 0; i < n; i++) stitcher.place(first + i, out.data, i * outPlane);
    batches.push(n);
    progress.tick(n);
  }
  return { image: stitcher.image, float: stitcher.float, padded, batches };
}
