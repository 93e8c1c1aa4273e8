/**
 * Training core: AdamW against a hand-computed step, clipping, schedules, freezing patterns,
 * and the Trainer on a tiny random model (finite differences of the training graph's loss,
 * micro-batch accumulation, freezing, dropout, optimizer state round trip, bad input).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RudolphError } from '../src/errors.js';
import { makeConfig, type RudolphConfig } from '../src/model/config.js';
import { randomWeights, type RudolphWeights } from '../src/model/weights.js';
import { GraphBuilder } from '../src/onnx/graph.js';
import { f32, Session, u32 } from '../src/onnx/session.js';
import { PRESETS } from '../src/presets.js';
import { AdamW, clipFactor } from '../src/train/adamw.js';
import { globToRegExp, lastLayersPatterns, matchParameters, trainableParameters } from '../src/train/freeze.js';
import { lrSchedule } from '../src/train/schedule.js';
import { microBatchSeed, mix32, seededDropout } from '../src/train/dropout.js';
import { layerPlan, Trainer } from '../src/train/trainer.js';

describe('AdamW', () => {
  test('two steps match the torch.optim.AdamW formulas computed by hand', () => {
    const lr = 0.01, b1 = 0.9, b2 = 0.99, eps = 1e-6, wd = 0.1;
    const opt = new AdamW({ lr, betas: [b1, b2], eps, weightDecay: wd });
    const p = Float32Array.of(0.5, -1, 2, 0);
    const grads = [Float32Array.of(0.1, -0.2, 0, 3), Float32Array.of(-0.3, 0.05, 1e-3, 3)];
    const ref = Array.from(p), m = [0, 0, 0, 0], v = [0, 0, 0, 0];
    for (let t = 1; t <= 2; t++) {
      opt.apply(new Map([['w', p]]), new Map([['w', grads[t - 1]]]));
      for (let i = 0; i < 4; i++) {
        const g = grads[t - 1][i];
        ref[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        const mHat = m[i] / (1 - b1 ** t), vHat = v[i] / (1 - b2 ** t);
        ref[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
      }
      for (let i = 0; i < 4; i++) assert.ok(Math.abs(p[i] - ref[i]) < 1e-6, `step ${t} element ${i}: ${p[i]} vs ${ref[i]}`);
    }
    assert.equal(opt.step, 2);
    const { m: mm, v: vv } = opt.state().moments.get('w')!;
    for (let i = 0; i < 4; i++) { assert.ok(Math.abs(mm[i] - m[i]) <= 1e-6 * Math.abs(m[i]) + 1e-12); assert.ok(Math.abs(vv[i] - v[i]) <= 1e-6 * Math.abs(v[i]) + 1e-15); }
  });

  test('gradScale scales gradients; a zero gradient only decays the weight', () => {
    const a = new AdamW({ lr: 0.1, weightDecay: 0.5 });
    const b = new AdamW({ lr: 0.1, weightDecay: 0.5 });
    const pa = Float32Array.of(1, 2), pb = Float32Array.of(1, 2);
    a.apply(new Map([['w', pa]]), new Map([['w', Float32Array.of(0.4, 0)]]), { gradScale: 0.5 });
    b.apply(new Map([['w', pb]]), new Map([['w', Float32Array.of(0.2, 0)]]));
    assert.deepEqual(Array.from(pa), Array.from(pb));
    assert.ok(Math.abs(pa[1] - 2 * (1 - 0.05)) < 1e-6);
  });

  test('bad hyper-parameters and mismatched gradients or state are typed errors', () => {
    assert.throws(() => new AdamW({ lr: -1 }), RudolphError);
    assert.throws(() => new AdamW({ lr: 1e-3, betas: [1, 0.9] }), RudolphError);
    const opt = new AdamW({ lr: 1e-3 });
    assert.throws(() => opt.apply(new Map([['w', new Float32Array(2)]]), new Map([['w', new Float32Array(3)]])), /3 values/);
    assert.throws(() => opt.apply(new Map(), new Map([['x', new Float32Array(1)]])), /unknown parameter x/);
    assert.throws(() => opt.loadState({ step: 1, moments: new Map([['w', { m: new Float32Array(1), v: new Float32Array(1) }]]) }, new Map([['w', new Float32Array(2)]])), /moments of w/);
  });

  test('clipFactor: global norm over all tensors, torch clip_grad_norm_ factor', () => {
    const grads = [Float32Array.of(3), Float32Array.of(0, 4)];
    assert.deepEqual(clipFactor(grads, undefined), { norm: 5, factor: 1 });
    const clipped = clipFactor(grads, 1);
    assert.equal(clipped.norm, 5);
    assert.ok(Math.abs(clipped.factor - 1 / (5 + 1e-6)) < 1e-12);
    assert.equal(clipFactor(grads, 10).factor, 1);
    assert.equal(clipFactor(grads, 1, 0.5).norm, 2.5);
    assert.throws(() => clipFactor(grads, 0), RudolphError);
  });
});

describe('schedules', () => {
  test('warmup then constant / linear / cosine (Hugging Face semantics)', () => {
    const c = lrSchedule({ kind: 'constant', warmupSteps: 4 });
    assert.deepEqual([0, 1, 2, 4, 100].map(c), [0, 0.25, 0.5, 1, 1]);
    const l = lrSchedule({ kind: 'linear', warmupSteps: 2, totalSteps: 12 });
    assert.deepEqual([0, 1, 2, 7, 12, 20].map(l), [0, 0.5, 1, 0.5, 0, 0]);
    const cos = lrSchedule({ kind: 'cosine', warmupSteps: 0, totalSteps: 10, minRatio: 0.1 });
    assert.ok(Math.abs(cos(0) - 1) < 1e-12);
    assert.ok(Math.abs(cos(5) - (0.1 + 0.9 * 0.5)) < 1e-12);
    assert.ok(Math.abs(cos(10) - 0.1) < 1e-12);
    assert.ok(Math.abs(cos(50) - 0.1) < 1e-12);
  });
  test('invalid schedules are typed errors', () => {
    assert.throws(() => lrSchedule({ kind: 'linear' }), /totalSteps/);
    assert.throws(() => lrSchedule({ kind: 'cosine', warmupSteps: 10, totalSteps: 5 }), /totalSteps/);
    assert.throws(() => lrSchedule({ kind: 'constant', warmupSteps: -1 }), /warmupSteps/);
  });
});

const tinyCfg = (): RudolphConfig => makeConfig({
  ...PRESETS['350M'].params, num_layers: 2, hidden_size: 16, num_attention_heads: 2, l_text_seq_length: 4, image_tokens_per_dim: 2,
  r_text_seq_length: 4, vocab_size: 40, image_vocab_size: 20, text_special_tokens: 0, image_special_tokens: 0, kernel_size: 3, last_kernel_size: 3,
});

/** Random weights with non-trivial LayerNorm parameters (so every gradient is well away from zero). */
function tinyWeights(cfg: RudolphConfig, seed = 3): RudolphWeights {
  const w = randomWeights(cfg, seed);
  for (const [k, v] of w) if (/layernorm|to_logits\.0/.test(k)) for (let i = 0; i < v.length; i++) v[i] += 0.3 * Math.sin(i * 7 + k.length);
  return w;
}
const copy = (w: RudolphWeights): RudolphWeights => new Map([...w].map(([k, v]) => [k, v.slice()]));

