/**
 * Image captioning (official `image_captioning`): sample captions as right text after the
 * image and a template, then rerank them by image, divided by how often each was sampled.
 */
import { InputError } from '../errors.js';
import { resolveSampling, type SamplingOptions } from '../generation/sampling.js';
import { captionPicker, sampleTexts, TEXT_SAMPLING } from '../generation/text-sampling.js';
import { checkCount, concat } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import { resolveSeed } from '../util/random.js';
import type { TaskContext } from './context.js';
import { encodeSegment, type ImageInput, imageTokens, templateSize } from './inputs.js';
import { rankTexts } from './rank.js';
import { argsort } from './scoring.js';

export interface GenerateCaptionsOptions extends RunControl, Partial<SamplingOptions> {
  image: ImageInput;
  /** right-text template the captions continue (official 'на картинке') */
  template?: string;
  /** sampled captions (official 48) */
  generations?: number;
  /** max right-text tokens incl. the template (official 64 = r) */
  earlyStop?: number;
  seed?: number;
  batchSize?: number;
}

export interface CaptionCandidates { texts: string[]; counts: number[]; seed: number }

/** Official `generate_captions`: distinct sampled captions and their counts. */
export async function generateCaptions(ctx: TaskContext, o: GenerateCaptionsOptions): Promise<CaptionCandidates> {
  const { cfg } = ctx;
  const generations = o.generations ?? 48;
  checkCount(generations, 'generations');
  const sampling = resolveSampling(o, TEXT_SAMPLING, 'caption sampling');
  if (o.earlyStop !== undefined) checkCount(o.earlyStop, 'earlyStop');
  const earlyStop = Math.min(o.earlyStop ?? cfg.r, cfg.r);
  const seed = resolveSeed(o.seed);
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const right = encodeSegment(ctx, o.template ?? 'на картинке', cfg.r, '<RT_I2T>');
  const size = templateSize(right);
  if (size >= earlyStop) throw new InputError(`caption template takes ${size} of the ${earlyStop} right-text tokens: nothing left to generate`);
  const prefix = concat(encodeSegment(ctx, '', cfg.l, '<LT_I2T>'), code, right.subarray(0, size));
  const steps = earlyStop - size;
  const progress = new ProgressReporter(o, 'caption', 'sampling', generations * steps);
  const counted = await sampleTexts(ctx, {
    prefix, shown: right.subarray(0, size), steps, count: generations, seed, sampling, picker: captionPicker(cfg), batchSize: o.batchSize ?? ctx.batchSize,
  }, progress);
  return { texts: counted.map((c) => c.text), counts: counted.map((c) => c.count), seed };
}

export interface CaptionOptions extends GenerateCaptionsOptions {
  /** captions returned (official 5) */
  count?: number;
  /** weight of the text perplexity in the rerank score (official 0.05) */
  textWeight?: number;
}

export interface Caption { text: string; score: number; count: number; pplText: number; pplImage: number }

export async function caption(ctx: TaskContext, o: CaptionOptions): Promise<{ captions: Caption[]; seed: number }> {
  const count = o.count ?? 5;
  checkCount(count, 'count');
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const image = { ids: code };
  const candidates = await generateCaptions(ctx, { ...o, image });
  if (candidates.texts.length === 0) return { captions: [], seed: candidates.seed };
  const ranked = await rankTexts(ctx, { image, texts: candidates.texts, textWeight: o.textWeight ?? 0.05, truncate: true, signal: o.signal, onProgress: o.onProgress });
  const scores = ranked.scores.map((s, i) => s / candidates.counts[i]);
  const order = argsort(scores);
  return {
    captions: order.slice(0, count).map((i) => ({ text: candidates.texts[i], score: scores[i], count: candidates.counts[i], pplText: ranked.pplText[i], pplImage: ranked.pplImage[i] })),
    seed: candidates.seed,
  };
}
