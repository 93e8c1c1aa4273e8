/**
 * Text → images (official `dream`): generate candidates, rerank them by the text, decode the
 * best ones with the VQGAN.
 */
import { InputError } from '../errors.js';
import type { SamplingOptions } from '../generation/sampling.js';
import type { RgbImage } from '../image/index.js';
import { checkScale, UPSCALE_SCALES, type UpscaleScale } from '../upscale/config.js';
import { checkCount } from '../util/arrays.js';
import type { RunControl } from '../util/progress.js';
import type { TaskContext } from './context.js';
import { type ImagePromptInput, resolveImagePrompt } from './image-prompt.js';
import { generateImageTokens, GUIDANCE_DEFAULTS, type GuidanceOptions, IMAGE_SAMPLING } from './image-tokens.js';
import { formatTemplate, requireText, TextFit, type Truncation } from './inputs.js';
import { rankImages } from './rank.js';
import { applyDefaults, defineTask, type Field, samplingFields, SEED_FIELD, TRUNCATE_FIELD, TRUNCATED_SCHEMA, WEIGHT_FIELD } from './spec.js';
import { requireUpscaler } from './upscale.js';

/** The official defaults of `dream` (one image returned by default). */
const DEFAULTS = { candidates: 8, images: 1, template: '{text}', textWeight: 0.95, truncate: true };

export interface DreamOptions extends RunControl, Partial<SamplingOptions> {
  /** what the image shows */
  text: string;
  /** images returned (the best by score) */
  images?: number;
  /** candidates generated (official `codebooks_num`) */
  candidates?: number;
  /** the generation prompt, formatted with {text}; reranking uses the plain text */
  template?: string;
  /** weight of the text perplexity in the rerank score */
  textWeight?: number;
  seed?: number;
  /** classifier-free guidance */
  guidance?: GuidanceOptions;
  /** an image whose border cells are kept */
  imagePrompt?: ImagePromptInput;
  /** rows per model call (default: the model's) */
  batchSize?: number;
  /** cut a text that does not fit (reported in `truncated`) instead of refusing it */
  truncate?: boolean;
  /** make the returned images 2, 4 or 8 times larger (Real-ESRGAN; absent = as drawn) */
  upscale?: UpscaleScale;
}

export interface DreamImage { image: RgbImage; codebook: Int32Array; score: number; pplText: number; pplImage: number; candidate: number }
export interface DreamResult { images: DreamImage[]; seed: number; truncated?: Truncation[] }

function checkDream(options: DreamOptions): void {
  const o = applyDefaults(DEFAULTS, options);
  requireText(o.text, 'text');
  checkCount(o.candidates, 'candidates');
  checkCount(o.images, 'images');
  if (o.images > o.candidates) throw new InputError(`dream: ${o.images} images asked from ${o.candidates} candidates`);
  formatTemplate(o.template, 'dream template', undefined, { text: o.text });
  if (o.guidance?.template !== undefined) formatTemplate(o.guidance.template, 'guidance template', undefined, { text: o.text });
  if (o.upscale !== undefined) checkScale(o.upscale, 'dream upscale');
}

export async function dream(ctx: TaskContext, options: DreamOptions): Promise<DreamResult> {
  checkDream(options);
  if (!ctx.vqgan) throw new InputError('dream needs a VQGAN to decode images');
  const o = applyDefaults(DEFAULTS, options);
  // refused before generating, not after
  const upscaler = o.upscale !== undefined ? requireUpscaler(ctx, 'dream upscale') : undefined;
  const prompt = formatTemplate(o.template, 'dream template', undefined, { text: o.text });
  const imagePrompt = o.imagePrompt ? await resolveImagePrompt(ctx, o.imagePrompt) : undefined;
  const generated = await generateImageTokens(ctx, { ...o, text: prompt, count: o.candidates, imagePrompt });
  const ranked = await rankImages(ctx, { text: o.text, images: generated.codebooks.map((ids) => ({ ids })), textWeight: o.textWeight, truncate: o.truncate, signal: o.signal, onProgress: o.onProgress });
  const best = ranked.order.slice(0, o.images);
  const ids = new Int32Array(best.length * ctx.cfg.imageLength);
  best.forEach((c, i) => ids.set(generated.codebooks[c], i * ctx.cfg.imageLength));
  const decoded = await ctx.vqgan.decodeToImages(ids, best.length);
  if (upscaler) {
    for (let i = 0; i < decoded.length; i++) {
      decoded[i] = await upscaler.upscale({ image: decoded[i], scale: o.upscale!, signal: o.signal, onProgress: o.onProgress });
    }
  }
  return {
    images: best.map((c, i) => ({ image: decoded[i], codebook: generated.codebooks[c], score: ranked.scores[c], pplText: ranked.pplText[c], pplImage: ranked.pplImage[c], candidate: c })),
    seed: generated.seed,
    ...new TextFit(o.truncate).report(generated.truncated, ranked.truncated?.map((t) => ({ ...t, field: `${t.field} (reranking)` }))),
  };
}