/** ids [batch, T] for the full layout, no zeros in the right text (so per-sample means are comparable). */
function tinyIds(cfg: RudolphConfig, batch: number, seed: number): number[] {
  const ids: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < cfg.totalLength; p++) {
      const image = p >= cfg.l && p < cfg.l + cfg.imageLength;
      ids.push(image ? (p * 7 + seed * 3 + b) % cfg.imageVocab : 1 + ((p * 5 + seed + b * 11) % 30));
    }
  }
  return ids;
}

describe('freezing patterns', () => {
  test('globs: * ? [0-3] [!0] {a,b}', () => {
    assert.ok(globToRegExp('transformer.layers.2[0-3].*').test('transformer.layers.21.mlp.dense_h_to_4h.weight'));
    assert.ok(!globToRegExp('transformer.layers.2[0-3].*').test('transformer.layers.2.mlp.dense_h_to_4h.weight'));
    assert.ok(globToRegExp('*embeddings*').test('image_row_embeddings.weight'));
    assert.ok(globToRegExp('to_logits.?.bias').test('to_logits.1.bias'));
    assert.ok(!globToRegExp('to_logits.?.bias').test('to_logitsX1.bias'), 'dots are literal');
    assert.ok(globToRegExp('layer[!0].x').test('layer1.x') && !globToRegExp('layer[!0].x').test('layer0.x'));
    assert.ok(globToRegExp('{text,image}_embeddings.weight').test('image_embeddings.weight'));
    assert.throws(() => globToRegExp('a[0-3'), /unclosed/);
  });
  test('trainable sets: freeze, trainOnly, last k layers; a pattern matching nothing is an error', () => {
    const cfg = tinyCfg();
    const all = trainableParameters(cfg);
    const noEmb = trainableParameters(cfg, { freeze: ['*embeddings*'] });
    assert.equal(all.length - noEmb.length, 6);
    assert.ok(noEmb.every((n) => !n.includes('embeddings')));
    const last = trainableParameters(cfg, { trainOnly: lastLayersPatterns(cfg, 1) });
    assert.ok(last.every((n) => n.startsWith('transformer.layers.1.') || n.startsWith('transformer.final_layernorm') || n.startsWith('to_logits')));
    assert.equal(last.length, 16 + 2 + 4);
    assert.throws(() => matchParameters(all, ['transformer.layer.*']), /matches no parameter/);
    assert.throws(() => lastLayersPatterns(cfg, 3), /k must be/);
    assert.throws(() => trainableParameters(cfg, { freeze: ['*'] }), /no parameter to train/);
  });
});

