/**
 * `rudolph eval caption`: how well a model predicts reference captions of images — each
 * caption's perplexity as right text after the image (the score `zs_clf` and captioning rank by;
 * template `{}` = the caption alone), batched over images (`runMany`). Lower is better; for
 * comparing fine-tunes on the same data.
 */
import type { Rudolph } from '../rudolph.js';
import type { CaptionItem } from './datasets.js';
import { ResultsLog } from './results-log.js';
import { type EvalControl, resultsOf, runItems } from './runner.js';

export interface CaptionEvalOptions extends EvalControl {
  /** right text per caption, {} = the caption */
  template?: string;
  limit?: number;
  resultsFile: string;
  restart?: boolean;
}

export interface CaptionLine { id: string; ppl: number[]; truncated?: number }

export interface CaptionEvalReport {
  task: 'caption';
  images: number;
  captions: number;
  /** mean over captions */
  meanPpl: number;
  medianPpl: number;
  minPpl: number;
  maxPpl: number;
  template: string;
  /** captions cut to fit the right-text segment */
  truncated: number;
  resumed: number;
}

export async function evalCaptions(r: Rudolph, data: readonly CaptionItem[], o: CaptionEvalOptions): Promise<CaptionEvalReport> {
  const template = o.template ?? '{}';
  const items = o.limit === undefined ? data : data.slice(0, o.limit);
  const info = r.info();
  const log = await ResultsLog.open<CaptionLine>(o.resultsFile, { task: 'caption', model: info.source, precision: info.runtime.precision, template }, { restart: o.restart });
  let resumed = 0;
  try {
    await runItems(items, log, async (batch: CaptionItem[]) => {
      const images = await Promise.all(batch.map((it) => it.read()));
      const results = await Promise.all(r.runMany('classify', images.map((image, k) => ({ image, classes: batch[k].captions, template, signal: o.signal }))));
      return results.map((res, k) => ({ id: batch[k].id, ppl: res.ppl, ...(res.truncated ? { truncated: res.truncated.length } : {}) }));
    }, { ...o, onProgress: (p) => { resumed = p.resumed; o.onProgress?.(p); } });
  } finally {
    await log.close();
  }
  const lines = resultsOf(items, log);
  const ppl = lines.flatMap((l) => l.ppl).sort((a, b) => a - b);
  const mid = ppl.length >> 1;
  return {
    task: 'caption', images: lines.length, captions: ppl.length,
    meanPpl: ppl.reduce((a, b) => a + b, 0) / ppl.length,
    medianPpl: ppl.length % 2 ? ppl[mid] : (ppl[mid - 1] + ppl[mid]) / 2,
    minPpl: ppl[0], maxPpl: ppl[ppl.length - 1],
    template, truncated: lines.reduce((s, l) => s + (l.truncated ?? 0), 0), resumed,
  };
}
