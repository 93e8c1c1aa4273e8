/**
 * Zero-shot image classification (official `zs_clf`): per class, the perplexity of the right
 * text "template(class)" after the image; normalised by its L2 norm over classes, softmaxed;
 * the prediction is the lowest perplexity.
 */
import { InputError } from '../errors.js';
import { concat } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import type { TaskContext } from './context.js';
import { encodeSegment, formatTemplate, type ImageInput, imageTokens, requireText } from './inputs.js';
import { spanPerplexities } from './perplexity.js';

export interface ClassifyOptions extends RunControl {
  image: ImageInput;
  classes: string[];
  /** right text per class, `{}` = the class (official '{}') */
  template?: string;
  /** left text per class (official '') */
  leftTemplate?: string;
}

export interface ClassifyResult {
  label: number;
  class: string;
  /** softmax of L2-normalised perplexities (the official scores: lower = more likely) */
  scores: number[];
  ppl: number[];
}

export async function classify(ctx: TaskContext, o: ClassifyOptions): Promise<ClassifyResult> {
  const { cfg } = ctx;
  if (!Array.isArray(o.classes) || o.classes.length === 0) throw new InputError('classify: classes must be a non-empty list');
  o.classes.forEach((c, i) => requireText(c, `class ${i}`));
  const rightTexts = o.classes.map((c) => formatTemplate(o.template ?? '{}', 'class template', c));
  const leftTexts = o.classes.map((c) => formatTemplate(o.leftTemplate ?? '', 'left template', c));
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const rows = o.classes.map((_, i) => concat(
    encodeSegment(ctx, leftTexts[i], cfg.l, '<LT_I2T>'), code, encodeSegment(ctx, rightTexts[i], cfg.r, '<RT_I2T>'),
  ));
  const T = cfg.totalLength;
  const progress = new ProgressReporter(o, 'classify', 'scoring', rows.length);
  // Every class shares [left | image] when the left template ignores the class: run it once.
  const shared = new Set(leftTexts).size === 1;
  let prefix;
  if (shared) {
    prefix = ctx.model.newCache(1, T);
    await ctx.model.step(prefix, rows[0].subarray(0, cfg.l + cfg.imageLength), { logits: false });
  }
  const [ppl] = await spanPerplexities(ctx, rows, [{ from: T - cfg.r, to: T - 1, kind: 'text', ignoreZero: true }], progress, prefix);
  const norm = Math.sqrt(ppl.reduce((s, v) => s + v * v, 0));
  const normed = Array.from(ppl, (v) => Math.fround(v / norm));
  const max = Math.max(...normed);
  const exps = normed.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const scores = exps.map((e) => e / sum);
  let label = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] < scores[label]) label = i;
  return { label, class: o.classes[label], scores, ppl: Array.from(ppl) };
}
