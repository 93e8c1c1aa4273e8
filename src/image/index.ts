export { ImageError } from './errors.js';
export { assertRgbImage, type RgbImage } from './rgb-image.js';
export { decodeBytesPerPixel, DEFAULT_MAX_PIXELS, MAX_IMAGE_SIDE } from './limits.js';
export { resizeBilinearPil } from './pil-resample.js';
export { cropImage, preprocessImage, squareCropBox, type CropBox } from './preprocess.js';
export { fromFloatCHW, toFloatCHW } from './tensor-convert.js';
export { composeGrid, type GridOptions } from './grid.js';