describe('training graphs', () => {
  test('gradients match finite differences of the loss (embeddings scaled by 0.1 as the official model)', async () => {
    const cfg = tinyCfg();
    const weights = tinyWeights(cfg);
    const ids = tinyIds(cfg, 2, 1);
    const trainer = await Trainer.create(cfg, weights, { lr: 0, dropout: false, threads: 1 });
    await trainer.accumulate({ ids, batch: 2 });
    const grads = trainer.pendingGradients()!;
    const names = ['text_embeddings.weight', 'transformer.layers.0.attention.query_key_value.weight', 'transformer.layers.1.mlp.dense_h_to_4h.weight', 'to_logits.1.weight'];
    for (const name of names) {
      const w = weights.get(name)!;
      const analytic = grads.get(name)!;
      let scale = 1e-6;
      for (const v of analytic) scale = Math.max(scale, Math.abs(v));
      const factor = name.includes('embeddings') ? 0.1 : 1; // the official α (model.py: x·α + x.detach()·(1-α))
      for (const j of [1, 5, 17, 40, 100, 201]) {
        const x0 = w[j];
        w[j] = x0 + 1e-2;
        const up = (await trainer.evaluate({ ids, batch: 2 })).loss;
        w[j] = x0 - 1e-2;
        const down = (await trainer.evaluate({ ids, batch: 2 })).loss;
        w[j] = x0;
        const fd = ((up - down) / 2e-2) * factor;
        assert.ok(Math.abs(fd - analytic[j]) <= 3e-2 * scale, `${name}[${j}]: ${analytic[j]} vs finite difference ${fd}`);
      }
    }
    await trainer.release();
  });

  test('every layer plan gives the same loss and gradients: whole model in one graph, layers recomputed whole or from their linear outputs, mixes', async () => {
    const cfg = tinyCfg();
    const ids = tinyIds(cfg, 2, 6);
    const common = { lr: 0, dropout: true, seed: 3, threads: 1 } as const;
    const T = cfg.totalLength;
    const fused = 4 * 2 * (3 * cfg.heads * T * T + 25 * T * cfg.hidden), saved = 4 * 2 * T * cfg.hidden * 10, input = 4 * 2 * T * cfg.hidden;
    assert.deepEqual(layerPlan(cfg, 2, T, Infinity), { fused: 2, saved: 0 });
    assert.deepEqual(layerPlan(cfg, 2, T, 0), { fused: 0, saved: 0 });
    assert.deepEqual(layerPlan(cfg, 2, T, saved + input), { fused: 0, saved: 1 });
    assert.deepEqual(layerPlan(cfg, 2, T, 2 * saved), { fused: 0, saved: 2 });
    const oneFused = fused + saved;
    assert.deepEqual(layerPlan(cfg, 2, T, oneFused), { fused: 1, saved: 1 });
    const ref = await Trainer.create(cfg, tinyWeights(cfg), common);
    const r0 = await ref.accumulate({ ids, batch: 2 });
    for (const opts of [{ activationMemory: 0 }, { activationMemory: saved + input }, { activationMemory: 2 * saved }, { activationMemory: oneFused }]) {
      const t = await Trainer.create(cfg, tinyWeights(cfg), { ...common, ...opts });
      const r = await t.accumulate({ ids, batch: 2 });
      assert.ok(Math.abs(r.loss - r0.loss) <= 1e-6 * r0.loss, `${JSON.stringify(opts)}: loss ${r.loss} vs ${r0.loss}`);
      for (const [name, g] of ref.pendingGradients()!) {
        const h = t.pendingGradients()!.get(name)!;
        let scale = 1e-6, diff = 0;
        for (let i = 0; i < g.length; i++) { scale = Math.max(scale, Math.abs(g[i])); diff = Math.max(diff, Math.abs(g[i] - h[i])); }
        assert.ok(diff <= 1e-4 * scale, `${JSON.stringify(opts)} ${name}: differs by ${diff} (max ${scale})`);
      }
      assert.ok(Math.abs((await t.evaluate({ ids, batch: 2 })).loss - (await ref.evaluate({ ids, batch: 2 })).loss) < 1e-5);
      await t.release();
    }
    await ref.release();
  });

  test('seeded dropout: the masks are a function of (seed, layer, site, element); p of them drop', async () => {
    const g = new GraphBuilder('dropout-test');
    const x = g.input('x', 'float32', [4, 25000]);
    const seed = g.input('seed', 'uint32', []);
    const layer = g.input('layer', 'uint32', []);
    const hook = seededDropout({ seed, layer });
    g.output(hook(g, x, 0.1, 'transformer.layers.0.attention.probs'), 'a', 'float32', [4, 25000]);
    g.output(hook(g, x, 0.1, 'transformer.layers.0.mlp.output'), 'b', 'float32', [4, 25000]);
    const session = await Session.create(g.toBytes(), 'dropout test');
    const ones = f32(new Float32Array(100000).fill(1), [4, 25000]);
    const run = async (s: number, l: number) => session.run({ x: ones, seed: u32(Uint32Array.of(s), []), layer: u32(Uint32Array.of(l), []) });
    const r1 = await run(microBatchSeed(7, 0, 0), 0), r2 = await run(microBatchSeed(7, 0, 0), 0);
    const a1 = r1.a.data as Float32Array, b1 = r1.b.data as Float32Array;
    assert.deepEqual(a1, r2.a.data, 'same seed, same mask');
    const kept = a1.filter((v) => v !== 0);
    assert.ok(Math.abs(kept.length / a1.length - 0.9) < 0.005, `kept ${kept.length / a1.length}`);
    assert.ok(kept.every((v) => Math.abs(v - 1 / 0.9) < 1e-6), 'kept values scaled by 1/(1-p)');
    const differ = (p: Float32Array, q: Float32Array) => p.reduce((n, v, i) => n + ((v === 0) !== (q[i] === 0) ? 1 : 0), 0) / p.length;
    for (const other of [b1, (await run(microBatchSeed(7, 0, 0), 1)).a.data as Float32Array, (await run(microBatchSeed(7, 1, 0), 0)).a.data as Float32Array, (await run(microBatchSeed(7, 0, 1), 0)).a.data as Float32Array]) {
      // independent masks disagree on ≈ 2·p·(1-p) = 18% of the elements
      assert.ok(Math.abs(differ(a1, other) - 0.18) < 0.01, `masks of other sites/layers/steps/micro-batches are independent (${differ(a1, other)})`);
    }
    assert.equal(mix32(0), 0);
    assert.notEqual(mix32(1), mix32(2));
    await session.release();
  });
});

