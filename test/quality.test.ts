/**
 * Quality of the quantised precisions on the yardstick model (test/data/yardstick: a small RUDOLPH
 * trained on Russian text, see its PROVENANCE.md), on a handful of held-out sequences. The bounds
 * are the targets (perplexity within 1% of fp32 for int8, 5% for q4) and the measured
 * figures with some room (bench/results/quality.json has the full held-out set).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { evaluateVariants, loadYardstick, PRECISION_VARIANTS, type Yardstick } from '../bench/yardstick/evaluate.js';

describe('precision quality on the yardstick model', () => {
  let y: Yardstick;
  let q: Awaited<ReturnType<typeof evaluateVariants>>;
  before(async () => {
    y = await loadYardstick(24);
    q = await evaluateVariants(y, PRECISION_VARIANTS);
  });

  it('the yardstick has learned the text (fp32 held-out perplexity far below the 512-token vocabulary)', () => {
    assert.ok(q.fp32.tokens > 1000, `${q.fp32.tokens} scored tokens`);
    assert.ok(q.fp32.perplexity < PPL_FP32_MAX, `fp32 perplexity ${q.fp32.perplexity}`);
    assert.equal(q.fp32.kl, 0);
  });

  it('perplexity: fp16 within 0.5%, int8 within 1%, q4 within 5% of fp32', () => {
    const drift = (p: string) => Math.abs(q[p].perplexity / q.fp32.perplexity - 1);
    assert.ok(drift('fp16') < 0.005, `fp16 drift ${drift('fp16')}`);
    assert.ok(drift('int8') < 0.01, `int8 drift ${drift('int8')}`);
    assert.ok(drift('q4') < 0.05, `q4 drift ${drift('q4')}`);
  });

  it('next-token KL and logit error stay within the measured bounds, ordered fp16 < int8 < q4', () => {
    for (const [p, bound] of Object.entries(BOUNDS)) {
      assert.ok(q[p].kl < bound.kl, `${p} KL ${q[p].kl} ≥ ${bound.kl}`);
      assert.ok(q[p].max_abs_logit_error < bound.maxErr, `${p} max |Δlogit| ${q[p].max_abs_logit_error} ≥ ${bound.maxErr}`);
      assert.ok(q[p].kl > 0, `${p} gives exactly fp32's distributions: not quantised?`);
    }
    assert.ok(q.fp16.kl < q.int8.kl && q.int8.kl < q.q4.kl, `KL fp16 ${q.fp16.kl}, int8 ${q.int8.kl}, q4 ${q.q4.kl}`);
  });
});

/** Measured on 24 held-out sequences (1141 tokens): fp32 36.1; the bounds leave about 3× room (CPU kernels differ). */
const PPL_FP32_MAX = 60;
const BOUNDS: Record<string, { kl: number; maxErr: number }> = {
  fp16: { kl: 2e-6, maxErr: 0.05 }, // measured 5.0e-7, 0.0046
  int8: { kl: 1.5e-4, maxErr: 0.6 }, // measured 4.0e-5, 0.16
  q4: { kl: 2.5e-3, maxErr: 3 }, // measured 7.7e-4, 1.04
};
