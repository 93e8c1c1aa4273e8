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
import { type Span, spanPerplexities } from './perplexity.js';
import { type BatchItem, items, requireLive, runBatch, tickRows } from './batch.js';
import { applyDefaults, defineTask } from './spec.js';

/** The official defaults of `zs_clf`. */
const DEFAULTS = { template: '{}', leftTemplate: '' };

export interface ClassifyOptions extends RunControl {
  image: ImageInput;
  classes: string[];
  /** right text per class, `{}` = the class */
  template?: string;
  /** left text per class */
  leftTemplate?: string;
}

export interface ClassifyResult {
  label: number;
  class: string;
  /** softmax of L2-normalised perplexities (the official scores: lower = more likely) */
  scores: number[];
  ppl: number[];
}

/** One request's rows, ready to score. */
interface Prepared { rows: Int32Array[]; shared: boolean; classes: string[] }

function prepare(ctx: TaskContext, options: ClassifyOptions, code: Int32Array): Prepared {
  const { cfg } = ctx;
  const o = applyDefaults(DEFAULTS, options);
  const rightTexts = o.classes.map((c) => formatTemplate(o.template, 'class template', c));
  const leftTexts = o.classes.map((c) => formatTemplate(o.leftTemplate, 'left template', c));
  const rows = o.classes.map((_, i) => concat(
    encodeSegment(ctx, leftTexts[i], cfg.l, '<LT_I2T>'), code, encodeSegment(ctx, rightTexts[i], cfg.r, '<RT_I2T>'),
  ));
  // every class shares [left | image] when the left template ignores the class: run it once
  return { rows, shared: new Set(leftTexts).size === 1, classes: o.classes };
}

function checkClasses(options: ClassifyOptions): void {
  if (!Array.isArray(options.classes) || options.classes.length === 0) throw new InputError('classify: classes must be a non-empty list');
  options.classes.forEach((c, i) => requireText(c, `class ${i}`));
}

function result(ppl: ArrayLike<number>, classes: string[]): ClassifyResult {
  const norm = Math.sqrt(Array.from(ppl).reduce((s, v) => s + v * v, 0));
  const normed = Array.from(ppl, (v) => Math.fround(v / norm));
  const max = Math.max(...normed);
  const exps = normed.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const scores = exps.map((e) => e / sum);
  let label = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] < scores[label]) label = i;
  return { label, class: classes[label], scores, ppl: Array.from(ppl) };
}

const textSpan = (cfg: TaskContext['cfg']): Span => ({ from: cfg.totalLength - cfg.r, to: cfg.totalLength - 1, kind: 'text', ignoreZero: true });

export async function classify(ctx: TaskContext, options: ClassifyOptions): Promise<ClassifyResult> {
  const { cfg } = ctx;
  checkClasses(options);
  const [code] = await imageTokens(ctx, [options.image], 'image');
  const p = prepare(ctx, options, code);
  const progress = new ProgressReporter(options, 'classify', 'scoring', p.rows.length);
  let prefix;
  if (p.shared) {
    prefix = ctx.model.newCache(1, cfg.totalLength);
    await ctx.model.step(prefix, p.rows[0].subarray(0, cfg.l + cfg.imageLength), { logits: false });
  }
  const [ppl] = await spanPerplexities(ctx, p.rows, [textSpan(cfg)], progress, prefix);
  return result(ppl, p.classes);
}

/**
 * Several classify requests as one batch: their images encoded together, the shared
 * [left | image] prefixes run as one model call, and every class row of every request scored
 * in the same model calls. Each result equals `classify` alone.
 */
export function classifyMany(ctx: TaskContext, list: readonly ClassifyOptions[]): Promise<ClassifyResult>[] {
  const { cfg } = ctx;
  const all = items<ClassifyOptions, ClassifyResult>(list);
  return runBatch(all, async () => {
    for (const it of all) it.attempt(() => checkClasses(it.options));
    // images together; when one of them is bad, one by one so only its request fails
    const codes = new Map<BatchItem<ClassifyOptions, ClassifyResult>, Int32Array>();
    const live = all.filter((i) => i.live);
    try {
      const batch = await imageTokens(ctx, live.map((i) => i.options.image), 'image');
      live.forEach((it, k) => codes.set(it, batch[k]));
    } catch {
      for (const it of live) {
        try { codes.set(it, (await imageTokens(ctx, [it.options.image], 'image'))[0]); } catch (e) { it.fail(e); }
      }
    }
    const prepared = new Map<BatchItem<ClassifyOptions, ClassifyResult>, Prepared>();
    for (const it of all) {
      const p = it.attempt(() => prepare(ctx, it.options, codes.get(it)!));
      if (p) prepared.set(it, p);
      it.attempt(() => { it.progress = new ProgressReporter(it.options, 'classify', 'scoring', p!.rows.length); });
    }
    requireLive(all);
    const ppl = new Map<BatchItem<ClassifyOptions, ClassifyResult>, number[]>();
    for (const shared of [true, false]) {
      const group = all.filter((i) => i.live && prepared.get(i)!.shared === shared);
      if (!group.length) continue;
      const rows: Int32Array[] = [];
      const owners: BatchItem<ClassifyOptions, ClassifyResult>[] = [];
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
      const [values] = await spanPerplexities(ctx, rows, [textSpan(cfg)], onRows, prefix, shared ? prefixRows : undefined);
      owners.forEach((it, r) => { (ppl.get(it) ?? ppl.set(it, []).get(it)!).push(values[r]); });
    }
    for (const it of all) if (it.live) it.attempt(() => it.resolve(result(ppl.get(it)!, prepared.get(it)!.classes)));
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
  },
  required: ['image', 'classes'],
  run: classify,
  runMany: classifyMany,
  output: {
    type: 'object', additionalProperties: false, required: ['label', 'class', 'scores', 'ppl'],
    properties: {
      label: { type: 'integer', description: 'index of the predicted class' }, class: { type: 'string' },
      scores: { type: 'array', items: { type: 'number' }, description: 'softmax of the L2-normalised perplexities: lower = more likely' },
      ppl: { type: 'array', items: { type: 'number' } },
    },
  },
  format: (r, input) => [r.class, ...r.scores.map((s, i) => `  ${input.classes[i]}\t${s.toFixed(4)}`)],
  examples: ['rudolph classify фото.jpg --classes "кошка,собака,птица"', 'rudolph classify фото.jpg --classes "кошка,собака" --template "на картинке изображено: {}"'],
});
