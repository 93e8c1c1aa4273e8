/**
 * The token layout of SPEC §3: [left text: l][image: n²][right text: r], and the id
 * transformations the model applies before embedding.
 */
import { InputError } from '../errors.js';
import type { RudolphConfig } from './config.js';

export type Segment = 'left' | 'image' | 'right';

export function segmentOf(cfg: RudolphConfig, position: number): Segment {
  if (position < cfg.l) return 'left';
  if (position < cfg.l + cfg.imageLength) return 'image';
  return 'right';
}

/** The positional pad id that replaces a 0 at left position p (SPEC §3). */
export function leftPadId(cfg: RudolphConfig, p: number): number {
  return cfg.textVocab - cfg.l + p;
}

/**
 * Validates ids at absolute positions [start, start+k) of every row and returns them as
 * int64 with left-text zeros replaced by positional pad ids. Throws InputError naming the
 * offending row/position/id.
 */
export function prepareInputIds(cfg: RudolphConfig, ids: ArrayLike<number>, batch: number, start: number, k: number): BigInt64Array {
  if (ids.length !== batch * k) throw new InputError(`input ids: expected ${batch}×${k} = ${batch * k} values, got ${ids.length}`);
  if (start + k > cfg.totalLength) {
    throw new InputError(`input ids: positions ${start}..${start + k - 1} exceed the layout length ${cfg.totalLength} (l=${cfg.l} + n²=${cfg.imageLength} + r=${cfg.r})`);
  }
  const out = new BigInt64Array(batch * k);
  for (let i = 0; i < k; i++) {
    const p = start + i;
    const seg = segmentOf(cfg, p);
    const limit = seg === 'image' ? cfg.imageVocabTotal : cfg.textVocab;
    for (let b = 0; b < batch; b++) {
      let id = ids[b * k + i];
      if (!Number.isInteger(id) || id < 0 || id >= limit) {
        throw new InputError(`input ids: token ${id} at row ${b}, position ${p} (${seg} ${seg === 'image' ? 'token' : 'text'}) is outside the ${seg === 'image' ? 'image' : 'text'} vocabulary [0, ${limit})`);
      }
      if (seg === 'left' && id === 0) id = leftPadId(cfg, p);
      out[b * k + i] = BigInt(id);
    }
  }
  return out;
}
