/**
 * Text → text (official `generate_texts`): continue a template as left text, optionally only
 * with allowed tokens; distinct results are ranked by their left-text perplexity.
 */
import { InputError } from '../errors.js';
import { resolveSampling, type SamplingOptions } from '../generation/sampling.js';
import type { TokenControl } from '../generation/streaming.js';
import { sampleTexts, TEXT_SAMPLING, textPicker } from '../generation/text-sampling.js';
import { checkCount } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import { resolveSeed } from '../util/random.js';
import type { TaskContext } from './context.js';
import { encodeSegment, GENERATED, requireText, templateSize, TextFit, type Truncation } from './inputs.js';
import { spanPerplexities } from './perplexity.js';
import { argsort } from './scoring.js';
import { applyDefaults, defineTask, samplingFields, SEED_FIELD, TRUNCATE_FIELD, TRUNCATED_SCHEMA } from './spec.js';

/** The official defaults of `generate_texts`. */
const DEFAULTS = { count: 48, truncate: true };

export interface GenerateTextOptions extends RunControl, TokenControl, Partial<SamplingOptions> {
  template: string;
  /** sampled continuations */
  count?: number;
  /** max left-text tokens incl. the template (official default l) */
  earlyStop?: number;
  /** sample only among these token ids */
  allowedTokens?: number[];
  /** official sampling range [0, V) incl. special/pad ids (default: BPE tokens only) */
  officialRange?: boolean;
  seed?: number;
  batchSize?: number;
  /** cut a template that does not fit (reported in `truncated`) instead of refusing it */
  truncate?: boolean;
}

export interface GeneratedText { text: string; ppl: number; count: number }

export interface GenerateTextResult { texts: GeneratedText[]; seed: number; truncated?: Truncation[] }

function checkGenerateText(options: GenerateTextOptions): void {
  const o = applyDefaults(DEFAULTS, options);
  requireText(o.template, 'template');
  checkCount(o.count, 'count');
  if (o.earlyStop !== undefined) checkCount(o.earlyStop, 'earlyStop');
  resolveSampling(o, TEXT_SAMPLING, 'text sampling');
  resolveSeed(o.seed);
}

export async function generateText(ctx: TaskContext, options: GenerateTextOptions): Promise<GenerateTextResult> {
  const { cfg } = ctx;
  checkGenerateText(options);
  const o = applyDefaults(DEFAULTS, options);
  const { count } = o;
  const sampling = resolveSampling(o, TEXT_SAMPLING, 'text sampling');
  const seed = resolveSeed(o.seed);
  const fit = new TextFit(o.truncate);
  const encoded = encodeSegment(ctx, o.template, cfg.l, '<LT_T2T>', fit, 'template');
  const size = templateSize(encoded);
  const earlyStop = Math.min(o.earlyStop ?? cfg.l, cfg.l);
  if (size >= earlyStop) throw new InputError(`template takes ${size} of the ${earlyStop} left-text tokens: nothing left to generate (shorten the template or raise earlyStop)`);
  const prefix = encoded.subarray(0, size);
  const picker = textPicker(cfg, { allowed: o.allowedTokens, official: o.officialRange });
  const steps = earlyStop - size;
  const progress = new ProgressReporter(o, 'generateText', 'sampling', count * steps);
  const counted = await sampleTexts(ctx, {
    prefix, shown: prefix, steps, count, seed, sampling, picker, batchSize: o.batchSize ?? ctx.batchSize, onToken: o.onToken,
  }, progress);
  if (counted.length === 0) return { texts: [], seed, ...fit.report() };
  const rowsToScore = counted.map((c) => encodeSegment(ctx, c.text, cfg.l, '<LT_T2T>', GENERATED));
  progress.begin('scoring', rowsToScore.length);
  const [ppl] = await spanPerplexities(ctx, rowsToScore, [{ from: 0, to: cfg.l - 1, kind: 'text', ignoreZero: true }], progress);
  const order = argsort(ppl);
  return { texts: order.map((i) => ({ text: counted[i].text, ppl: ppl[i], count: counted[i].count })), seed, ...fit.report() };
}

export const generateTextTask = defineTask<GenerateTextOptions, GenerateTextResult>({
  name: 'text',
  summary: 'text → text: continue a template, rank the results by perplexity',
  fields: {
    template: { type: 'string', minLength: 1, maxLength: 4000, description: 'the beginning of the text', cli: { positional: true }, label: { ru: 'Начало текста', en: 'Text start' } },
    count: { type: 'integer', minimum: 1, maximum: 1024, default: DEFAULTS.count, description: 'continuations sampled', cli: { short: '-n' }, label: { ru: 'Вариантов', en: 'Samples' } },
    earlyStop: { type: 'integer', minimum: 1, maximum: 4096, description: 'most left-text tokens, template included (default: the model\'s left-text length)' },
    allowedTokens: { type: 'integers', maxItems: 100000, minimum: 0, description: 'sample only these token ids' },
    officialRange: { type: 'boolean', default: false, description: 'sample from the official range [0, V), special and pad ids included' },
    seed: SEED_FIELD,
    ...samplingFields(TEXT_SAMPLING),
    truncate: TRUNCATE_FIELD,
  },
  required: ['template'],
  run: generateText,
  streams: true,
  check: checkGenerateText,
  output: {
    type: 'object', additionalProperties: false, required: ['texts', 'seed'],
    properties: {
      texts: {
        type: 'array',
        items: {
          type: 'object', additionalProperties: false, required: ['text', 'ppl', 'count'],
          properties: { text: { type: 'string' }, ppl: { type: 'number' }, count: { type: 'integer' } },
        },
      },
      seed: { type: 'integer' },
      truncated: TRUNCATED_SCHEMA,
    },
  },
  format: (r) => r.texts.map((t) => `${t.text}\tppl ${t.ppl.toFixed(2)}\tcount ${t.count}`),
  examples: ['rudolph text "вопрос: что такое море? ответ:"', 'rudolph text "погода сегодня" --allowed-tokens "12,57,301" --count 8 --json'],
});
