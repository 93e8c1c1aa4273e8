/**
 * Text → text (official `generate_texts`): continue a template as left text, optionally only
 * with allowed tokens; distinct results are ranked by their left-text perplexity.
 */
import { InputError } from '../errors.js';
import { chunks, checkCount, encodeSegment, ProgressReporter, templateSize, type RunControl, type TaskContext } from './context.js';
import { autoregress } from './autoregress.js';
import { allEnded, countTexts, decodeUntilEos } from './decode-text.js';
import { spanPerplexities } from './perplexity.js';
import { Rng, randomSeed } from './prng.js';
import { concat } from './rank.js';
import { checkSampling, type SamplingOptions } from './sampling.js';
import { pickText, TEXT_SAMPLING, textPicker } from './text-sampling.js';

export interface GenerateTextOptions extends RunControl, Partial<SamplingOptions> {
  template: string;
  /** sampled continuations (official 48) */
  count?: number;
  /** max left-text tokens incl. the template (official default l) */
  earlyStop?: number;
  /** sample only among these token ids */
  allowedTokens?: number[];
  /** official sampling range [0, V) incl. special/pad ids (default: BPE tokens only) */
  officialRange?: boolean;
  seed?: number;
  batchSize?: number;
}

export interface GeneratedText { text: string; ppl: number; count: number }

export async function generateText(ctx: TaskContext, o: GenerateTextOptions): Promise<{ texts: GeneratedText[]; seed: number }> {
  const { cfg } = ctx;
  if (typeof o.template !== 'string') throw new InputError('template must be a string');
  const count = o.count ?? 48;
  checkCount(count, 'count');
  const sampling: SamplingOptions = { topK: o.topK ?? TEXT_SAMPLING.topK, topP: o.topP ?? TEXT_SAMPLING.topP, temperature: o.temperature ?? TEXT_SAMPLING.temperature };
  checkSampling(sampling, 'text sampling');
  const seed = o.seed ?? randomSeed();
  const encoded = encodeSegment(ctx, o.template, cfg.l, '<LT_T2T>');
  const size = templateSize(encoded);
  const earlyStop = Math.min(o.earlyStop ?? cfg.l, cfg.l);
  if (size >= earlyStop) throw new InputError(`template takes ${size} of the ${earlyStop} left-text tokens: nothing left to generate (shorten the template or raise earlyStop)`);
  const prefix = encoded.subarray(0, size);
  const picker = textPicker(cfg, { allowed: o.allowedTokens, official: o.officialRange });
  const steps = earlyStop - size;
  const progress = new ProgressReporter(o, 'generateText', 'sampling', count * steps);
  const texts: string[] = [];
  for (const chunk of chunks(Array.from({ length: count }, (_, i) => i), o.batchSize ?? ctx.batchSize)) {
    const rngs = chunk.map((i) => new Rng(seed, i));
    const rows = await autoregress(ctx, {
      prefix: chunk.map(() => prefix),
      steps,
      choose: (logits, width) => rngs.map((rng, b) => pickText(logits.subarray(b * width, (b + 1) * width), picker, sampling, rng)),
      finished: allEnded,
    }, progress);
    for (const row of rows) texts.push(decodeUntilEos(ctx.tokenizer, cfg, concat(prefix, row)));
  }
  const counted = countTexts(texts);
  if (counted.length === 0) return { texts: [], seed };
  const rowsToScore = counted.map((c) => encodeSegment(ctx, c.text, cfg.l, '<LT_T2T>', true));
  progress.begin('scoring', rowsToScore.length);
  const [ppl] = await spanPerplexities(ctx, rowsToScore, [{ from: 0, to: cfg.l - 1, kind: 'text', ignoreZero: true }], progress);
  const order = Array.from(ppl.keys()).sort((a, b) => (ppl[a] - ppl[b]) || a - b);
  return { texts: order.map((i) => ({ text: counted[i].text, ppl: ppl[i], count: counted[i].count })), seed };
}