describe('Trainer', () => {
  const base = { lr: 1e-2, weightDecay: 0.01, dropout: false, threads: 1 } as const;

  test('two micro-batches of 1 make the same step as one batch of 2 (mean loss)', async () => {
    const cfg = tinyCfg();
    const w0 = tinyWeights(cfg);
    const a = copy(w0), b = copy(w0);
    const ids = tinyIds(cfg, 2, 2);
    const T = cfg.totalLength;
    const ta = await Trainer.create(cfg, a, { ...base, clipGradNorm: 0.5 });
    const tb = await Trainer.create(cfg, b, { ...base, clipGradNorm: 0.5 });
    const ra = await ta.step([{ ids: ids.slice(0, T), batch: 1 }, { ids: ids.slice(T), batch: 1 }]);
    const rb = await tb.step({ ids, batch: 2 });
    assert.ok(Math.abs(ra.loss - rb.loss) < 1e-5, `loss ${ra.loss} vs ${rb.loss}`);
    assert.ok(Math.abs(ra.gradNorm - rb.gradNorm) < 1e-4 * rb.gradNorm, `grad norm ${ra.gradNorm} vs ${rb.gradNorm}`);
    assert.ok(rb.gradNorm > 0.5, 'clipping was active');
    let moved = 0;
    for (const [name, pa] of a) {
      const pb = b.get(name)!, p0 = w0.get(name)!;
      for (let i = 0; i < pa.length; i++) {
        assert.ok(Math.abs(pa[i] - pb[i]) < 1e-5, `${name}[${i}]: ${pa[i]} vs ${pb[i]}`);
        if (pa[i] !== p0[i]) moved++;
      }
    }
    assert.ok(moved > 1000, 'the step changed the weights');
    assert.equal(ta.stepCount, 1);
    await ta.release();
    await tb.release();
  });

  test('frozen parameters get no gradient and do not move; the others get the same gradients', async () => {
    const cfg = tinyCfg();
    const w0 = tinyWeights(cfg);
    const frozen = copy(w0), full = copy(w0);
    const ids = tinyIds(cfg, 1, 3);
    const tf = await Trainer.create(cfg, frozen, { ...base, freeze: ['*embeddings*', 'transformer.layers.0.*'] });
    const tu = await Trainer.create(cfg, full, base);
    await tf.accumulate({ ids, batch: 1 });
    await tu.accumulate({ ids, batch: 1 });
    const gf = tf.pendingGradients()!, gu = tu.pendingGradients()!;
    assert.ok([...gf.keys()].every((n) => !n.includes('embeddings') && !n.startsWith('transformer.layers.0.')));
    assert.equal(gf.size, tf.trainable.length);
    for (const [name, g] of gf) {
      const ref = gu.get(name)!;
      for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - ref[i]) < 1e-6, `${name}[${i}]`);
    }
    tf.apply();
    for (const [name, p] of frozen) {
      const same = p.every((x, i) => x === w0.get(name)![i]);
      assert.equal(same, !tf.trainable.includes(name), name);
    }
    await tf.release();
    await tu.release();
  });

  test('dropout: masks differ between micro-batches and steps when on, and depend on nothing but the seed', async () => {
    const cfg = tinyCfg();
    const ids = tinyIds(cfg, 1, 4);
    const on = await Trainer.create(cfg, tinyWeights(cfg), { ...base, lr: 0, dropout: true, seed: 5 });
    const off = await Trainer.create(cfg, tinyWeights(cfg), base);
    const l1 = (await on.accumulate({ ids, batch: 1 })).loss, l2 = (await on.accumulate({ ids, batch: 1 })).loss;
    const o1 = (await off.accumulate({ ids, batch: 1 })).loss, o2 = (await off.accumulate({ ids, batch: 1 })).loss;
    assert.notEqual(l1, l2);
    assert.equal(o1, o2);
    const next = (await on.step({ ids, batch: 1 })).loss;
    assert.notEqual(next, l1, 'the next step draws new masks');
    // same seed, same masks: a fresh trainer repeats the first micro-batches (what a resumed run relies on)
    const again = await Trainer.create(cfg, tinyWeights(cfg), { ...base, lr: 0, dropout: true, seed: 5 });
    assert.equal((await again.accumulate({ ids, batch: 1 })).loss, l1);
    assert.equal((await again.accumulate({ ids, batch: 1 })).loss, l2);
    const other = await Trainer.create(cfg, tinyWeights(cfg), { ...base, lr: 0, dropout: true, seed: 6 });
    assert.notEqual((await other.accumulate({ ids, batch: 1 })).loss, l1);
    for (const t of [on, off, again, other]) await t.release();
  });

  test('optimizer state round trip: a resumed trainer takes the same next step', async () => {
    const cfg = tinyCfg();
    const ids = tinyIds(cfg, 1, 5);
    const w = tinyWeights(cfg);
    const sched = { kind: 'linear', warmupSteps: 1, totalSteps: 10 } as const;
    const first = await Trainer.create(cfg, w, { ...base, schedule: sched });
    const r1 = await first.step({ ids, batch: 1 });
    assert.equal(r1.lr, 0, 'warmup starts at 0');
    await first.step({ ids, batch: 1 });
    const resumedWeights = copy(w);
    const state = first.optimizerState();
    const resumed = await Trainer.create(cfg, resumedWeights, { ...base, schedule: sched });
    resumed.loadOptimizerState({ step: state.step, moments: new Map([...state.moments].map(([k, m]) => [k, { m: m.m.slice(), v: m.v.slice() }])) });
    const a = await first.step({ ids, batch: 1 });
    const b = await resumed.step({ ids, batch: 1 });
    assert.equal(a.lr, b.lr);
    assert.equal(a.step, 3);
    for (const [name, p] of w) assert.deepEqual(Array.from(p), Array.from(resumedWeights.get(name)!), name);
    await first.release();
    await resumed.release();
  });

  test('bad batches and misuse are typed errors', async () => {
    const cfg = tinyCfg();
    const t = await Trainer.create(cfg, tinyWeights(cfg), base);
    await assert.rejects(t.accumulate({ ids: [1, 2, 3], batch: 2 }), (e: unknown) => e instanceof RudolphError && e.code === 'INPUT');
    await assert.rejects(t.accumulate({ ids: tinyIds(cfg, 1, 1).slice(0, cfg.l + 1), batch: 1 }), /not a whole layout prefix/);
    const bad = tinyIds(cfg, 1, 1);
    bad[cfg.l] = 999;
    await t.accumulate({ ids: tinyIds(cfg, 1, 1), batch: 1 });
    assert.ok(t.pendingGradients());
    await assert.rejects(t.accumulate({ ids: bad, batch: 1 }), /token 999 at row 0, position 4/);
    assert.equal(t.pendingGradients(), null, 'a failed micro-batch discards the pending gradients');
    assert.throws(() => t.apply(), /without accumulated gradients/);
    assert.throws(() => t.loadOptimizerState({ step: 1, moments: new Map([['nope', { m: new Float32Array(1), v: new Float32Array(1) }]]) }), /not a trainable parameter/);
    await assert.rejects(Trainer.create(cfg, new Map(), base), /weights lack parameter/);
    const short = tinyWeights(cfg);
    short.set('to_logits.1.bias', new Float32Array(3));
    await assert.rejects(Trainer.create(cfg, short, base), /to_logits.1.bias holds 3 values/);
    await assert.rejects(Trainer.create(cfg, tinyWeights(cfg), { ...base, lossWeights: { left: 0, image: 0, right: 0 } }), /loss weights/);
    await t.release();
  });
});
