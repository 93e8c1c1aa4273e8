/**
 * Image captioning (official `image_captioning`): sample captions as right text after the
 * image and a template, then rerank them by image, divided by how often each was sampled.
 */
import { InputError } from '../errors.js';
import { chunks, checkCount, encodeSegment, imageTokens, ProgressReporter, templateSize, type ImageInput, type RunControl, type TaskContext } from './context.js';
import { autoregress } from './autoregress.js';
import { allEnded, countTexts, decodeUntilEos } from './decode-text.js';
import { Rng, randomSeed } from './prng.js';
import { concat, rankTexts } from './rank.js';
import { checkSampling, type SamplingOptions } from './sampling.js';
import { captionPicker, pickText, TEXT_SAMPLING } from './text-sampling.js';

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
  const sampling: SamplingOptions = { topK: o.topK ?? TEXT_SAMPLING.topK, topP: o.topP ?? TEXT_SAMPLING.topP, temperature: o.temperature ?? TEXT_SAMPLING.temperature };
  checkSampling(sampling, 'caption sampling');
  const earlyStop = Math.min(o.earlyStop ?? cfg.r, cfg.r);
  const seed = o.seed ?? randomSeed();
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const right = encodeSegment(ctx, o.template ?? 'на картинке', cfg.r, '<RT_I2T>');
  const size = templateSize(right);
  if (size >= earlyStop) throw new InputError(`caption template takes ${size} of the ${earlyStop} right-text tokens: nothing left to generate`);
  const prefix = concat(encodeSegment(ctx, '', cfg.l, '<LT_I2T>'), code, right.subarray(0, size));
  const picker = captionPicker(cfg);
  const steps = earlyStop - size;
  const progress = new ProgressReporter(o, 'caption', 'sampling', generations * steps);
  const texts: string[] = [];
  for (const chunk of chunks(Array.from({ length: generations }, (_, i) => i), o.batchSize ?? ctx.batchSize)) {
    const rngs = chunk.map((i) => new Rng(seed, i));
    const rows = await autoregress(ctx, {
      prefix: chunk.map(() => prefix),
      steps,
      choose: (logits, width) => rngs.map((rng, b) => pickText(logits.subarray(b * width, (b + 1) * width), picker, sampling, rng)),
      finished: allEnded,
    }, progress);
    for (const row of rows) texts.push(decodeUntilEos(ctx.tokenizer, cfg, concat(right.subarray(0, size), row)));
  }
  const counted = countTexts(texts);
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
  const order = Array.from(scores.keys()).sort((a, b) => (scores[a] - scores[b]) || a - b);
  return {
    captions: order.slice(0, count).map((i) => ({ text: candidates.texts[i], score: scores[i], count: candidates.counts[i], pplText: ranked.pplText[i], pplImage: ranked.pplImage[i] })),
    seed: candidates.seed,
  };
}
