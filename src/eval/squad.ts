/**
 * Answer scores as the official `jupyters/f1_score.py` of ru-dolph computes them (the sberQuAD
 * F1 0.432 of the 2.7B fine-tuning notebook): `normalize_answer` lower-cases (Python
 * `str.lower`), puts a space after each of `. , ! ? ;`, removes ASCII punctuation (Python's
 * `string.punctuation`; «», — and other non-ASCII marks stay) and collapses whitespace (Python's
 * `str.split`). Unlike SQuAD's script it does not drop the articles a/an/the. F1 is over the
 * normalised whitespace tokens (a bag: `Counter` intersection); when either side has no tokens it
 * is 1 if both have none, else 0. Exact match (not in f1_score.py) compares the normalised
 * strings, as SQuAD's `compute_exact` does.
 */
import { splitPythonWhitespace } from '../tokenizer/text-encoding.js';

/** Python's `string.punctuation`. */
const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

export function normalizeAnswer(s: string): string {
  const spaced = s.toLowerCase().replace(/([.,!?;])/g, '$1 ');
  const unpunctuated = Array.from(spaced).filter((ch) => !PUNCTUATION.has(ch)).join('');
  return splitPythonWhitespace(unpunctuated).join(' ');
}

/** `get_tokens`: the normalised answer's tokens ([] for an empty answer). */
export function answerTokens(s: string): string[] {
  return s ? splitPythonWhitespace(normalizeAnswer(s)) : [];
}

/** The official `compute_f1` of one (gold, prediction) pair. */
export function answerF1(gold: string, prediction: string): number {
  const g = answerTokens(gold);
  const p = answerTokens(prediction);
  if (g.length === 0 || p.length === 0) return g.length === p.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) { same++; counts.set(t, c - 1); }
  }
  if (same === 0) return 0;
  const precision = same / p.length;
  const recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

export function exactMatch(gold: string, prediction: string): number {
  return normalizeAnswer(gold) === normalizeAnswer(prediction) ? 1 : 0;
}

/**
 * Scores of a prediction against an item's gold answers: against the first (what the official
 * notebook compared, `answers['text'][0]`), or the best over all of them (`allAnswers`, SQuAD's
 * convention).
 */
export function scoreAnswer(golds: readonly string[], prediction: string, allAnswers = false): { f1: number; em: number } {
  const considered = allAnswers ? golds : golds.slice(0, 1);
  return {
    f1: Math.max(...considered.map((g) => answerF1(g, prediction))),
    em: Math.max(...considered.map((g) => exactMatch(g, prediction))),
  };
}
