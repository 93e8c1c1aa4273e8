import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AbortError, InputError } from '../src/errors.js';
import { filterTopKTopP, sampleLogits } from '../src/generation/sampling.js';
import { Rudolph } from '../src/rudolph.js';
import { borderCells, guidedProbabilities } from '../src/tasks/image-tokens.js';
import { encodeSegment, formatTemplate, imageTokens, TextFit } from '../src/tasks/inputs.js';
import { spanPerplexities } from '../src/tasks/perplexity.js';
import { ceToPpl, quantile, rerankScores } from '../src/tasks/scoring.js';
import { concat } from '../src/util/arrays.js';
import type { Progress } from '../src/util/progress.js';
import { Rng } from '../src/util/random.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';

describe('seeded generator', () => {
  it('gives the same stream for the same seed and stream, different otherwise', () => {
    const draw = (seed: number, stream: number) => { const r = new Rng(seed, stream); return Array.from({ length: 5 }, () => r.nextUint32()); };
    assert.deepEqual(draw(42, 0), draw(42, 0));
    assert.notDeepEqual(draw(42, 0), draw(42, 1));
    assert.notDeepEqual(draw(42, 0), draw(43, 0));
    const r = new Rng(7);
    r.next();
    const copy = Rng.restore(r.snapshot);
    assert.equal(copy.next(), r.next());
  });

  it('is uniform enough for sampling', () => {
    const r = new Rng(1);
    const bins = new Array(10).fill(0);
    for (let i = 0; i < 20000; i++) bins[Math.floor(r.next() * 10)]++;
    for (const b of bins) assert.ok(b > 1800 && b < 2200, `bin ${b}`);
  });
});

describe('sampling filter', () => {
  it('top-k keeps ties with the k-th value; top-p keeps at least one token', () => {
    const x = filterTopKTopP(Float32Array.of(1, 3, 3, 2, 0), 2, 1);
    assert.deepEqual(Array.from(x), [-Infinity, 3, 3, -Infinity, -Infinity]);
    const y = filterTopKTopP(Float32Array.of(10, 0, 0), 0, 0.01);
    assert.deepEqual(Array.from(y), [10, -Infinity, -Infinity]);
    // p = 0.7 over probs ≈ [0.665, 0.245, 0.09]: the first alone does not exceed 0.7, so two are kept
    const z = filterTopKTopP(Float32Array.of(2, 1, 0), 0, 0.7);
    assert.deepEqual(Array.from(z).map(Number.isFinite), [true, true, false]);
  });

  it('top-p keeps what a comparator sort (value descending, ties by index) keeps, at vocabulary sizes, with ties and ±0', () => {
    // the filter sorts packed numeric keys; this is the plain definition it must agree with
    const reference = (row: Float32Array, p: number): boolean[] => {
      const kept = [...row.keys()].filter((i) => row[i] !== -Infinity).sort((a, b) => row[b] - row[a] || a - b);
      const e = kept.map((i) => Math.exp(row[i] - row[kept[0]]));
      const total = e.reduce((a, b) => a + b, 0);
      const keep = new Array<boolean>(row.length).fill(false);
      let cum = 0;
      for (let j = 0; j < kept.length; j++) {
        if (j > 0 && cum > p) break;
        keep[kept[j]] = true;
        cum += e[j] / total;
      }
      return keep;
    };
    const r = new Rng(5);
    for (let c = 0; c < 60; c++) {
      const n = [8192, 24576, 7][c % 3];
      // coarse values: many ties, zeros of both signs, and a few removed entries
      const row = Float32Array.from({ length: n }, () => { const u = r.next(); return u < 0.05 ? -Infinity : u < 0.1 ? -0 : u < 0.15 ? 0 : Math.round(u * 24) / 2 - 6; });
      row[c % n] = 3;
      const p = [0.99, 0.5, 0.9][c % 3];
      const got = filterTopKTopP(Float32Array.from(row), 0, p);
      assert.deepEqual(Array.from(got, Number.isFinite), reference(row, p), `case ${c} (n ${n}, p ${p})`);
    }
  });

  it('samples proportionally to softmax(logits / temperature)', () => {
    const r = new Rng(3);
    const counts = [0, 0];
    for (let i = 0; i < 4000; i++) counts[sampleLogits(Float32Array.of(Math.log(3), 0), { topK: 0, topP: 1, temperature: 1 }, r)]++;
    assert.ok(Math.abs(counts[0] / 4000 - 0.75) < 0.03, `${counts}`);
  });
});

