/**
 * Quality of a precision on the yardstick model (issue 16): held-out text perplexity, and against
 * the fp32 model on the same positions the largest / mean absolute logit error and the mean
 * next-token KL divergence KL(p_fp32 ‖ p_precision). Only scored positions count (those whose next
 * token is not padding), over the text logits [0, V − l) that text perplexity uses.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { RudolphConfig } from '../../src/model/config.js';
import type { LinearPrecision, QuantOptions } from '../../src/model/graph-context.js';
import { RudolphModel } from '../../src/model/rudolph-model.js';
import type { RudolphWeights } from '../../src/model/weights.js';
import { loadRudolphDir } from '../../src/pretrained/model-dir.js';
import { encodeText, prepareText } from '../../src/tokenizer/text-encoding.js';
import { YttmTokenizer } from '../../src/tokenizer/yttm.js';
import { REPO_ROOT } from '../../test/helpers.js';

export const YARDSTICK_DIR = path.join(REPO_ROOT, 'test', 'data', 'yardstick');

export interface Yardstick {
  cfg: RudolphConfig;
  weights: RudolphWeights;
  /** held-out sequences: each the model's left text segment (l ids) */
  sequences: Int32Array[];
}

/** The yardstick model and the first `count` held-out texts, encoded as left-text segments. */
export async function loadYardstick(count = Infinity): Promise<Yardstick> {
  const { cfg, weights } = await loadRudolphDir(YARDSTICK_DIR);
  const tokenizer = (await YttmTokenizer.fromFile(path.join(YARDSTICK_DIR, 'bpe.model'))).asTextTokenizer();
  const texts = (await fsp.readFile(path.join(YARDSTICK_DIR, 'heldout.txt'), 'utf8')).split('\n').filter((t) => t.trim() !== '');
  const sequences = texts.slice(0, count).map((t) => encodeText(tokenizer, prepareText(t), cfg.l, null));
  return { cfg, weights, sequences };
}

export interface Quality {
  perplexity: number;
  max_abs_logit_error: number;
  mean_abs_logit_error: number;
  kl: number;
  /** next-token argmax equal to fp32's */
  top1_agreement: number;
  tokens: number;
}

/** Text logits of every position of every sequence: [sequences][l × cols], cols = V − l. */
async function textLogits(model: RudolphModel, cfg: RudolphConfig, sequences: Int32Array[], batch: number): Promise<Float32Array[]> {
  const cols = cfg.textVocab - cfg.l, W = cfg.logitsWidth, T = cfg.l;
  const out: Float32Array[] = [];
  for (let i = 0; i < sequences.length; i += batch) {
    const part = sequences.slice(i, i + batch);
    const ids = new Int32Array(part.length * T);
    part.forEach((s, b) => ids.set(s, b * T));
    const { logits } = await model.forward(ids, part.length, { select: 'all' });
    for (let b = 0; b < part.length; b++) {
      const rows = new Float32Array(T * cols);
      for (let p = 0; p < T; p++) rows.set(logits!.subarray((b * T + p) * W, (b * T + p) * W + cols), p * cols);
      out.push(rows);
    }
  }
  return out;
}

function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const v of row) if (v > max) max = v;
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return max + Math.log(sum);
}

/** Compares `logits` with the fp32 reference on the scored positions of `sequences`. */
export function compare(cfg: RudolphConfig, sequences: Int32Array[], reference: Float32Array[], logits: Float32Array[]): Quality {
  const cols = cfg.textVocab - cfg.l;
  let ce = 0, n = 0, maxErr = 0, sumErr = 0, kl = 0, agree = 0;
  sequences.forEach((ids, s) => {
    for (let p = 0; p + 1 < ids.length; p++) {
      const target = ids[p + 1];
      if (target === 0) continue;
      const a = reference[s].subarray(p * cols, (p + 1) * cols), b = logits[s].subarray(p * cols, (p + 1) * cols);
      const la = logSumExp(a), lb = logSumExp(b);
      ce += lb - b[target];
      let argA = 0, argB = 0;
      for (let c = 0; c < cols; c++) {
        const e = Math.abs(a[c] - b[c]);
        sumErr += e;
        if (e > maxErr) maxErr = e;
        const pa = a[c] - la;
        kl += Math.exp(pa) * (pa - (b[c] - lb));
        if (a[c] > a[argA]) argA = c;
        if (b[c] > b[argB]) argB = c;
      }
      if (argA === argB) agree++;
      n++;
    }
  });
  return {
    perplexity: Math.exp(ce / n), max_abs_logit_error: maxErr, mean_abs_logit_error: sumErr / (n * cols),
    kl: Math.max(0, kl / n), top1_agreement: agree / n, tokens: n,
  };
}

export interface Variant { precision: LinearPrecision; quant?: QuantOptions }

/** Quality of each variant against fp32 on the yardstick's held-out sequences. */
export async function evaluateVariants(y: Yardstick, variants: Record<string, Variant>, batch = 16): Promise<Record<string, Quality>> {
  const run = async (v: Variant) => {
    const model = await RudolphModel.fromWeights(y.cfg, y.weights, { precision: v.precision, quant: v.quant, threads: 2 });
    try {
      return await textLogits(model, y.cfg, y.sequences, batch);
    } finally {
      await model.release();
    }
  };
  const reference = await run({ precision: 'fp32' });
  const out: Record<string, Quality> = {};
  for (const [name, v] of Object.entries(variants)) {
    out[name] = compare(y.cfg, y.sequences, reference, v.precision === 'fp32' && !v.quant ? reference : await run(v));
  }
  return out;
}

/** The precisions as the library builds them; fp16 through its CPU rounding emulation (see QuantOptions.fp16Compute). */
export const PRECISION_VARIANTS: Record<string, Variant> = {
  fp32: { precision: 'fp32' },
  fp16: { precision: 'fp16', quant: { fp16Compute: 'rounded' } },
  int8: { precision: 'int8' },
  q4: { precision: 'q4' },
};
