/**
 * Image prompts as users give them — an image (or its token ids) and the borders to keep — turned
 * into the known cells generation takes (ids + cell indices).
 */
import { InputError } from '../errors.js';
import { preprocessImage, type RgbImage } from '../image/index.js';
import type { TaskContext } from './context.js';
import { borderCells, type Borders, type ImagePrompt } from './image-tokens.js';
import type { ImageInput } from './inputs.js';

export interface ImagePromptInput {
  /** the prompt image, or its n·n image token ids */
  image: ImageInput;
  /** border cells (in image tokens, 8 px each) kept from the image */
  borders?: Borders;
  /** encode only the top strip (only an `up` border is allowed then): the official `crop_first` */
  cropFirst?: boolean;
}

export async function resolveImagePrompt(ctx: TaskContext, p: ImagePromptInput): Promise<ImagePrompt> {
  const { n } = ctx.cfg;
  const borders = p.borders ?? {};
  const isIds = (x: ImageInput): x is { ids: ArrayLike<number> } => (x as { ids?: unknown }).ids !== undefined;
  if (isIds(p.image)) {
    if (p.cropFirst) throw new InputError('imagePrompt.cropFirst: encodes a strip of an image; give an image, not token ids');
    return { ids: p.image.ids, cells: borderCells(n, borders) };
  }
  if (!ctx.vqgan) throw new InputError('image prompts need a VQGAN; load the model with one');
  const square = preprocessImage(p.image, 8 * n);
  if (!p.cropFirst) return { ids: await ctx.vqgan.encode([square]), cells: borderCells(n, borders) };
  if ((borders.down ?? 0) || (borders.left ?? 0) || (borders.right ?? 0)) throw new InputError('image prompt: cropFirst takes only an up border');
  const up = borders.up ?? 0;
  if (up < 1 || up > n) throw new InputError(`image prompt: cropFirst needs an up border in [1, ${n}], got ${up}`);
  const strip: RgbImage = { width: square.width, height: up * 8, data: square.data.subarray(0, square.width * up * 8 * 3) };
  return { ids: await ctx.vqgan.encode([strip]), cells: Array.from({ length: up * n }, (_, i) => i) };
}
