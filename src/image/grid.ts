import { InputError } from '../errors.js';
import { assertRgbImage, type RgbImage } from './rgb-image.js';

export interface GridOptions {
  /** Images per row (torchvision's `nrow`); default 8, fewer if there are fewer images. */
  columns?: number;
  /** Pixels between images and around the edge; default 2. */
  padding?: number;
  /** Colour of the padding; default black. */
  background?: [number, number, number];
}

/**
 * Tiles same-sized images row by row, laid out as `torchvision.utils.make_grid` does
 * (same defaults): cell i sits at column i % columns, row ⌊i / columns⌋, with `padding`
 * pixels before each image and after the last one on both axes.
 */
export function composeGrid(images: readonly RgbImage[], opts: GridOptions = {}): RgbImage {
  if (images.length === 0) throw new InputError('composeGrid: no images to compose');
  images.forEach((img, i) => assertRgbImage(img, `composeGrid: image ${i}`));
  const { width: w, height: h } = images[0];
  images.forEach((img, i) => {
    if (img.width !== w || img.height !== h) {
      throw new InputError(`composeGrid: image ${i} is ${img.width}×${img.height}, image 0 is ${w}×${h}`);
    }
  });
  const columnsWanted = opts.columns ?? 8;
  const padding = opts.padding ?? 2;
  const background = opts.background ?? [0, 0, 0];
  if (!Number.isInteger(columnsWanted) || columnsWanted <= 0) {
    throw new InputError(`composeGrid: columns must be a positive integer, got ${columnsWanted}`);
  }
  if (!Number.isInteger(padding) || padding < 0) {
    throw new InputError(`composeGrid: padding must be a non-negative integer, got ${padding}`);
  }
  if (background.length !== 3 || !background.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) {
    throw new InputError(`composeGrid: background must be three integers in [0, 255], got [${background.join(', ')}]`);
  }

  const columns = Math.min(columnsWanted, images.length);
  const rows = Math.ceil(images.length / columns);
  const width = columns * (w + padding) + padding;
  const height = rows * (h + padding) + padding;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(background, i * 3);

  const rowBytes = w * 3;
  images.forEach((img, i) => {
    const left = (i % columns) * (w + padding) + padding;
    const top = Math.floor(i / columns) * (h + padding) + padding;
    for (let y = 0; y < h; y++) {
      data.set(img.data.subarray(y * rowBytes, (y + 1) * rowBytes), ((top + y) * width + left) * 3);
    }
  });
  return { width, height, data };
}
