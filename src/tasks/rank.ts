/**
 * Self-reranking: images for a text (official `self_reranking_by_text`) and texts for an image
 * (official `self_reranking_by_image`), both by perplexity; lower scores are better.
 */
import { InputError } from '../errors.js';
import { encodeSegment, imageTokens, ProgressReporter, requireText, type ImageInput, type RunControl, type TaskContext } from './context.js';
import { spanPerplexities, type Span } from './perplexity.js';
import { argsort, rerankScores } from './scoring.js';

export interface RankResult {
  pplText: number[];
  pplImage: number[];
  /** lower is better */
  scores: number[];
  /** indices by ascending score */
  order: number[];
}

export interface RankImagesOptions extends RunControl {
  text: string;
  images: ImageInput[];
  /** weight of the text perplexity in the score (official 0.95) */
  textWeight?: number;
  /** quantile for normalisation (official 0.5) */
  quantile?: number;
  /** left text (official l_template '') */
  leftTemplate?: string;
  /** keep the official NaN scores when all candidates tie */
  officialNaN?: boolean;
}

export async function rankImages(ctx: TaskContext, o: RankImagesOptions): Promise<RankResult> {
  const { cfg } = ctx;
  requireText(o.text, 'text');
  if (!Array.isArray(o.images) || o.images.length === 0) throw new InputError('rankImages: images must be a non-empty list');
  const codes = await imageTokens(ctx, o.images, 'image');
  const left = encodeSegment(ctx, o.leftTemplate ?? '', cfg.l, '<LT_I2T>');
  const right = encodeSegment(ctx, o.text, cfg.r, '<RT_I2T>');
  const rows = codes.map((c) => concat(left, c, right));
  const T = cfg.totalLength, l = cfg.l, m = cfg.imageLength;
  const spans: Span[] = [
    { from: T - cfg.r, to: T - 1, kind: 'text', ignoreZero: true },
    { from: l, to: l + m - 1, kind: 'image', ignoreZero: false },
  ];
  const progress = new ProgressReporter(o, 'rankImages', 'scoring', rows.length);
  // every row starts with the same left segment: run it once and continue each row from its cache
  const prefix = ctx.model.newCache(1, T);
  await ctx.model.step(prefix, left, { logits: false });
  const [pplText, pplImage] = await spanPerplexities(ctx, rows, spans, progress, prefix);
  return result(pplText, pplImage, rerankScores(pplText, pplImage, o.textWeight ?? 0.95, o.quantile ?? 0.5, o.officialNaN));
}

export interface RankTextsOptions extends RunControl {
  image: ImageInput;
  texts: string[];
  /** weight of the text perplexity in the score (official 0.05) */
  textWeight?: number;
  quantile?: number;
  officialNaN?: boolean;
  /** cut texts that do not fit the left text instead of rejecting them (generated captions) */
  truncate?: boolean;
}

export async function rankTexts(ctx: TaskContext, o: RankTextsOptions): Promise<RankResult> {
  const { cfg } = ctx;
  if (!Array.isArray(o.texts) || o.texts.length === 0) throw new InputError('rankTexts: texts must be a non-empty list');
  o.texts.forEach((t, i) => requireText(t, `text ${i}`));
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const rows = o.texts.map((t) => concat(encodeSegment(ctx, t, cfg.l, '<LT_T2I>', o.truncate), code));
  const l = cfg.l, m = cfg.imageLength;
  const spans: Span[] = [
    { from: 0, to: l - 1, kind: 'text', ignoreZero: true },
    { from: l, to: l + m - 1, kind: 'image', ignoreZero: false },
  ];
  const progress = new ProgressReporter(o, 'rankTexts', 'scoring', rows.length);
  const [pplText, pplImage] = await spanPerplexities(ctx, rows, spans, progress);
  return result(pplText, pplImage, rerankScores(pplText, pplImage, o.textWeight ?? 0.05, o.quantile ?? 0.5, o.officialNaN));
}

export function concat(...parts: ArrayLike<number>[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function result(pplText: Float64Array, pplImage: Float64Array, scores: Float64Array): RankResult {
  const order = argsort(scores);
  return { pplText: Array.from(pplText), pplImage: Array.from(pplImage), scores: Array.from(scores), order };
}
