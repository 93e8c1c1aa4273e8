/**
 * `rudolph eval classify`: zero-shot classification of a labelled image set (image folder or
 * CIFAR-10 binary) with the official `zs_clf` scoring, batched over images (`runMany`), and
 * sklearn's report of the predictions (the official 350M notebook: CIFAR-10, first 1001 test
 * images, template `на картинке изображено: {}`, Russian names → accuracy 0.61, macro F1 0.57).
 */
import path from 'node:path';
import type { Rudolph } from '../rudolph.js';
import type { ClassificationData, LabelledImage } from './datasets.js';
import { type ClassificationReport, classificationReport, confusionMatrix } from './metrics.js';
import { ResultsLog } from './results-log.js';
import { type EvalControl, resultsOf, runItems } from './runner.js';

/** The template of the official CIFAR-10 evaluation. */
export const OFFICIAL_CLASSIFY_TEMPLATE = 'на картинке изображено: {}';

export interface ClassifyEvalOptions extends EvalControl {
  template?: string;
  leftTemplate?: string;
  /** the first N items only */
  limit?: number;
  /** the results log (resumed when it holds results of the same settings) */
  resultsFile: string;
  /** start over instead of resuming */
  restart?: boolean;
}

export interface ClassifyLine { id: string; label: number; predicted: number; ppl: number[] }

export interface ClassifyEvalReport extends ClassificationReport {
  task: 'classify';
  layout: ClassificationData['layout'];
  classes: string[];
  template: string;
  leftTemplate: string;
  /** items taken from an earlier run's results */
  resumed: number;
  /** class texts cut to fit the right-text segment */
  truncated: string[];
}

export async function evalClassify(r: Rudolph, data: ClassificationData, o: ClassifyEvalOptions): Promise<ClassifyEvalReport> {
  const template = o.template ?? OFFICIAL_CLASSIFY_TEMPLATE;
  const leftTemplate = o.leftTemplate ?? '';
  const items = o.limit === undefined ? data.items : data.items.slice(0, o.limit);
  const info = r.info();
  const log = await ResultsLog.open<ClassifyLine>(o.resultsFile, {
    task: 'classify', model: info.source, precision: info.runtime.precision, layout: data.layout, classes: data.classes, template, leftTemplate,
  }, { restart: o.restart });
  const truncated = new Set<string>();
  let resumed = 0;
  try {
    await runItems(items, log, async (batch: LabelledImage[]) => {
      const images = await Promise.all(batch.map((it) => it.read()));
      const results = await Promise.all(r.runMany('classify', images.map((image) => ({
        image, classes: data.classes, template, leftTemplate, signal: o.signal,
      }))));
      for (const res of results) for (const t of res.truncated ?? []) truncated.add(t.text);
      return results.map((res, k) => ({ id: batch[k].id, label: batch[k].label, predicted: res.label, ppl: res.ppl }));
    }, { ...o, onProgress: (p) => { resumed = p.resumed; o.onProgress?.(p); } });
  } finally {
    await log.close();
  }
  const lines = resultsOf(items, log);
  const report = classificationReport(confusionMatrix(lines.map((l) => l.label), lines.map((l) => l.predicted), data.classes.length));
  return { task: 'classify', layout: data.layout, classes: data.classes, template, leftTemplate, resumed, truncated: [...truncated], ...report };
}

/** Files an evaluation writes into its output folder. */
export function evalFiles(out: string) {
  return { results: path.join(out, 'results.jsonl'), report: path.join(out, 'report.json'), confusion: path.join(out, 'confusion.png') };
}