const border = (side: string): Field => ({ type: 'integer', minimum: 0, maximum: 1024, default: 0, description: `rows or columns of cells kept at the ${side}` });

export const dreamTask = defineTask<DreamOptions, DreamResult>({
  name: 'dream',
  summary: 'text → images: generate candidates, rerank them by the text, return the best',
  fields: {
    text: { type: 'string', minLength: 1, maxLength: 4000, description: 'what the image shows', cli: { positional: true }, label: { ru: 'Что нарисовать', en: 'What to draw' } },
    images: { type: 'integer', minimum: 1, maximum: 64, default: DEFAULTS.images, description: 'images returned, the best by rerank score', cli: { short: '-n' }, label: { ru: 'Изображений', en: 'Images' } },
    candidates: { type: 'integer', minimum: 1, maximum: 256, default: DEFAULTS.candidates, description: 'candidates generated before reranking', label: { ru: 'Кандидатов', en: 'Candidates' } },
    template: { type: 'string', maxLength: 4000, default: DEFAULTS.template, description: 'generation prompt, {text} is the text' },
    textWeight: WEIGHT_FIELD('weight of the text perplexity in the rerank score', DEFAULTS.textWeight),
    seed: SEED_FIELD,
    ...samplingFields(IMAGE_SAMPLING),
    guidance: {
      type: 'object', description: 'classifier-free guidance (off when absent)',
      fields: {
        weight: WEIGHT_FIELD('weight of the unconditional prompt', GUIDANCE_DEFAULTS.weight),
        template: { type: 'string', maxLength: 4000, default: GUIDANCE_DEFAULTS.template, description: 'unconditional prompt, {text} is the text' },
        lateSoftmax: { type: 'boolean', default: GUIDANCE_DEFAULTS.lateSoftmax, description: 'mix filtered logits and softmax after (official late_softmax)' },
      },
    },
    imagePrompt: {
      type: 'object', description: 'an image whose borders are kept',
      fields: {
        image: { type: 'image', description: 'the prompt image' },
        borders: {
          type: 'object', description: 'border cells (in image tokens, 8 px each) kept from the image',
          fields: { up: border('top'), down: border('bottom'), left: border('left'), right: border('right') },
        },
        cropFirst: { type: 'boolean', default: false, description: 'encode only the top strip (up border only)' },
      },
    },
    truncate: TRUNCATE_FIELD,
    upscale: { type: 'integer', enum: UPSCALE_SCALES, description: 'make the returned images this many times larger (Real-ESRGAN; absent = as drawn)' },
  },
  required: ['text'],
  run: dream,
  check: checkDream,
  output: {
    type: 'object', additionalProperties: false, required: ['images', 'seed'],
    properties: {
      images: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['png', 'width', 'height', 'score', 'pplText', 'pplImage', 'candidate', 'codebook'],
          properties: {
            png: { type: 'string', description: 'base64 PNG' }, width: { type: 'integer' }, height: { type: 'integer' },
            score: { type: ['number', 'null'], description: 'rerank score, lower is better' }, pplText: { type: 'number' }, pplImage: { type: 'number' },
            candidate: { type: 'integer' }, codebook: { type: 'array', items: { type: 'integer' } },
          },
        },
      },
      seed: { type: 'integer' },
      truncated: TRUNCATED_SCHEMA,
    },
  },
  format: (r) => r.images.map((img) => `score ${img.score.toFixed(4)}\tppl_txt ${img.pplText.toFixed(2)}\tppl_img ${img.pplImage.toFixed(2)}`),
  examples: [
    'rudolph dream "красивый закат над морем" -n 2 --candidates 8 --out картинки',
    'rudolph dream "кошка в шляпе" --seed 42 --json',
    'rudolph dream "домик в деревне" -n 4 --upscale 4 --grid --out картинки',
  ],
});
