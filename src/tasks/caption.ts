/**
 * Image captioning (official `image_captioning`): sample captions as right text after the
 * image and a template, then rerank them by image, divided by how often each was sampled.
 */
import { InputError } from '../errors.js';
import { resolveSampling, type SamplingOptions } from '../generation/sampling.js';
import type { TokenControl } from '../generation/streaming.js';
import { captionPicker, sampleTexts, TEXT_SAMPLING } from '../generation/text-sampling.js';
import { checkCount, concat } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import { resolveSeed } from '../util/random.js';
import type { TaskContext } from './context.js';
import { encodeSegment, GENERATED, type ImageInput, imageTokens, templateSize, TextFit, type Truncation } from './inputs.js';
import { rankTexts } from './rank.js';
import { argsort } from './scoring.js';
import { applyDefaults, defineTask, samplingFields, SEED_FIELD, TRUNCATE_FIELD, TRUNCATED_SCHEMA, WEIGHT_FIELD } from './spec.js';

/** The official defaults of `image_captioning`. */
const DEFAULTS = { template: 'на картинке', generations: 48, count: 5, textWeight: 0.05, truncate: true };

export interface GenerateCaptionsOptions extends RunControl, TokenControl, Partial<SamplingOptions> {
  image: ImageInput;
  /** right-text template the captions continue */
  template?: string;
  /** sampled captions */
  generations?: number;
  /** max right-text tokens incl. the template (official 64 = r) */
  earlyStop?: number;
  seed?: number;
  batchSize?: number;
  /** cut a template that does not fit (reported in `truncated`) instead of refusing it */
  truncate?: boolean;
}

export interface CaptionCandidates { texts: string[]; counts: number[]; seed: number; truncated?: Truncation[] }

/** Official `generate_captions`: distinct sampled captions and their counts. */
export async function generateCaptions(ctx: TaskContext, options: GenerateCaptionsOptions): Promise<CaptionCandidates> {
  const { cfg } = ctx;
  const o = applyDefaults(DEFAULTS, options);
  const { generations } = o;
  checkCount(generations, 'generations');
  const sampling = resolveSampling(o, TEXT_SAMPLING, 'caption sampling');
  if (o.earlyStop !== undefined) checkCount(o.earlyStop, 'earlyStop');
  const earlyStop = Math.min(o.earlyStop ?? cfg.r, cfg.r);
  const seed = resolveSeed(o.seed);
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const fit = new TextFit(o.truncate);
  const right = encodeSegment(ctx, o.template, cfg.r, '<RT_I2T>', fit, 'template');
  const size = templateSize(right);
  if (size >= earlyStop) throw new InputError(`caption template takes ${size} of the ${earlyStop} right-text tokens: nothing left to generate`);
  const prefix = concat(encodeSegment(ctx, '', cfg.l, '<LT_I2T>', fit), code, right.subarray(0, size));
  const steps = earlyStop - size;
  const progress = new ProgressReporter(o, 'caption', 'sampling', generations * steps);
  const counted = await sampleTexts(ctx, {
    prefix, shown: right.subarray(0, size), steps, count: generations, seed, sampling, picker: captionPicker(cfg), batchSize: o.batchSize ?? ctx.batchSize, onToken: o.onToken,
  }, progress);
  return { texts: counted.map((c) => c.text), counts: counted.map((c) => c.count), seed, ...fit.report() };
}

export interface CaptionOptions extends GenerateCaptionsOptions {
  /** captions returned */
  count?: number;
  /** weight of the text perplexity in the rerank score */
  textWeight?: number;
}

export interface Caption { text: string; score: number; count: number; pplText: number; pplImage: number }

function checkCaption(options: CaptionOptions): void {
  const o = applyDefaults(DEFAULTS, options);
  checkCount(o.count, 'count');
  checkCount(o.generations, 'generations');
  if (o.earlyStop !== undefined) checkCount(o.earlyStop, 'earlyStop');
  resolveSampling(o, TEXT_SAMPLING, 'caption sampling');
  resolveSeed(o.seed);
}

export interface CaptionResult { captions: Caption[]; seed: number; truncated?: Truncation[] }

export async function caption(ctx: TaskContext, options: CaptionOptions): Promise<CaptionResult> {
  const o = applyDefaults(DEFAULTS, options);
  const { count } = o;
  checkCount(count, 'count');
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const image = { ids: code };
  const candidates = await generateCaptions(ctx, { ...o, image });
  const truncated = candidates.truncated ? { truncated: candidates.truncated } : {};
  if (candidates.texts.length === 0) return { captions: [], seed: candidates.seed, ...truncated };
  const ranked = await rankTexts(ctx, { image, texts: candidates.texts, textWeight: o.textWeight, signal: o.signal, onProgress: o.onProgress }, GENERATED);
  const scores = ranked.scores.map((s, i) => s / candidates.counts[i]);
  const order = argsort(scores);
  return {
    captions: order.slice(0, count).map((i) => ({ text: candidates.texts[i], score: scores[i], count: candidates.counts[i], pplText: ranked.pplText[i], pplImage: ranked.pplImage[i] })),
    seed: candidates.seed,
    ...truncated,
  };
}

export const captionTask = defineTask<CaptionOptions, CaptionResult>({
  name: 'caption',
  summary: 'image → captions reranked by the image',
  fields: {
    image: { type: 'image', description: 'the image to describe', cli: { positional: true } },
    template: { type: 'string', maxLength: 4000, default: DEFAULTS.template, description: 'the text every caption continues', label: { ru: 'Начало подписи', en: 'Caption start' } },
    generations: { type: 'integer', minimum: 1, maximum: 1024, default: DEFAULTS.generations, description: 'captions sampled before reranking', label: { ru: 'Сэмплов', en: 'Samples' } },
    count: { type: 'integer', minimum: 1, maximum: 256, default: DEFAULTS.count, description: 'captions returned', cli: { short: '-n' }, label: { ru: 'Подписей', en: 'Captions' } },
    earlyStop: { type: 'integer', minimum: 1, maximum: 4096, description: 'most right-text tokens, template included (default: the model\'s right-text length)' },
    seed: SEED_FIELD,
    ...samplingFields(TEXT_SAMPLING),
    textWeight: WEIGHT_FIELD('weight of the text perplexity in the rerank score', DEFAULTS.textWeight),
    truncate: TRUNCATE_FIELD,
  },
  required: ['image'],
  run: caption,
  streams: true,
  check: checkCaption,
  output: {
    type: 'object', additionalProperties: false, required: ['captions', 'seed'],
    properties: {
      captions: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['text', 'score', 'count', 'pplText', 'pplImage'],
          properties: {
            text: { type: 'string' }, score: { type: ['number', 'null'], description: 'rerank score, lower is better' },
            count: { type: 'integer', description: 'how often it was sampled' }, pplText: { type: 'number' }, pplImage: { type: 'number' },
          },
        },
      },
      seed: { type: 'integer' },
      truncated: TRUNCATED_SCHEMA,
    },
  },
  format: (r) => r.captions.map((c) => `${c.text}\tscore ${c.score.toFixed(4)}\tcount ${c.count}`),
  examples: ['rudolph caption фото.jpg', 'rudolph caption фото.jpg --template "на фотографии" --generations 24 --json'],
});
