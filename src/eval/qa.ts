/**
 * `rudolph eval qa`: answers generated as the official sberQuAD evaluation does (the 2.7B
 * fine-tuning notebook's `generate_text_answers`), scored by the official `f1_score.py`:
 * - left text: `context + ' ' + question`, lower-cased and stripped, with `<LT_TQA>` (the 7th
 *   text special token: id vocab_size − l + 6, 16390 on the official models) — cut to the left
 *   segment like every text, and reported (`truncated`: the question can fall off a long context
 *   on models with a short l);
 * - image: n² zero tokens; right text: bos + `<RT_UNK>` (what the notebook's inference passes),
 *   then the answer sampled among the BPE tokens with top-k 32, top-p 0.8, temperature 1, until eos;
 * - one answer a question, from sample stream i for question i (same seed → same answers, in
 *   any batch size, resumed or not).
 */
import { throwIfAborted } from '../errors.js';
import type { ModelContext } from '../generation/context.js';
import { allEnded, decodeUntilEos } from '../generation/decode-text.js';
import { autoregress } from '../generation/autoregress.js';
import { resolveSampling, type SamplingOptions } from '../generation/sampling.js';
import { pickText, textPicker } from '../generation/text-sampling.js';
import { specialId } from '../model/config.js';
import type { Rudolph } from '../rudolph.js';
import { templateSize } from '../tasks/inputs.js';
import { encodeText, prepareText, wasCut } from '../tokenizer/text-encoding.js';
import { concat } from '../util/arrays.js';
import { Rng, resolveSeed } from '../util/random.js';
import type { QaItem } from './datasets.js';
import { ResultsLog } from './results-log.js';
import { type EvalControl, resultsOf, runItems } from './runner.js';
import { scoreAnswer } from './squad.js';

/** The notebook's answer sampling. */
export const QA_SAMPLING: SamplingOptions = { topK: 32, topP: 0.8, temperature: 1 };
/** `<LT_TQA>`'s slot among the text special tokens (SPC_TOKENS of the notebook: 16384 + 6). */
const LT_TQA_SLOT = 6;

/** The left special token of the QA fine-tune, by the official rule; null for models without text special tokens. */
export function qaLeftToken(ctx: ModelContext): number | null {
  const p = ctx.cfg.params;
  return p.text_special_tokens > 0 ? p.vocab_size - p.l_text_seq_length + (LT_TQA_SLOT % p.text_special_tokens) : null;
}

export interface GeneratedAnswer {
  text: string;
  /** context + question did not fit the left text and were cut (the question may be lost) */
  truncated: boolean;
}

/** One sampled answer per question (`index` picks the question's sample stream). */
export async function generateAnswers(
  ctx: ModelContext, questions: readonly { index: number; context: string; question: string }[],
  o: { seed: number; sampling?: Partial<SamplingOptions>; signal?: AbortSignal },
): Promise<GeneratedAnswer[]> {
  const { cfg, tokenizer } = ctx;
  const sampling = resolveSampling(o.sampling ?? {}, QA_SAMPLING, 'qa sampling');
  const right = encodeText(tokenizer, '', cfg.r, specialId(cfg, '<RT_UNK>'));
  const size = templateSize(right);
  const image = new Int32Array(cfg.imageLength);
  const left = qaLeftToken(ctx);
  const lefts = questions.map((q) => encodeText(tokenizer, prepareText(`${q.context} ${q.question}`), cfg.l, left));
  const prefix = lefts.map((l) => concat(l, image, right.subarray(0, size)));
  const picker = textPicker(cfg, {});
  const rngs = questions.map((q) => new Rng(o.seed, q.index));
  const rows = await autoregress(ctx, {
    prefix, steps: cfg.r - size, finished: allEnded,
    choose: (logits, width) => {
      throwIfAborted(o.signal);
      return rngs.map((rng, b) => pickText(logits.subarray(b * width, (b + 1) * width), picker, sampling, rng));
    },
  });
  return rows.map((row, b) => ({ text: decodeUntilEos(tokenizer, cfg, row), truncated: wasCut(lefts[b]) }));
}

export interface QaEvalOptions extends EvalControl {
  seed?: number;
  sampling?: Partial<SamplingOptions>;
  /** best over every gold answer (SQuAD) instead of the first (the official notebook) */
  allAnswers?: boolean;
  limit?: number;
  resultsFile: string;
  restart?: boolean;
}

export interface QaLine { id: string; prediction: string; f1: number; em: number; truncated?: true }

export interface QaEvalReport {
  task: 'qa';
  count: number;
  /** mean token F1 (official f1_score.py) */
  f1: number;
  /** mean exact match of the normalised answers */
  exactMatch: number;
  seed: number;
  allAnswers: boolean;
  resumed: number;
  /** questions whose context + question were cut to the left text */
  truncated: number;
}

export async function evalQa(r: Rudolph, data: readonly QaItem[], o: QaEvalOptions): Promise<QaEvalReport> {
  const seed = resolveSeed(o.seed ?? 0);
  const sampling = resolveSampling(o.sampling ?? {}, QA_SAMPLING, 'qa sampling');
  const allAnswers = o.allAnswers ?? false;
  const items = (o.limit === undefined ? data : data.slice(0, o.limit)).map((it, index) => ({ ...it, index }));
  const ctx: ModelContext = { model: r.model, cfg: r.config, tokenizer: r.tokenizer };
  const info = r.info();
  const log = await ResultsLog.open<QaLine>(o.resultsFile, { task: 'qa', model: info.source, precision: info.runtime.precision, seed, sampling, allAnswers }, { restart: o.restart });
  let resumed = 0;
  try {
    await runItems(items, log, async (batch) => {
      const answers = await generateAnswers(ctx, batch, { seed, sampling, signal: o.signal });
      return batch.map((it, k) => ({
        id: it.id, prediction: answers[k].text, ...scoreAnswer(it.answers, answers[k].text, allAnswers), ...(answers[k].truncated ? { truncated: true as const } : {}),
      }));
    }, { ...o, onProgress: (p) => { resumed = p.resumed; o.onProgress?.(p); } });
  } finally {
    await log.close();
  }
  const lines = resultsOf(items, log);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return { task: 'qa', count: lines.length, f1: mean(lines.map((l) => l.f1)), exactMatch: mean(lines.map((l) => l.em)), seed, allAnswers, resumed,
    truncated: lines.filter((l) => l.truncated).length,
  };
}
