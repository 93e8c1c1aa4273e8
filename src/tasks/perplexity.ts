/**
 * Perplexities of spans of full sequences, as the official reranking/classification code
 * computes them: per position CE = logsumexp(range) − logit(target), then `ceToPpl`.
 * The graph returns only the target logits and the range log-sum-exps, never the logits.
 */
import { InputError } from '../errors.js';
import type { RudolphConfig } from '../model/config.js';
import type { KVCache } from '../model/kv-cache.js';
import { chunks } from '../util/arrays.js';
import type { ProgressReporter } from '../util/progress.js';
import type { TaskContext } from './context.js';
import { ceToPpl } from './scoring.js';

/** Positions [from, to) each predict the token after them, from the text or image logits. */
export interface Span {
  from: number;
  to: number;
  kind: 'text' | 'image';
  /** text labels equal to 0 are ignored (official ignore_index=0) */
  ignoreZero: boolean;
}

/** Logit column of the label of a position, or -1 when ignored. */
function targetColumn(cfg: RudolphConfig, kind: Span['kind'], label: number, ignoreZero: boolean): number {
  if (kind === 'image') return cfg.textVocab + label;
  if (ignoreZero && label === 0) return -1;
  if (label >= cfg.textVocab - cfg.l) throw new InputError(`text label ${label} is outside the scored text range [0, ${cfg.textVocab - cfg.l})`);
  return label;
}

/** Where a batched run follows its rows: called after each model call with the rows it scored. */
export type RowsDone = (first: number, count: number) => void;

/**
 * Scores rows of ids (each of the same length T) over the spans; returns ppl[span][row].
 * With `prefix` (a cache holding the rows' first positions), every row continues a prefix row —
 * row 0 for all, or `prefixRows[r]` for row r — only the new tokens are run, and span positions
 * stay absolute. Progress is a reporter ticked by rows, or a RowsDone callback (batched runs).
 */
export async function spanPerplexities(
  ctx: TaskContext, rows: Int32Array[], spans: Span[], progress?: ProgressReporter | RowsDone, prefix?: KVCache, prefixRows?: readonly number[],
): Promise<Float64Array[]> {
  const { cfg } = ctx;
  const T = rows[0]?.length ?? 0;
  const start = prefix?.length ?? 0;
  const owner = new Map<number, number>();
  spans.forEach((s, si) => { for (let p = s.from; p < s.to; p++) owner.set(p, si); });
  const positions = [...owner.keys()].sort((a, b) => a - b);
  for (const p of positions) if (p < start || p + 1 >= T) throw new InputError(`score: position ${p} has no next token in a sequence of ${T}`);
  const m = positions.length;
  // ce[span] holds rows × (its positions), row-major, 0 where ignored
  const ce: number[][] = spans.map(() => []);

  let first = 0;
  for (const chunk of chunks(rows, ctx.batchSize)) {
    const B = chunk.length;
    const k = T - start;
    const ids = new Int32Array(B * k);
    const targets = new Int32Array(B * m);
    const ignored = new Uint8Array(B * m);
    chunk.forEach((row, b) => {
      ids.set(row.subarray(start), b * k);
      positions.forEach((p, j) => {
        const s = spans[owner.get(p)!];
        const col = targetColumn(cfg, s.kind, row[p + 1], s.ignoreZero);
        targets[b * m + j] = Math.max(col, 0);
        ignored[b * m + j] = col < 0 ? 1 : 0;
      });
    });
    const opts = { select: positions.map((p) => p - start), targets, logits: false };
    let res;
    if (prefix) {
      const rowsCache = prefix.select(prefixRows ? prefixRows.slice(first, first + B) : new Array(B).fill(0));
      try {
        res = await ctx.model.step(rowsCache, ids, opts);
      } finally {
        rowsCache.release();
      }
    } else {
      res = await ctx.model.forward(ids, B, opts);
    }
    for (let b = 0; b < B; b++) {
      positions.forEach((p, j) => {
        const si = owner.get(p)!;
        const idx = b * m + j;
        const lse = spans[si].kind === 'image' ? res.lseImage! : res.lseText!;
        ce[si].push(ignored[idx] ? 0 : Math.fround(lse[idx] - res.targetLogits![idx]));
      });
    }
    if (typeof progress === 'function') progress(first, B);
    else progress?.tick(B);
    first += B;
  }
  return ce.map((values) => ceToPpl(values, rows.length));
}
