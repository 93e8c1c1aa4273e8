/**
 * Self-reranking: images for a text (official `self_reranking_by_text`) and texts for an image
 * (official `self_reranking_by_image`), both by perplexity; lower scores are better.
 */
import { InputError } from '../errors.js';
import { concat } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import type { TaskContext } from './context.js';
import { encodeSegment, GENERATED, type ImageInput, imageTokens, requireText, TextFit, type Truncation } from './inputs.js';
import { type Span, spanPerplexities } from './perplexity.js';
import { argsort, rerankScores } from './scoring.js';
import { applyDefaults, defineTask, type JsonSchema, TRUNCATE_FIELD, TRUNCATED_SCHEMA, WEIGHT_FIELD } from './spec.js';

export interface RankResult {
  pplText: number[];
  pplImage: number[];
  /** lower is better */
  scores: number[];
  /** indices by ascending score */
  order: number[];
  truncated?: Truncation[];
}

/** The official defaults of `self_reranking_by_text` / `self_reranking_by_image`. */
const IMAGES_DEFAULTS = { textWeight: 0.95, quantile: 0.5, leftTemplate: '', officialNaN: false, truncate: true };
const TEXTS_DEFAULTS = { textWeight: 0.05, quantile: 0.5, officialNaN: false, truncate: true };

export interface RankImagesOptions extends RunControl {
  text: string;
  images: ImageInput[];
  /** weight of the text perplexity in the score */
  textWeight?: number;
  /** quantile for normalisation */
  quantile?: number;
  /** left text (official l_template) */
  leftTemplate?: string;
  /** keep the official NaN scores when all candidates tie */
  officialNaN?: boolean;
  /** cut a text that does not fit (reported in `truncated`) instead of refusing it */
  truncate?: boolean;
}

function checkRankImages(o: RankImagesOptions): void {
  requireText(o.text, 'text');
  if (!Array.isArray(o.images) || o.images.length === 0) throw new InputError('rankImages: images must be a non-empty list');
}

export async function rankImages(ctx: TaskContext, options: RankImagesOptions): Promise<RankResult> {
  const { cfg } = ctx;
  checkRankImages(options);
  const o = applyDefaults(IMAGES_DEFAULTS, options);
  const codes = await imageTokens(ctx, o.images, 'image');
  const fit = new TextFit(o.truncate);
  const left = encodeSegment(ctx, o.leftTemplate, cfg.l, '<LT_I2T>', fit, 'leftTemplate');
  const right = encodeSegment(ctx, o.text, cfg.r, '<RT_I2T>', fit);
  const rows = codes.map((c) => concat(left, c, right));
  const T = cfg.totalLength, l = cfg.l, m = cfg.imageLength;
  const spans: Span[] = [
    { from: T - cfg.r, to: T - 1, kind: 'text', ignoreZero: true },
    { from: l, to: l + m - 1, kind: 'image', ignoreZero: false },
  ];
  const progress = new ProgressReporter(o, 'rankImages', 'scoring', rows.length);
  // every row starts with the same left segment: run it once and continue each row from its cache
  const prefix = ctx.model.newCache(1, T);
  try {
    await ctx.model.step(prefix, left, { logits: false });
    const [pplText, pplImage] = await spanPerplexities(ctx, rows, spans, progress, prefix);
    return result(pplText, pplImage, rerankScores(pplText, pplImage, o.textWeight, o.quantile, o.officialNaN), fit);
  } finally {
    prefix.release();
  }
}

export interface RankTextsOptions extends RunControl {
  image: ImageInput;
  texts: string[];
  /** weight of the text perplexity in the score */
  textWeight?: number;
  quantile?: number;
  officialNaN?: boolean;
  /** cut a text that does not fit (reported in `truncated`) instead of refusing it */
  truncate?: boolean;
}

function checkRankTexts(o: RankTextsOptions): void {
  if (!Array.isArray(o.texts) || o.texts.length === 0) throw new InputError('rankTexts: texts must be a non-empty list');
  o.texts.forEach((t, i) => requireText(t, `text ${i}`));
}

