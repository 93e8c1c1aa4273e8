/**
 * Classification metrics as scikit-learn's `classification_report` computes them (what the
 * official notebook printed): a confusion matrix (rows = true class, columns = predicted),
 * per-class precision / recall / F1 / support, accuracy, macro and support-weighted averages.
 * A ratio with a zero denominator is 0 (sklearn's `zero_division` default).
 */
import { InputError } from '../errors.js';

export interface ClassMetrics { precision: number; recall: number; f1: number; support: number }

export interface ClassificationReport {
  /** items scored */
  count: number;
  accuracy: number;
  /** unweighted mean over classes (classes without true or predicted items count as 0) */
  macro: Omit<ClassMetrics, 'support'>;
  /** mean weighted by support */
  weighted: Omit<ClassMetrics, 'support'>;
  perClass: ClassMetrics[];
  /** matrix[true][predicted] = items */
  confusion: number[][];
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

/** matrix[t][p]: how many items of true class t were predicted as p. */
export function confusionMatrix(truth: readonly number[], predicted: readonly number[], classes: number): number[][] {
  if (truth.length !== predicted.length) throw new InputError(`confusion matrix: ${truth.length} true labels, ${predicted.length} predictions`);
  if (!Number.isInteger(classes) || classes < 1) throw new InputError(`confusion matrix: classes must be a positive integer, got ${classes}`);
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  truth.forEach((t, i) => {
    const p = predicted[i];
    for (const [what, v] of [['true label', t], ['prediction', p]] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= classes) throw new InputError(`confusion matrix: item ${i} has ${what} ${v}, outside [0, ${classes})`);
    }
    m[t][p]++;
  });
  return m;
}

/** The report of a confusion matrix. */
export function classificationReport(confusion: number[][]): ClassificationReport {
  const k = confusion.length;
  const count = confusion.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  const perClass: ClassMetrics[] = confusion.map((row, c) => {
    const tp = row[c];
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((s, r) => s + r[c], 0);
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    return { precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });
  const correct = confusion.reduce((s, row, c) => s + row[c], 0);
  const mean = (key: 'precision' | 'recall' | 'f1', weighted: boolean) => (weighted
    ? ratio(perClass.reduce((s, m) => s + m[key] * m.support, 0), count)
    : perClass.reduce((s, m) => s + m[key], 0) / k);
  return {
    count,
    accuracy: ratio(correct, count),
    macro: { precision: mean('precision', false), recall: mean('recall', false), f1: mean('f1', false) },
    weighted: { precision: mean('precision', true), recall: mean('recall', true), f1: mean('f1', true) },
    perClass,
    confusion,
  };
}

/** The report as text, laid out like sklearn's `classification_report` plus the confusion matrix. */
export function formatReport(r: ClassificationReport, names: readonly string[]): string {
  const w = Math.max(12, ...names.map((n) => n.length));
  const num = (x: number) => x.toFixed(2).padStart(10);
  const lines = [`${''.padStart(w)} ${'precision'.padStart(10)} ${'recall'.padStart(10)} ${'f1-score'.padStart(10)} ${'support'.padStart(10)}`, ''];
  r.perClass.forEach((m, i) => lines.push(`${names[i].padStart(w)} ${num(m.precision)} ${num(m.recall)} ${num(m.f1)} ${String(m.support).padStart(10)}`));
  lines.push('', `${'accuracy'.padStart(w)} ${''.padStart(10)} ${''.padStart(10)} ${num(r.accuracy)} ${String(r.count).padStart(10)}`);
  lines.push(`${'macro avg'.padStart(w)} ${num(r.macro.precision)} ${num(r.macro.recall)} ${num(r.macro.f1)} ${String(r.count).padStart(10)}`);
  lines.push(`${'weighted avg'.padStart(w)} ${num(r.weighted.precision)} ${num(r.weighted.recall)} ${num(r.weighted.f1)} ${String(r.count).padStart(10)}`);
  lines.push('', 'confusion matrix (rows: true class, columns: predicted, in the order above):');
  const cw = Math.max(4, ...r.confusion.flat().map((v) => String(v).length + 1));
  lines.push(`${''.padStart(w)} ${r.confusion.map((_, j) => String(j + 1).padStart(cw)).join('')}`);
  r.confusion.forEach((row, i) => lines.push(`${`${i + 1} ${names[i]}`.padStart(w)} ${row.map((v) => String(v).padStart(cw)).join('')}`));
  return lines.join('\n');
}
