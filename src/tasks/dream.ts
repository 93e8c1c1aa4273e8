/**
 * Text → images (official `dream`): generate candidates, rerank them by the text, decode the
 * best ones with the VQGAN.
 */
import { InputError } from '../errors.js';
import type { RgbImage } from '../image/index.js';
import { checkCount } from '../util/arrays.js';
import type { TaskContext } from './context.js';
import { generateImageTokens, type GenerateImageTokensOptions } from './image-tokens.js';
import { formatTemplate } from './inputs.js';
import { rankImages } from './rank.js';

export interface DreamOptions extends GenerateImageTokensOptions {
  /** images returned (the best by score) */
  images?: number;
  /** candidates generated (official `codebooks_num`) */
  candidates?: number;
  /** the generation prompt, formatted with {text} (official '{text}'); reranking uses the plain text */
  template?: string;
  /** weight of the text perplexity in the rerank score (official 0.95) */
  textWeight?: number;
}

export interface DreamImage { image: RgbImage; codebook: Int32Array; score: number; pplText: number; pplImage: number; candidate: number }

export async function dream(ctx: TaskContext, o: DreamOptions): Promise<{ images: DreamImage[]; seed: number }> {
  if (!ctx.vqgan) throw new InputError('dream needs a VQGAN to decode images');
  const candidates = o.candidates ?? o.count ?? 8;
  const images = o.images ?? Math.min(candidates, 1);
  checkCount(candidates, 'candidates');
  checkCount(images, 'images');
  if (images > candidates) throw new InputError(`dream: ${images} images asked from ${candidates} candidates`);
  const prompt = formatTemplate(o.template ?? '{text}', 'dream template', undefined, { text: o.text });
  const generated = await generateImageTokens(ctx, { ...o, text: prompt, count: candidates });
  const ranked = await rankImages(ctx, { text: o.text, images: generated.codebooks.map((ids) => ({ ids })), textWeight: o.textWeight ?? 0.95, signal: o.signal, onProgress: o.onProgress });
  const best = ranked.order.slice(0, images);
  const ids = new Int32Array(best.length * ctx.cfg.imageLength);
  best.forEach((c, i) => ids.set(generated.codebooks[c], i * ctx.cfg.imageLength));
  const decoded = await ctx.vqgan.decodeToImages(ids, best.length);
  return {
    images: best.map((c, i) => ({ image: decoded[i], codebook: generated.codebooks[c], score: ranked.scores[c], pplText: ranked.pplText[c], pplImage: ranked.pplImage[c], candidate: c })),
    seed: generated.seed,
  };
}