/** `generated`: the texts are the model's own (captions), cut silently as the official code does. */
export async function rankTexts(ctx: TaskContext, options: RankTextsOptions, generated?: typeof GENERATED): Promise<RankResult> {
  const { cfg } = ctx;
  checkRankTexts(options);
  const o = applyDefaults(TEXTS_DEFAULTS, options);
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const fit = generated ?? new TextFit(o.truncate);
  const rows = o.texts.map((t, i) => concat(encodeSegment(ctx, t, cfg.l, '<LT_T2I>', fit, `texts[${i}]`), code));
  const l = cfg.l, m = cfg.imageLength;
  const spans: Span[] = [
    { from: 0, to: l - 1, kind: 'text', ignoreZero: true },
    { from: l, to: l + m - 1, kind: 'image', ignoreZero: false },
  ];
  const progress = new ProgressReporter(o, 'rankTexts', 'scoring', rows.length);
  const [pplText, pplImage] = await spanPerplexities(ctx, rows, spans, progress);
  return result(pplText, pplImage, rerankScores(pplText, pplImage, o.textWeight, o.quantile, o.officialNaN), fit);
}

function result(pplText: Float64Array, pplImage: Float64Array, scores: Float64Array, fit: TextFit | typeof GENERATED): RankResult {
  const order = argsort(scores);
  return { pplText: Array.from(pplText), pplImage: Array.from(pplImage), scores: Array.from(scores), order, ...(fit === GENERATED ? {} : fit.report()) };
}

const RANK_OUTPUT: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['pplText', 'pplImage', 'scores', 'order'],
  properties: {
    pplText: { type: 'array', items: { type: 'number' } },
    pplImage: { type: 'array', items: { type: 'number' } },
    scores: { type: 'array', items: { type: ['number', 'null'] }, description: 'rerank scores, lower is better' },
    order: { type: 'array', items: { type: 'integer' }, description: 'indices by ascending score' },
    truncated: TRUNCATED_SCHEMA,
  },
};

const QUANTILE_FIELD = { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.5, description: 'quantile the perplexities are normalised by' } as const;
const OFFICIAL_NAN_FIELD = { type: 'boolean', default: false, description: 'keep the official NaN scores when all candidates tie (default: ties score 0)' } as const;

export const rankImagesTask = defineTask<RankImagesOptions, RankResult>({
  name: 'rank-images',
  summary: 'rank images by how well they fit a text (lower score = better)',
  fields: {
    text: { type: 'string', minLength: 1, maxLength: 4000, description: 'the text', cli: { positional: true } },
    images: { type: 'images', maxItems: 256, description: 'the candidate images', cli: { positional: 'variadic' } },
    textWeight: WEIGHT_FIELD('weight of the text perplexity in the score', IMAGES_DEFAULTS.textWeight),
    quantile: { ...QUANTILE_FIELD, default: IMAGES_DEFAULTS.quantile },
    leftTemplate: { type: 'string', maxLength: 4000, default: IMAGES_DEFAULTS.leftTemplate, description: 'left text' },
    officialNaN: { ...OFFICIAL_NAN_FIELD, default: IMAGES_DEFAULTS.officialNaN },
    truncate: TRUNCATE_FIELD,
  },
  required: ['text', 'images'],
  run: rankImages,
  check: checkRankImages,
  output: RANK_OUTPUT,
  format: (r, _, files) => r.order.map((i) => `${files[i] ?? i}\tscore ${r.scores[i].toFixed(4)}\tppl_txt ${r.pplText[i].toFixed(2)}\tppl_img ${r.pplImage[i].toFixed(2)}`),
  examples: ['rudolph rank-images "рыжая кошка" a.png b.png c.png'],
});

export const rankTextsTask = defineTask<RankTextsOptions, RankResult>({
  name: 'rank-texts',
  summary: 'rank texts by how well they fit an image (lower score = better)',
  fields: {
    image: { type: 'image', description: 'the image', cli: { positional: true } },
    texts: { type: 'strings', maxItems: 256, maxLength: 4000, description: 'the candidate texts', cli: { positional: 'variadic' } },
    textWeight: WEIGHT_FIELD('weight of the text perplexity in the score', TEXTS_DEFAULTS.textWeight),
    quantile: { ...QUANTILE_FIELD, default: TEXTS_DEFAULTS.quantile },
    officialNaN: { ...OFFICIAL_NAN_FIELD, default: TEXTS_DEFAULTS.officialNaN },
    truncate: TRUNCATE_FIELD,
  },
  required: ['image', 'texts'],
  run: rankTexts,
  check: checkRankTexts,
  output: RANK_OUTPUT,
  format: (r, input) => r.order.map((i) => `${input.texts[i]}\tscore ${r.scores[i].toFixed(4)}`),
  examples: ['rudolph rank-texts фото.jpg "кошка на диване" "собака в парке"'],
});
