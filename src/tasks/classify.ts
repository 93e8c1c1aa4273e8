/**
 * Zero-shot image classification (official `zs_clf`): per class, the perplexity of the right
 * text "template(class)" after the image; normalised by its L2 norm over classes, softmaxed;
 * the prediction is the lowest perplexity.
 */
import { InputError } from '../errors.js';
import { concat } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import type { TaskContext } from './context.js';
import { encodeSegment, formatTemplate, type ImageInput, imageTokens, requireText, TextFit, type Truncation } from './inputs.js';
import { spanPerplexities } from './perplexity.js';
import { applyDefaults, defineTask, TRUNCATE_FIELD, TRUNCATED_SCHEMA } from './spec.js';

/** The official defaults of `zs_clf`. */
const DEFAULTS = { template: '{}', leftTemplate: '', truncate: true };

export interface ClassifyOptions extends RunControl {
  image: ImageInput;
  classes: string[];
  /** right text per class, `{}` = the class */
  template?: string;
  /** left text per class */
  leftTemplate?: string;
  /** cut a text that does not fit (reported in `truncated`) instead of refusing it */
  truncate?: boolean;
}

export interface ClassifyResult {
  label: number;
  class: string;
  /** softmax of L2-normalised perplexities (the official scores: lower = more likely) */
  scores: number[];
  ppl: number[];
  truncated?: Truncation[];
}

function checkClassify(options: ClassifyOptions): void {
  const o = applyDefaults(DEFAULTS, options);
  if (!Array.isArray(o.classes) || o.classes.length === 0) throw new InputError('classify: classes must be a non-empty list');
  o.classes.forEach((c, i) => requireText(c, `class ${i}`));
  // a template without {} scores every class on the same text: equal scores that would look like an answer
  if (formatTemplate(o.template, 'class template', 'a') === formatTemplate(o.template, 'class template', 'b')) {
    throw new InputError(`classify: the template ${JSON.stringify(o.template)} has no {} where the class name goes`);
  }
  formatTemplate(o.leftTemplate, 'left template', 'a');
}

export async function classify(ctx: TaskContext, options: ClassifyOptions): Promise<ClassifyResult> {
  const { cfg } = ctx;
  checkClassify(options);
  const o = applyDefaults(DEFAULTS, options);
  const rightTexts = o.classes.map((c) => formatTemplate(o.template, 'class template', c));
  const leftTexts = o.classes.map((c) => formatTemplate(o.leftTemplate, 'left template', c));
  const [code] = await imageTokens(ctx, [o.image], 'image');
  const fit = new TextFit(o.truncate);
  const rows = o.classes.map((_, i) => concat(
    encodeSegment(ctx, leftTexts[i], cfg.l, '<LT_I2T>', fit, `leftTemplate (class ${i})`), code, encodeSegment(ctx, rightTexts[i], cfg.r, '<RT_I2T>', fit, `classes[${i}]`),
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
  return { label, class: o.classes[label], scores, ppl: Array.from(ppl), ...fit.report() };
}

export const classifyTask = defineTask<ClassifyOptions, ClassifyResult>({
  name: 'classify',
  summary: 'zero-shot image classification by perplexity',
  fields: {
    image: { type: 'image', description: 'the image to classify', cli: { positional: true } },
    classes: { type: 'strings', maxItems: 256, maxLength: 1000, description: 'class names', label: { ru: 'Классы', en: 'Classes' } },
    template: { type: 'string', maxLength: 4000, default: DEFAULTS.template, description: 'right text per class, {} is the class', label: { ru: 'Шаблон', en: 'Template' } },
    leftTemplate: { type: 'string', maxLength: 4000, default: DEFAULTS.leftTemplate, description: 'left text per class, {} is the class' },
    truncate: TRUNCATE_FIELD,
  },
  required: ['image', 'classes'],
  run: classify,
  check: checkClassify,
  output: {
    type: 'object', additionalProperties: false, required: ['label', 'class', 'scores', 'ppl'],
    properties: {
      label: { type: 'integer', description: 'index of the predicted class' }, class: { type: 'string' },
      scores: { type: 'array', items: { type: 'number' }, description: 'softmax of the L2-normalised perplexities: lower = more likely' },
      ppl: { type: 'array', items: { type: 'number' } },
      truncated: TRUNCATED_SCHEMA,
    },
  },
  format: (r, input) => [r.class, ...r.scores.map((s, i) => `  ${input.classes[i]}\t${s.toFixed(4)}`)],
  examples: ['rudolph classify фото.jpg --classes "кошка,собака,птица"', 'rudolph classify фото.jpg --classes "кошка,собака" --template "на картинке изображено: {}"'],
});
