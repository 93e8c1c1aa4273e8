/**
 * RgbImage ↔ float CHW planes in [0, 1], with torchvision's conventions so the VQGAN sees
 * the same numbers as in the official code.
 */
import { InputError } from '../errors.js';
import { ImageError } from './errors.js';
import { assertRgbImage, type RgbImage } from './rgb-image.js';

/**
 * `ToTensor()`: byte / 255 in float32, channel-first (3×H×W). Writes into `out` at `offset`
 * when given (to fill one slot of a batch buffer), else into a new array.
 */
export function toFloatCHW(img: RgbImage, out?: Float32Array, offset = 0): Float32Array {
  assertRgbImage(img);
  const plane = img.width * img.height;
  const dst = out ?? new Float32Array(3 * plane);
  if (!Number.isInteger(offset) || offset < 0 || offset + 3 * plane > dst.length) {
    throw new InputError(
      `toFloatCHW: ${3 * plane} values at offset ${offset} do not fit in an array of ${dst.length}`);
  }
  const src = img.data;
  for (let i = 0; i < plane; i++) {
    // A double quotient rounded to float32 equals torch's float32 division (53 ≥ 2·24 + 2).
    dst[offset + i] = src[3 * i] / 255;
    dst[offset + plane + i] = src[3 * i + 1] / 255;
    dst[offset + 2 * plane + i] = src[3 * i + 2] / 255;
  }
  return dst;
}

/**
 * torchvision `to_pil_image` on a float tensor: `pic.mul(255).byte()`, i.e. the float32
 * product truncated toward zero (not rounded), as the official `torch_tensors_to_pil_list`
 * does after the VQGAN decoder's clamp and (x + 1) / 2. Values outside [0, 1] are clamped
 * (torch leaves their cast undefined; the official decoder never produces them); NaN is an
 * error.
 */
export function fromFloatCHW(data: Float32Array, width: number, height: number): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InputError(`fromFloatCHW: dimensions must be positive integers, got ${width}×${height}`);
  }
  const plane = width * height;
  if (data.length !== 3 * plane) {
    throw new InputError(`fromFloatCHW: a 3×${height}×${width} image needs ${3 * plane} values, got ${data.length}`);
  }
  const out = new Uint8Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const x = data[c * plane + i];
      if (Number.isNaN(x)) {
        throw new ImageError(
          `fromFloatCHW: NaN at channel ${c}, pixel (${i % width}, ${Math.floor(i / width)})`);
      }
      // x is a float32, so x·255 is exact in double and fround gives torch's float32 product.
      const v = Math.trunc(Math.fround(x * 255));
      out[3 * i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}
