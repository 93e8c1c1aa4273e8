/**
 * Sampling text tokens: the official text defaults and the id ranges each task samples from.
 */
import { InputError } from '../errors.js';
import type { RudolphConfig } from '../model/config.js';
import { EOS_ID } from '../tokenizer/text-encoding.js';
import { chunks, concat } from '../util/arrays.js';
import type { ProgressReporter } from '../util/progress.js';
import { Rng } from '../util/random.js';
import { autoregress } from './autoregress.js';
import type { ModelContext } from './context.js';
import { allEnded, countTexts, decodeUntilEos } from './decode-text.js';
import { sampleLogits, type SamplingOptions } from './sampling.js';
import { type TextToken, TokenReporter } from './streaming.js';

/** Official text sampling defaults: top-k 64, top-p 0.8, temperature 0.9. */
export const TEXT_SAMPLING: SamplingOptions = { topK: 64, topP: 0.8, temperature: 0.9 };

export interface TextPicker {
  /** candidate ids (logit columns) to sample among */
  columns: Int32Array;
  /** maps a sampled id to the token appended (e.g. special ids → eos) */
  map: (id: number) => number;
}

/** Sample among `columns` of a logits row, then map. */
export function pickText(row: Float32Array, picker: TextPicker, sampling: SamplingOptions, rng: Rng): number {
  const sub = new Float32Array(picker.columns.length);
  for (let i = 0; i < sub.length; i++) sub[i] = row[picker.columns[i]];
  return picker.map(picker.columns[sampleLogits(sub, sampling, rng)]);
}

export function range(from: number, to: number): Int32Array {
  return Int32Array.from({ length: to - from }, (_, i) => from + i);
}

/** Validated allowed token ids (sorted, unique) for a text range [0, limit). */
function allowedColumns(ids: readonly number[], limit: number): Int32Array {
  if (ids.length === 0) throw new InputError('allowed tokens: the list is empty');
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= limit) throw new InputError(`allowed tokens: id ${id} is outside [0, ${limit})`);
  return Int32Array.from(new Set(ids)).sort();
}

/** Captions sample from [0, V-l): every special id (≥ bpe vocab) ends the caption. */
export function captionPicker(cfg: RudolphConfig): TextPicker {
  return { columns: range(0, cfg.textVocab - cfg.l), map: (id) => (id >= cfg.bpeVocab ? EOS_ID : id) };
}

/**
 * Text generation. Default: only real BPE tokens [0, bpe vocab). `official: true` reproduces the
 * official range [0, V) (including special and positional pad ids) where only ids > bpe vocab
 * (strictly) become eos.
 */
export function textPicker(cfg: RudolphConfig, opts: { allowed?: readonly number[]; official?: boolean }): TextPicker {
  const limit = opts.official ? cfg.textVocab : cfg.bpeVocab;
  const columns = opts.allowed ? allowedColumns(opts.allowed, limit) : range(0, limit);
  return { columns, map: (id) => (id > cfg.bpeVocab ? EOS_ID : id) };
}

export interface TextSamplingSpec {
  /** tokens fed before sampling (shared by every candidate) */
  prefix: Int32Array;
  /** tokens the decoded text starts with (the template part of the prefix) */
  shown: Int32Array;
  steps: number;
  count: number;
  seed: number;
  sampling: SamplingOptions;
  picker: TextPicker;
  batchSize: number;
  /** every token of every candidate, as it is sampled */
  onToken?: (t: TextToken) => void;
}

/** Samples `count` continuations (candidate i from stream i) and returns distinct texts with counts. */
export async function sampleTexts(ctx: ModelContext, spec: TextSamplingSpec, progress: ProgressReporter): Promise<{ text: string; count: number }[]> {
  const texts: string[] = [];
  for (const chunk of chunks(Array.from({ length: spec.count }, (_, i) => i), spec.batchSize)) {
    const rngs = chunk.map((i) => new Rng(spec.seed, i));
    const { onToken } = spec;
    const reporter = onToken && new TokenReporter(ctx.tokenizer, ctx.cfg, onToken, chunk, spec.shown, spec.steps);
    const rows = await autoregress(ctx, {
      prefix: chunk.map(() => spec.prefix),
      steps: spec.steps,
      choose: (logits, width) => rngs.map((rng, b) => pickText(logits.subarray(b * width, (b + 1) * width), spec.picker, spec.sampling, rng)),
      finished: allEnded,
      onStep: reporter && ((tokens, step) => reporter.step(tokens, step)),
    }, progress);
    for (const row of rows) texts.push(decodeUntilEos(ctx.tokenizer, ctx.cfg, concat(spec.shown, row)));
  }
  return countTexts(texts);
}