describe('scoring', () => {
  it('ce_to_ppl averages exp(ce) over non-zero entries', () => {
    const ppl = ceToPpl([1, 0, 2, 0, 0, 0], 2);
    assert.ok(Math.abs(ppl[0] - (Math.E + Math.E ** 2) / 2) < 1e-5);
    assert.ok(Number.isNaN(ppl[1]));
  });

  it('quantile interpolates like torch; ties do not poison scores', () => {
    assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
    const tied = rerankScores([5, 5], [1, 2], 0.95);
    assert.ok(tied.every(Number.isFinite));
    assert.ok(rerankScores([5, 5], [1, 2], 0.95, 0.5, true).every(Number.isNaN));
  });

  it('formats templates like Python str.format and names unknown fields', () => {
    assert.equal(formatTemplate('на картинке {}', 't', 'кошка'), 'на картинке кошка');
    assert.equal(formatTemplate('{{x}} {text}', 't', undefined, { text: 'a' }), '{x} a');
    assert.throws(() => formatTemplate('{cls}', 'class template', 'a'), (e: unknown) => e instanceof InputError && /\{cls\}/.test(e.message));
  });

  it('guidance mixes filtered probabilities, or filtered logits with late softmax', () => {
    const off = { topK: 0, topP: 1, temperature: 1 };
    const cond = Float32Array.of(2, 0, 0), uncond = Float32Array.of(0, 2, 0);
    const soft = (x: number[]) => { const e = x.map(Math.exp); const s = e.reduce((a, b) => a + b); return e.map((v) => v / s); };
    const early = guidedProbabilities(cond, uncond, off, 0.25, false);
    const pc = soft([2, 0, 0]), pu = soft([0, 2, 0]);
    early.forEach((p, i) => assert.ok(Math.abs(p - (0.75 * pc[i] + 0.25 * pu[i])) < 1e-9));
    const late = guidedProbabilities(cond, uncond, off, 0.25, true);
    soft([1.5, 0.5, 0]).forEach((p, i) => assert.ok(Math.abs(late[i] - p) < 1e-6));
    // late softmax: a token filtered out of either row stays out (−∞ mixes to −∞)
    const k2 = { topK: 2, topP: 1, temperature: 1 };
    const cond3 = Float32Array.of(3, 2, 0), uncond3 = Float32Array.of(0, 2, 3);
    const late2 = guidedProbabilities(cond3, uncond3, k2, 0.5, true);
    assert.deepEqual(Array.from(late2).map((p) => p > 0), [false, true, false]);
    // no token in common: probabilities are mixed instead of the official NaN
    const k1 = { topK: 1, topP: 1, temperature: 1 };
    assert.deepEqual(Array.from(guidedProbabilities(cond, uncond, k1, 0.25, true)), [0.75, 0.25, 0]);
    assert.deepEqual(Array.from(guidedProbabilities(cond, uncond, k1, 0.25, false)), [0.75, 0.25, 0]);
  });

  it('border cells follow up/down/left/right', () => {
    assert.deepEqual(borderCells(4, { up: 1, left: 1 }), [0, 1, 2, 3, 4, 8, 12]);
    assert.deepEqual(borderCells(3, { down: 1, right: 1 }), [2, 5, 6, 7, 8]);
    assert.throws(() => borderCells(4, { up: 5 }), InputError);
  });
});

