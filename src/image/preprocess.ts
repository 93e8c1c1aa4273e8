/**
 * The official image preprocessing (`ruDolphApi.image_transform`):
 * `convert('RGB')` → `RandomResizedCrop(size, scale=(1, 1), ratio=(1, 1))` → `ToTensor()`.
 * The RGB conversion is done by `readImage`, the tensor step by `toFloatCHW`.
 *
 * With scale = ratio = 1, torchvision asks for a w = h = round(sqrt(W·H)) square. That fits
 * only when W = H (the whole image) or |W − H| = 1 (a min(W, H) square at a random offset
 * 0 or 1 along the long side, drawn from torch's RNG; we take 0). Otherwise it falls back to
 * its central crop: a min(W, H) square at ((W − side) // 2, (H − side) // 2). The crop is then
 * resized with PIL BILINEAR (antialiased), which `resizeBilinearPil` reproduces byte for byte.
 */
import { InputError } from '../errors.js';
import { resizeBilinearPil } from './pil-resample.js';
import { assertRgbImage, type RgbImage } from './rgb-image.js';

export interface CropBox {
  left: number;
  top: number;
  side: number;
}

/** The square torchvision's RandomResizedCrop(scale=(1,1), ratio=(1,1)) takes from a W×H image. */
export function squareCropBox(width: number, height: number): CropBox {
  const side = Math.min(width, height);
  return { left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), side };
}

export function cropImage(img: RgbImage, box: CropBox): RgbImage {
  assertRgbImage(img);
  const { left, top, side } = box;
  if (left < 0 || top < 0 || side <= 0 || left + side > img.width || top + side > img.height) {
    throw new InputError(
      `crop ${side}×${side} at (${left}, ${top}) does not fit in a ${img.width}×${img.height} image`);
  }
  const out = new Uint8Array(side * side * 3);
  const rowBytes = side * 3;
  for (let y = 0; y < side; y++) {
    const from = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(from, from + rowBytes), y * rowBytes);
  }
  return { width: side, height: side, data: out };
}

/**
 * Center-crops to the shorter side and resizes to size×size exactly as the official
 * `image_transform` does before `ToTensor` (byte-identical to torchvision + Pillow, except
 * for the random 0/1 offset of images whose sides differ by one pixel, see above).
 * `size` is the VQGAN input side, 8 × image tokens per side.
 */
export function preprocessImage(img: RgbImage, size: number): RgbImage {
  if (!Number.isInteger(size) || size <= 0) {
    throw new InputError(`image size must be a positive integer, got ${size}`);
  }
  // PIL's resize to the size an image already has returns a copy: an image prepared once (the
  // server reduces uploads as it decodes them) passes through unchanged
  if (img.width === size && img.height === size) return img;
  const square = img.width === img.height ? img : cropImage(img, squareCropBox(img.width, img.height));
  return resizeBilinearPil(square, size, size);
}
