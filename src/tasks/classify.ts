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
import { BatchEmpty, type BatchItem, items, requireLive, runBatch, tickRows } from './batch.js';
import { type Span, spanPerplexities } from './perplexity.js';
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

/** One request's rows, ready to score. */
interface Prepared { rows: Int32Array[]; shared: boolean; classes: string[]; fit: TextFit }

function prepare(ctx: TaskContext, options: ClassifyOptions, code: Int32Array): Prepared {
  const { cfg } = ctx;
  const o = applyDefaults(DEFAULTS, options);
  const rightTexts = o.classes.map((c) => formatTemplate(o.template, 'class template', c));
  const leftTexts = o.classes.map((c) => formatTemplate(o.leftTemplate, 'left template', c));
  const fit = new TextFit(o.truncate);
  const rows = o.classes.map((_, i) => concat(
    encodeSegment(ctx, leftTexts[i], cfg.l, '<LT_I2T>', fit, `leftTemplate (class ${i})`), code, encodeSegment(ctx, rightTexts[i], cfg.r, '<RT_I2T>', fit, `classes[${i}]`),
  ));
  // every class shares [left | image] when the left template ignores the class: run it once
  return { rows, shared: new Set(leftTexts).size === 1, classes: o.classes, fit };
}

function result(ppl: ArrayLike<number>, p: Prepared): ClassifyResult {
  const norm = Math.sqrt(Array.from(ppl).reduce((s, v) => s + v * v, 0));
  const normed = Array.from(ppl, (v) => Math.fround(v / norm));
  const max = Math.max(...normed);
  const exps = normed.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const scores = exps.map((e) => e / sum);
  let label = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] < scores[label]) label = i;
  return { label, class: p.classes[label], scores, ppl: Array.from(ppl), ...p.fit.report() };
}

const textSpan = (cfg: TaskContext['cfg']): Span => ({ from: cfg.totalLength - cfg.r, to: cfg.totalLength - 1, kind: 'text', ignoreZero: true });

export async function classify(ctx: TaskContext, options: ClassifyOptions): Promise<ClassifyResult> {
  const { cfg } = ctx;
  checkClassify(options);
  const [code] = await imageTokens(ctx, [options.image], 'image');
  const p = prepare(ctx, options, code);
  const progress = new ProgressReporter(options, 'classify', 'scoring', p.rows.length);
  const prefix = p.shared ? ctx.model.newCache(1, cfg.totalLength) : undefined;
  try {
    if (prefix) await ctx.model.step(prefix, p.rows[0].subarray(0, cfg.l + cfg.imageLength), { logits: false });
    const [ppl] = await spanPerplexities(ctx, p.rows, [textSpan(cfg)], progress, prefix);
    return result(ppl, p);
  } finally {
    prefix?.release();
  }
}

type Item = BatchItem<ClassifyOptions, ClassifyResult>;

/**
 * Several classify requests as one batch: their images encoded together, the shared
 * [left | image] prefixes run as one model call, and every class row of every request scored
 * in the same model calls. Each result equals `classify` alone.
 */
export function classifyMany(ctx: TaskContext, list: readonly ClassifyOptions[]): Promise<ClassifyResult>[] {
  const { cfg } = ctx;
  const all = items<ClassifyOptions, ClassifyResult>(list);
  return runBatch(all, async () => {
    for (const it of all) it.attempt(() => checkClassify(it.options));
    // images together; when one of them is bad, one by one so only its request fails
    const codes = new Map<Item, Int32Array>();
    const live = all.filter((i) => i.live);
    try {
      const batch = await imageTokens(ctx, live.map((i) => i.options.image), 'image');
      live.forEach((it, k) => codes.set(it, batch[k]));
    } catch {
      for (const it of live) {
        try { codes.set(it, (await imageTokens(ctx, [it.options.image], 'image'))[0]); } catch (e) { it.fail(e); }
      }
    }
    const prepared = new Map<Item, Prepared>();
    for (const it of all) {
      const p = it.attempt(() => prepare(ctx, it.options, codes.get(it)!));
      if (!p) continue;
      prepared.set(it, p);
      it.attempt(() => { it.progress = new ProgressReporter(it.options, 'classify', 'scoring', p.rows.length); });
    }
    requireLive(all);
    const ppl = new Map<Item, number[]>();
    for (const shared of [true, false]) {
      const group = all.filter((i) => i.live && prepared.get(i)!.shared === shared);
      if (!group.length) continue;
      const rows: Int32Array[] = [];
      const owners: Item[] = [];
      const prefixRows: number[] = [];
      group.forEach((it, g) => {
        for (const row of prepared.get(it)!.rows) { rows.push(row); owners.push(it); prefixRows.push(g); }
      });
      let prefix;
      if (shared) {
        const k = cfg.l + cfg.imageLength;
        prefix = ctx.model.newCache(group.length, cfg.totalLength);
        const ids = new Int32Array(group.length * k);
        group.forEach((it, g) => ids.set(prepared.get(it)!.rows[0].subarray(0, k), g * k));
        await ctx.model.step(prefix, ids, { logits: false });
      }
      const onRows = (first: number, count: number) => {
        tickRows(owners, first, count, (it, n) => it.tick(n));
        requireLive(group);
      };
      let values: Float64Array;
      try {
        [values] = await spanPerplexities(ctx, rows, [textSpan(cfg)], onRows, prefix, shared ? prefixRows : undefined);
      } catch (e) {
        // every request of this group was cancelled: the other group goes on
        if (e instanceof BatchEmpty) continue;
        throw e;
      } finally {
        prefix?.release();
      }
      owners.forEach((it, r) => { (ppl.get(it) ?? ppl.set(it, []).get(it)!).push(values[r]); });
    }
    for (const it of all) if (it.live) it.attempt(() => it.resolve(result(ppl.get(it)!, prepared.get(it)!)));
  });
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
  runMany: classifyMany,
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
