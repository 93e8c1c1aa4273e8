/**
 * Super-resolution (ruDALL-E's `super_resolution`): an image, or the image token ids of one
 * (decoded by the VQGAN first), made 2, 4 or 8 times larger by Real-ESRGAN. Needs no RUDOLPH
 * model: the CLI opens only the upscaler for it.
 */
import { InputError } from '../errors.js';
import { assertRgbImage, type RgbImage } from '../image/index.js';
import { checkScale, UPSCALE_SCALES, type UpscaleScale } from '../upscale/config.js';
import type { RunControl } from '../util/progress.js';
import type { ImageUpscaler, StandaloneContext } from './context.js';
import type { ImageInput } from './inputs.js';
import { applyDefaults, defineTask } from './spec.js';

const DEFAULTS = { scale: 4 as UpscaleScale };

export interface UpscaleOptions extends RunControl {
  /** the image, or its image token ids (decoded by the VQGAN) */
  image: ImageInput;
  /** 2, 4 or 8 */
  scale?: UpscaleScale;
}

export interface UpscaleResult { image: RgbImage; scale: UpscaleScale }

function checkUpscale(options: UpscaleOptions): void {
  const o = applyDefaults(DEFAULTS, options);
  if (o.image === undefined || o.image === null) throw new InputError('upscale: image is required');
  checkScale(o.scale);
}

/** The upscaler of a context, or an error saying why there is none. */
export function requireUpscaler(ctx: StandaloneContext, what: string): ImageUpscaler {
  if (!ctx.upscaler) throw new InputError(`${what} needs super-resolution, but the model was loaded without it (upscaler: false)`);
  return ctx.upscaler;
}

async function imageOf(ctx: StandaloneContext, input: ImageInput): Promise<RgbImage> {
  if ((input as { ids?: unknown }).ids === undefined) {
    assertRgbImage(input as RgbImage, 'upscale: image');
    return input as RgbImage;
  }
  if (!ctx.vqgan) throw new InputError('upscale: image token ids need a VQGAN to be decoded; give an image');
  const [image] = await ctx.vqgan.decodeToImages((input as { ids: ArrayLike<number> }).ids, 1);
  return image;
}

export async function upscale(ctx: StandaloneContext, options: UpscaleOptions): Promise<UpscaleResult> {
  checkUpscale(options);
  const o = applyDefaults(DEFAULTS, options);
  const upscaler = requireUpscaler(ctx, 'upscale');
  const image = await upscaler.upscale({ image: await imageOf(ctx, o.image), scale: o.scale, signal: o.signal, onProgress: o.onProgress });
  return { image, scale: o.scale };
}

export const upscaleTask = defineTask<UpscaleOptions, UpscaleResult>({
  name: 'upscale',
  summary: 'image → the same image 2, 4 or 8 times larger (Real-ESRGAN, as ruDALL-E ships it)',
  fields: {
    image: { type: 'image', description: 'the image to upscale', cli: { positional: true } },
    scale: {
      type: 'integer', enum: UPSCALE_SCALES, default: DEFAULTS.scale, description: 'how many times larger (RealESRGAN_x{scale}.pth)',
      label: { ru: 'Увеличение', en: 'Scale' },
    },
  },
  required: ['image'],
  standalone: 'upscaler',
  run: upscale,
  check: checkUpscale,
  output: {
    type: 'object', additionalProperties: false, required: ['png', 'width', 'height', 'scale'],
    properties: {
      png: { type: 'string', description: 'base64 PNG' }, width: { type: 'integer' }, height: { type: 'integer' },
      scale: { type: 'integer', enum: [...UPSCALE_SCALES] },
    },
  },
  format: (r) => [`${r.image.width}×${r.image.height}\t×${r.scale}`],
  fileName: (input, _index, imageFiles) => `${stem(imageFiles[0] ?? 'upscale')}-x${input.scale ?? DEFAULTS.scale}.png`,
  examples: ['rudolph upscale картинка.png --scale 4', 'rudolph upscale картинка.png --scale 8 --out большая.png'],
});

/** A file's name without folder and extension. */
function stem(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}
