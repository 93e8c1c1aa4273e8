/** Generated token rows → distinct texts with counts, as the official API collects them. */
import type { RudolphConfig } from '../model/config.js';
import { BOS_ID, EOS_ID, PAD_ID, pythonStrip, type TextTokenizer } from '../tokenizer/text-encoding.js';

const UNK_ID = 1;

/** Ids the official `decode_text` drops: eos, bos, unk, pad and every special token. */
export function ignoreIds(cfg: RudolphConfig): number[] {
  return [EOS_ID, BOS_ID, UNK_ID, PAD_ID, ...Object.values(cfg.specialTokens).filter((id) => id >= 0)];
}

/** Cut at the first eos, decode without ignored ids, strip (Python `strip()`, as the official code). */
export function decodeUntilEos(tokenizer: TextTokenizer, cfg: RudolphConfig, tokens: ArrayLike<number>): string {
  let end = tokens.length;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === EOS_ID) { end = i; break; }
  return pythonStrip(tokenizer.decode(Array.prototype.slice.call(tokens, 0, end) as number[], ignoreIds(cfg)));
}

/** Non-empty texts with their counts, in first-seen order (Python Counter). */
export function countTexts(texts: string[]): { text: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const t of texts) if (t) counts.set(t, (counts.get(t) ?? 0) + 1);
  return [...counts].map(([text, count]) => ({ text, count }));
}

/** True once every row holds an eos among its first `filled` tokens (nothing after it is kept). */
export function allEnded(rows: Int32Array[], filled: number): boolean {
  return rows.every((row) => row.subarray(0, filled).includes(EOS_ID));
}
