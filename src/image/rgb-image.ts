import { ImageError } from './errors.js';

/** A decoded 8-bit RGB image: rows top to bottom, pixels left to right, 3 bytes (R, G, B) each. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Throws ImageError unless `img` has positive integer dimensions and exactly width·height·3 bytes. */
export function assertRgbImage(img: RgbImage, what = 'image'): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new ImageError(`${what}: dimensions must be positive integers, got ${width}×${height}`);
  }
  if (!(data instanceof Uint8Array)) {
    throw new ImageError(`${what}: data must be a Uint8Array of RGB bytes`);
  }
  if (data.length !== width * height * 3) {
    throw new ImageError(
      `${what}: ${width}×${height} RGB needs ${width * height * 3} bytes, data holds ${data.length}`);
  }
}