describe('tasks on a small random model', () => {
  let r: Rudolph;
  let cleanup: () => Promise<void>;
  before(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    await writeSmallModel(path.join(t.dir, 'model'));
    r = await Rudolph.fromPretrained(path.join(t.dir, 'model'), { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(t.dir, 'cache'), threads: 1, batchSize: 3 });
  });
  after(async () => { await r.release(); await cleanup(); });

  it('same seed → identical outputs; a candidate does not depend on the batch size', async () => {
    const a = await r.generateImageTokens({ text: 'кошка на диване', count: 4, seed: 9 });
    const b = await r.generateImageTokens({ text: 'кошка на диване', count: 4, seed: 9 });
    const c = await r.generateImageTokens({ text: 'кошка на диване', count: 4, seed: 9, batchSize: 1 });
    const d = await r.generateImageTokens({ text: 'кошка на диване', count: 4, seed: 10 });
    assert.deepEqual(a.codebooks.map((x) => Array.from(x)), b.codebooks.map((x) => Array.from(x)));
    assert.deepEqual(a.codebooks.map((x) => Array.from(x)), c.codebooks.map((x) => Array.from(x)));
    assert.notDeepEqual(a.codebooks.map((x) => Array.from(x)), d.codebooks.map((x) => Array.from(x)));
    const t1 = await r.generateText({ template: 'привет', count: 5, seed: 1 });
    const t2 = await r.generateText({ template: 'привет', count: 5, seed: 1 });
    assert.deepEqual(t1, t2);
  });

  it('image prompts keep their cells; guidance runs and changes the result', async () => {
    const prompt = { ids: Array.from({ length: 16 }, (_, i) => (i * 5) % 64), cells: borderCells(4, { up: 1, left: 1 }) };
    const res = await r.generateImageTokens({ text: 'дом', count: 2, seed: 4, imagePrompt: prompt });
    for (const cb of res.codebooks) for (const cell of prompt.cells) assert.equal(cb[cell], prompt.ids[cell]);
    // the same draws from a mixed distribution: some of 8 candidates must come out different
    const plain = await r.generateImageTokens({ text: 'дом', count: 8, seed: 4 });
    const cfg = await r.generateImageTokens({ text: 'дом', count: 8, seed: 4, guidance: { weight: 0.5 } });
    const late = await r.generateImageTokens({ text: 'дом', count: 2, seed: 4, guidance: { weight: 0.5, lateSoftmax: true } });
    assert.ok(cfg.codebooks.some((cb, i) => cb.join() !== plain.codebooks[i].join()), 'guidance changed no candidate');
    assert.equal(late.codebooks[0].length, 16);
  });

  it('dream returns decoded images ranked by score', async () => {
    const res = await r.dream({ text: 'рыжая кошка', candidates: 4, images: 2, seed: 2 });
    assert.equal(res.images.length, 2);
    assert.equal(res.images[0].image.width, 32);
    assert.ok(res.images[0].score <= res.images[1].score);
    const again = await r.rankImages({ text: 'рыжая кошка', images: res.images.map((x) => ({ ids: x.codebook })) });
    assert.equal(again.scores.length, 2);
  });

  it('caption, classify, rank texts return plain data', async () => {
    const { images } = await r.dream({ text: 'собака', candidates: 1, seed: 3 });
    const image = images[0].image;
    const cap = await r.caption({ image, generations: 4, count: 2, seed: 1 });
    assert.ok(cap.captions.length >= 1 && cap.captions.length <= 2);
    for (const c of cap.captions) assert.ok(c.text.startsWith('на картинке'));
    const cls = await r.classify({ image, classes: ['кошка', 'собака', 'дом'], template: 'на картинке {}' });
    assert.equal(cls.scores.length, 3);
    assert.ok(Math.abs(cls.scores.reduce((a, b) => a + b) - 1) < 1e-9);
    assert.equal(cls.class, ['кошка', 'собака', 'дом'][cls.label]);
    // classify's shared-prefix path (cache of [left | image] replicated) equals scoring every row in full
    const ctx = { model: r.model, cfg: r.config, tokenizer: r.tokenizer, vqgan: r.vqgan, batchSize: 2 };
    const cfg = r.config, T = cfg.totalLength;
    const [code] = await imageTokens(ctx, [image], 'image');
    const rows = ['кошка', 'собака', 'дом'].map((c) => concat(encodeSegment(ctx, '', cfg.l, '<LT_I2T>', new TextFit(false)), code, encodeSegment(ctx, `на картинке ${c}`, cfg.r, '<RT_I2T>', new TextFit(false))));
    const span = [{ from: T - cfg.r, to: T - 1, kind: 'text' as const, ignoreZero: true }];
    const prefix = r.model.newCache(1, T);
    await r.model.step(prefix, rows[0].subarray(0, cfg.l + cfg.imageLength), { logits: false });
    const [viaPrefix] = await spanPerplexities(ctx, rows, span, undefined, prefix);
    const [viaFull] = await spanPerplexities(ctx, rows, span);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(viaPrefix[i] - viaFull[i]) / viaFull[i] < 1e-5);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(viaFull[i] - cls.ppl[i]) / viaFull[i] < 1e-5);
    const ranked = await r.rankTexts({ image, texts: ['кошка', 'собака'] });
    assert.equal(ranked.order.length, 2);
  });

  it('reports progress in order and stops promptly when aborted', async () => {
    const seen: Progress[] = [];
    await r.generateImageTokens({ text: 'кот', count: 2, seed: 1, onProgress: (p) => seen.push(p) });
    assert.ok(seen.length >= 16);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].done >= seen[i - 1].done);
    assert.equal(seen.at(-1)!.done, seen.at(-1)!.total);
    const controller = new AbortController();
    let steps = 0;
    await assert.rejects(r.generateImageTokens({
      text: 'кот', count: 2, seed: 1, signal: controller.signal,
      onProgress: () => { steps++; if (steps === 3) controller.abort(); },
    }), AbortError);
    assert.equal(steps, 3);
  });

  it('rejects bad input with clear errors', async () => {
    await assert.rejects(r.dream({ text: '   ', candidates: 1 }), (e: unknown) => e instanceof InputError && /empty/.test(e.message));
    await assert.rejects(r.dream({ text: 'слово '.repeat(40), candidates: 1, truncate: false }), (e: unknown) => e instanceof InputError && /too long/.test(e.message));
    // by default a long text is cut to its segment and reported
    const cut = await r.dream({ text: 'слово '.repeat(40), candidates: 1, seed: 1 });
    assert.deepEqual(cut.truncated?.map((t) => [t.field, t.kept]), [['text', r.config.l], ['text (reranking)', r.config.r]]);
    assert.ok(cut.truncated!.every((t) => t.tokens > t.kept));
    const fits = await r.classify({ image: { ids: cut.images[0].codebook }, classes: ['кот'] });
    assert.equal(fits.truncated, undefined);
    await assert.rejects(r.generateImageTokens({ text: 'кот', topP: 0 }), InputError);
    await assert.rejects(r.rankImages({ text: 'кот', images: [{ ids: [1, 2, 3] }] }), (e: unknown) => e instanceof InputError && /16 image token ids/.test(e.message));
    await assert.rejects(r.classify({ image: { ids: new Array(16).fill(1) }, classes: [] }), InputError);
    await assert.rejects(r.classify({ image: { ids: new Array(16).fill(1) }, classes: ['кот', 'дом'], template: 'на картинке' }), (e: unknown) => e instanceof InputError && /has no \{\}/.test(e.message));
    await assert.rejects(r.generateText({ template: 'кот', allowedTokens: [100000] }), InputError);
    await assert.rejects(r.generateText({ template: 'кот', batchSize: 0 }), (e: unknown) => e instanceof InputError && /batchSize/.test(e.message));
    await assert.rejects(r.generateText({ template: 'кот', seed: -1 }), (e: unknown) => e instanceof InputError && /seed/.test(e.message));
    await assert.rejects(r.generateText({ template: 'кот', temperature: 1e-300 }), (e: unknown) => e instanceof InputError && /temperature/.test(e.message));
    await assert.rejects(r.generateText({ template: 'кот', earlyStop: Number.NaN }), (e: unknown) => e instanceof InputError && /earlyStop/.test(e.message));
    await assert.rejects(r.rankTexts({ image: { ids: new Array(16).fill(1) }, texts: ['кот'], quantile: 2 }), (e: unknown) => e instanceof InputError && /quantile/.test(e.message));
  });
});
