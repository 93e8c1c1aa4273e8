import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointError, ConfigError, InputError, WeightsError } from '../src/errors.js';
import { loadStateDict } from '../src/io/checkpoint.js';
import { configFromJson, makeConfig, MAX_TOTAL_LENGTH, PARAM_BOUNDS } from '../src/model/config.js';
import { leftPadId, prepareInputIds, segmentOf } from '../src/model/layout.js';
import { fetchModelFiles } from '../src/pretrained/model-files.js';
import { LossEvaluator, lossParts } from '../src/model/loss.js';
import { fullMask, layerMaskKinds, maskAllows, stepMask } from '../src/model/masks.js';
import { KVCache, WIDTH_STEP } from '../src/model/kv-cache.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights, weightsFromStateDict } from '../src/model/weights.js';
import { presetConfig, PRESET_NAMES, PRESETS } from '../src/presets.js';
import { loadRudolphDir, loadWeights } from '../src/pretrained/model-dir.js';
import { SMALL_PARAMS, tempDir, writeSmallModel } from './fixtures.js';
import { GOLDEN_DIR } from './helpers.js';

const small = makeConfig(SMALL_PARAMS);

describe('config', () => {
  it('derives the 350M v2 vocabulary layout of SPEC §1-2', () => {
    const c = presetConfig('350M');
    assert.equal(c.textVocab, 16832);
    assert.equal(c.imageVocabTotal, 8576);
    assert.equal(c.logitsWidth, 25408);
    assert.equal(c.totalLength, 384);
    assert.equal(c.bpeVocab, 16384);
    assert.deepEqual(c.specialTokens, { '<LT_UNK>': 16384, '<RT_UNK>': 16385, '<LT_T2I>': 16386, '<LT_I2T>': 16387, '<LT_T2T>': 16388, '<RT_I2T>': 16389 });
    assert.equal(presetConfig('350M-v1').specialTokens['<LT_T2I>'], -1);
    assert.equal(presetConfig('2.7B').totalLength, 384 + 576 + 128);
  });

  it('reads the golden config.json files (official constructor arguments)', async () => {
    const tiny = configFromJson(JSON.parse(await fsp.readFile(path.join(GOLDEN_DIR, 'rudolph-tiny', 'config.json'), 'utf8')));
    assert.equal(tiny.logitsWidth, 208);
    assert.equal(tiny.specialTokens['<LT_T2T>'], 128);
  });

  it('rejects impossible configs with the field named', () => {
    assert.throws(() => makeConfig({ ...SMALL_PARAMS, hidden_size: 65 }), (e: unknown) => e instanceof ConfigError && /divisible/.test(e.message));
    assert.throws(() => makeConfig({ ...SMALL_PARAMS, num_layers: 0 }), (e: unknown) => e instanceof ConfigError && /num_layers/.test(e.message));
    assert.throws(() => configFromJson([1, 2]), ConfigError);
  });

  it('bounds every numeric field, naming it; presets stay inside', () => {
    for (const name of PRESET_NAMES) assert.doesNotThrow(() => presetConfig(name));
    for (const [field, [min, max]] of Object.entries(PARAM_BOUNDS)) {
      for (const bad of [max + 1, min - 1, 1e9, 1.5, '7', null, -Infinity]) {
        assert.throws(() => configFromJson({ model_params: { ...SMALL_PARAMS, [field]: bad } }, 'c.json'),
          (e: unknown) => e instanceof ConfigError && e.message.startsWith(`c.json: config: ${field} must be`), `${field} = ${String(bad)}`);
      }
    }
    assert.throws(() => configFromJson({ model_params: { ...SMALL_PARAMS, vocab_size: 1e12 } }, 'c.json'),
      (e: unknown) => e instanceof ConfigError && /c\.json: config: vocab_size must be an integer ≤ 1048576 and ≥ 2, got 1000000000000/.test(e.message));
    assert.throws(() => makeConfig({ ...SMALL_PARAMS, l_text_seq_length: 2000, image_tokens_per_dim: 64, r_text_seq_length: 2000, vocab_size: 3000 }),
      (e: unknown) => e instanceof ConfigError && new RegExp(`is 8096, over the ${MAX_TOTAL_LENGTH} tokens`).test(e.message));
    assert.throws(() => makeConfig({ ...PRESETS['2.7B'].params, hidden_size: 16384, num_attention_heads: 128, num_layers: 256 }),
      (e: unknown) => e instanceof ConfigError && /parameters .*over the 2e\+10/.test(e.message));
    assert.throws(() => makeConfig({ ...SMALL_PARAMS, attention_dropout_prob: 2 }), (e: unknown) => e instanceof ConfigError && /attention_dropout_prob must be a probability/.test(e.message));
    assert.throws(() => makeConfig({ ...SMALL_PARAMS, cogview_pb_relax: 'yes' as unknown as boolean }), (e: unknown) => e instanceof ConfigError && /cogview_pb_relax must be true or false/.test(e.message));
    assert.throws(() => configFromJson({ model_params: SMALL_PARAMS, spc_tokens: 'abc' }), (e: unknown) => e instanceof ConfigError && /spc_tokens must map/.test(e.message));
  });

  it('a model folder whose config.json says num_layers 1e9 is refused at once, naming the field', { timeout: 10_000 }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const src = path.join(GOLDEN_DIR, 'rudolph-tiny');
      await fsp.copyFile(path.join(src, 'pytorch_model.bin'), path.join(dir, 'pytorch_model.bin'));
      const json = JSON.parse(await fsp.readFile(path.join(src, 'config.json'), 'utf8')) as { model_params: Record<string, unknown> };
      json.model_params.num_layers = 1e9;
      await fsp.writeFile(path.join(dir, 'config.json'), JSON.stringify(json));
      const t0 = performance.now();
      await assert.rejects(fetchModelFiles(dir, { vqgan: false, tokenizer: path.join(src, 'config.json') }),
        (e: unknown) => e instanceof ConfigError && e.message.includes(path.join(dir, 'config.json')) && /num_layers must be a positive integer ≤ 256, got 1000000000/.test(e.message));
      assert.ok(performance.now() - t0 < 1000);
    } finally {
      await cleanup();
    }
  });

  it('a folder without config.json is named with what it should hold', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await assert.rejects(fetchModelFiles(dir, { vqgan: false }),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${dir}: no config.json in this folder`) && /pytorch_model\.bin or model\.safetensors/.test(e.message));
    } finally {
      await cleanup();
    }
  });
});

describe('masks', () => {
  it('uses the official per-layer rule', () => {
    const kinds = layerMaskKinds(24);
    assert.deepEqual(kinds.slice(0, 8), ['row', 'col', 'row', 'conv', 'row', 'col', 'row', 'conv']);
    assert.equal(kinds[23], 'last_conv');
    assert.equal(layerMaskKinds(6)[5], 'col'); // L ≡ 2 (mod 4) ends with col
    assert.ok(!layerMaskKinds(4).includes('conv'));
  });

  it('is causal, sparse only inside the image', () => {
    const { l, n } = small;
    assert.equal(maskAllows('row', small, 3, 5), false);
    assert.equal(maskAllows('col', small, l + n + 1, l + 1), true);
    assert.equal(maskAllows('col', small, l + n + 1, l + 2), false);
    assert.equal(maskAllows('col', small, l + 3, 2), true); // image sees all left text
    assert.equal(maskAllows('row', small, small.totalLength - 1, l), true); // right text sees the image
    assert.equal(maskAllows('conv', small, l + n + 1, l), true);
    assert.equal(maskAllows('conv', small, l + 3 * n + 3, l), false);
  });

  it('step masks are slices of the full mask with unfilled cache slots hidden', () => {
    for (const kind of ['row', 'col', 'conv', 'last_conv'] as const) {
      const T = small.totalLength;
      const full = fullMask(kind, small);
      const start = 20, k = 3, slots = T;
      const m = stepMask(kind, small, start, k, slots);
      for (let i = 0; i < k; i++) {
        for (let s = 0; s < slots; s++) assert.equal(m[i * (slots + k) + s], s < start ? full[(start + i) * T + s] : 0);
        for (let j = 0; j < k; j++) assert.equal(m[i * (slots + k) + slots + j], full[(start + i) * T + start + j]);
      }
    }
  });
});

describe('layout', () => {
  it('replaces left-text zeros by positional pad ids, keeps right-text zeros', () => {
    const T = small.totalLength;
    const ids = new Array(T).fill(0);
    const out = prepareInputIds(small, ids, 1, 0, T);
    assert.equal(Number(out[3]), leftPadId(small, 3));
    assert.equal(Number(out[T - 1]), 0);
    assert.equal(segmentOf(small, small.l), 'image');
  });

  it('names the row, position and token of an id outside the vocabulary', () => {
    const ids = new Array(small.l + 1).fill(5);
    ids[small.l] = small.imageVocabTotal;
    assert.throws(() => prepareInputIds(small, ids, 1, 0, ids.length), (e: unknown) => e instanceof InputError && new RegExp(`token ${small.imageVocabTotal} at row 0, position ${small.l}`).test(e.message));
    assert.throws(() => prepareInputIds(small, [small.textVocab], 1, 0, 1), InputError);
  });

  it('rejects a sequence longer than the layout', () => {
    assert.throws(() => prepareInputIds(small, new Array(small.totalLength + 1).fill(1), 1, 0, small.totalLength + 1), (e: unknown) => e instanceof InputError && /exceed the layout length/.test(e.message));
  });
});

describe('weights and checkpoints', () => {
  it('names a missing or misshapen tensor', async () => {
    const sd = await loadStateDict(path.join(GOLDEN_DIR, 'rudolph-tiny', 'pytorch_model.bin'), { toFloat32: true });
    const cfg = configFromJson(JSON.parse(await fsp.readFile(path.join(GOLDEN_DIR, 'rudolph-tiny', 'config.json'), 'utf8')));
    const missing = new Map(sd);
    missing.delete('transformer.layers.2.mlp.dense_h_to_4h.bias');
    assert.throws(() => weightsFromStateDict(cfg, missing), (e: unknown) => e instanceof WeightsError && /transformer\.layers\.2\.mlp\.dense_h_to_4h\.bias/.test(e.message));
    const bad = new Map(sd);
    bad.set('to_logits.1.bias', { dtype: 'float32', shape: [7], data: new Float32Array(7) });
    assert.throws(() => weightsFromStateDict(cfg, bad), (e: unknown) => e instanceof WeightsError && /to_logits\.1\.bias has shape \[7\]/.test(e.message));
    assert.throws(() => weightsFromStateDict(small, sd), WeightsError);
  });

  it('checks a config against the checkpoint before reading it, naming the config fields', async () => {
    const file = path.join(GOLDEN_DIR, 'rudolph-tiny', 'pytorch_model.bin');
    const json = JSON.parse(await fsp.readFile(path.join(GOLDEN_DIR, 'rudolph-tiny', 'config.json'), 'utf8')) as { model_params: Record<string, number> };
    const layers = configFromJson({ model_params: { ...json.model_params, num_layers: 4 } });
    await assert.rejects(loadWeights(layers, file), (e: unknown) => e instanceof WeightsError && /has 5 transformer layers but the config's num_layers is 4/.test(e.message));
    const vocab = configFromJson({ model_params: { ...json.model_params, vocab_size: 20000 } });
    await assert.rejects(loadWeights(vocab, file),
      (e: unknown) => e instanceof WeightsError && /text_embeddings\.weight has shape \[140, 64\], expected \[20004, 64\] for this config \(vocab_size \+ text_special_tokens/.test(e.message));
  });

  it('rejects a truncated checkpoint with a typed error naming the file', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const src = path.join(GOLDEN_DIR, 'rudolph-tiny');
      const bytes = await fsp.readFile(path.join(src, 'pytorch_model.bin'));
      await fsp.writeFile(path.join(dir, 'pytorch_model.bin'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      await fsp.copyFile(path.join(src, 'config.json'), path.join(dir, 'config.json'));
      await assert.rejects(loadRudolphDir(dir), (e: unknown) => e instanceof CheckpointError && e.message.includes('pytorch_model.bin'));
    } finally {
      await cleanup();
    }
  });
});

describe('model on onnxruntime', () => {
  let model: RudolphModel;
  let int8: RudolphModel;
  const weights = randomWeights(small, 11);
  before(async () => {
    model = await RudolphModel.fromWeights(small, weights, { threads: 1 });
    int8 = await RudolphModel.fromWeights(small, weights, { threads: 1, precision: 'int8' });
  });
  after(async () => { await model.release(); await int8.release(); });

  const sequence = (B: number, T: number) => Array.from({ length: B * T }, (_, i) => {
    const p = i % T;
    return segmentOf(small, p) === 'image' ? (i * 7) % small.imageVocab : (i * 13) % small.bpeVocab;
  });

  it('cached decoding (1 and several tokens per call) equals the full forward', async () => {
    const B = 2, T = small.l + small.imageLength + 5;
    const ids = sequence(B, T);
    const full = await model.forward(ids, B);
    const W = small.logitsWidth;
    const cache = model.newCache(B, T);
    const cuts = [small.l, small.l + 1, small.l + 4, small.l + 5, T];
    let prev = 0;
    for (const cut of cuts) {
      const chunk: number[] = [];
      for (let b = 0; b < B; b++) chunk.push(...ids.slice(b * T + prev, b * T + cut));
      const res = await model.step(cache, chunk, { select: 'all' });
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < cut - prev; j++) {
          for (let c = 0; c < W; c += 17) {
            const a = res.logits![(b * (cut - prev) + j) * W + c], e = full.logits![(b * T + prev + j) * W + c];
            assert.ok(Math.abs(a - e) < 1e-4, `row ${b} pos ${prev + j} col ${c}: ${a} vs ${e}`);
          }
        }
      }
      prev = cut;
    }
    assert.equal(cache.length, T);
    await assert.rejects(model.step(cache, [1, 1]), InputError);
  });

  it('feeds only the cache width in use, growing it by WIDTH_STEP slots, with the results of the full forward', async () => {
    // a layout longer than WIDTH_STEP, so that decoding crosses a growth of the fed width
    const cfg = makeConfig({ ...SMALL_PARAMS, num_layers: 2, image_tokens_per_dim: 8 });
    assert.ok(cfg.totalLength > WIDTH_STEP && cfg.totalLength < 2 * WIDTH_STEP);
    const m = await RudolphModel.fromWeights(cfg, randomWeights(cfg, 5), { threads: 1 });
    try {
      const B = 2, T = cfg.totalLength;
      const ids = Array.from({ length: B * T }, (_, i) => (segmentOf(cfg, i % T) === 'image' ? (i * 7) % cfg.imageVocab : (i * 13) % cfg.bpeVocab));
      const full = await m.forward(ids, B);
      const W = cfg.logitsWidth;
      const cache = m.newCache(B, T);
      assert.equal(cache.width, WIDTH_STEP);
      const widths: number[] = [];
      const rowsAt = (from: number, to: number) => { const out: number[] = []; for (let b = 0; b < B; b++) out.push(...ids.slice(b * T + from, b * T + to)); return out; };
      await m.step(cache, rowsAt(0, WIDTH_STEP - 3), { logits: false });
      let worst = 0;
      for (let p = WIDTH_STEP - 3; p < T; p++) {
        const res = await m.step(cache, rowsAt(p, p + 1));
        widths.push(cache.width);
        for (let b = 0; b < B; b++) {
          for (let c = 0; c < W; c++) worst = Math.max(worst, Math.abs(res.logits![b * W + c] - full.logits![(b * T + p) * W + c]));
        }
      }
      assert.ok(worst < 1e-4, `cached logits differ from the full forward by ${worst}`);
      assert.deepEqual([...new Set(widths)], [WIDTH_STEP, T], 'width grew once, to the slots');
      // a row picked after the growth continues like the original
      const picked = cache.select([1]);
      assert.equal(picked.width, T);
      for (let i = 0; i < cfg.numLayers; i++) {
        const per = cache.fedKeys(i).length / B;
        assert.deepEqual(picked.fedKeys(i), cache.fedKeys(i).subarray(per, 2 * per));
        assert.deepEqual(picked.fedValues(i), cache.fedValues(i).subarray(per, 2 * per));
      }
    } finally {
      await m.release();
    }
  });

  it('a released cache hands its buffers to the next cache of the model, zeroed as fed, with the results of fresh buffers', async () => {
    // a layout longer than WIDTH_STEP: decoding on the reused buffers crosses a growth of the width
    const cfg = makeConfig({ ...SMALL_PARAMS, num_layers: 2, image_tokens_per_dim: 8 });
    const T = cfg.totalLength;
    assert.ok(T > WIDTH_STEP);
    const m = await RudolphModel.fromWeights(cfg, randomWeights(cfg, 6), { threads: 1 });
    try {
      const ids = Array.from({ length: T }, (_, i) => (segmentOf(cfg, i) === 'image' ? (i * 7) % cfg.imageVocab : 5 + ((i * 11) % 50)));
      const decode = async (cache: KVCache) => {
        await m.step(cache, ids.slice(0, cfg.l), { logits: false });
        const out: number[] = [];
        for (let p = cfg.l; p < T; p++) out.push(...(await m.step(cache, [ids[p]])).logits!);
        return out;
      };
      // a batch-2 cache filled to its last slot leaves every byte of its buffers dirty
      const first = m.newCache(2, T);
      await m.step(first, [...ids, ...ids.map((t, i) => (i < cfg.l ? t : (t + 1) % cfg.imageVocab))], { logits: false });
      const released = new Set([...first.keys, ...first.values]);
      first.release();
      assert.throws(() => first.reserve(4), /used after release/);
      assert.throws(() => first.select([0]), /used after release/);
      const reused = m.newCache(1, T); // the batch-2 buffers are twice as long as it needs: still taken
      assert.ok([...reused.keys, ...reused.values].every((b) => released.has(b)), 'the new cache runs on the released buffers');
      const zeroed = (b: Float32Array) => b.every((v) => v === 0);
      assert.ok(Array.from({ length: cfg.numLayers }, (_, i) => zeroed(reused.fedKeys(i)) && zeroed(reused.fedValues(i))).every(Boolean), 'fed slots zeroed');
      assert.deepEqual(await decode(reused), await decode(new KVCache(cfg, 1, T)));
      reused.release();
      // buffers more than twice as long as needed stay in the pool for a larger cache
      const tiny = m.newCache(1, cfg.l);
      assert.ok([...tiny.keys, ...tiny.values].every((b) => !released.has(b)));
      tiny.release();
      // the pool keeps two caches' worth of buffers at most
      const three = [m.newCache(1, T), m.newCache(1, T), m.newCache(1, T)];
      const buffers = new Set(three.flatMap((c) => [...c.keys, ...c.values]));
      for (const c of three) c.release();
      const again = [m.newCache(1, T), m.newCache(1, T), m.newCache(1, T)].flatMap((c) => [...c.keys, ...c.values]);
      assert.equal(again.filter((b) => buffers.has(b)).length, 4 * cfg.numLayers);
    } finally {
      await m.release();
    }
  });

  it('returns logits only for selected positions, and target CE pieces', async () => {
    const B = 1, T = small.l + 3;
    const ids = sequence(B, T);
    const all = await model.forward(ids, B);
    const W = small.logitsWidth;
    const sel = await model.forward(ids, B, { select: [2, T - 1], targets: [7, small.textVocab + 5] });
    assert.equal(sel.positions, 2);
    assert.deepEqual(Array.from(sel.logits!.subarray(W, 2 * W)), Array.from(all.logits!.subarray((T - 1) * W, T * W)));
    const row = all.logits!.subarray(2 * W, 3 * W);
    let max = -Infinity;
    for (let c = 0; c < small.textVocab - small.l; c++) max = Math.max(max, row[c]);
    let sum = 0;
    for (let c = 0; c < small.textVocab - small.l; c++) sum += Math.exp(row[c] - max);
    assert.ok(Math.abs(sel.lseText![0] - (max + Math.log(sum))) < 1e-4);
    assert.equal(sel.targetLogits![0], row[7]);
    await assert.rejects(model.forward(ids, B, { select: [T] }), InputError);
  });

  it('int8 weights stay close to fp32', async () => {
    const ids = sequence(1, small.l + 4);
    const a = await model.forward(ids, 1, { select: 'last' });
    const b = await int8.forward(ids, 1, { select: 'last' });
    let num = 0, den = 0;
    for (let i = 0; i < a.logits!.length; i++) { num += (a.logits![i] - b.logits![i]) ** 2; den += a.logits![i] ** 2; }
    assert.ok(Math.sqrt(num / den) < 0.05, `relative error ${Math.sqrt(num / den)}`);
  });

  it('loss: official and fixed modes differ only where the quirk is', async () => {
    const ev = new LossEvaluator(small);
    const T = small.totalLength;
    const ids = sequence(2, T);
    const { logits } = await model.forward(ids, 2);
    const official = await ev.evaluate(logits!, ids, 2, { left: 1, image: 7, right: 1 }, 'official');
    const fixed = await ev.evaluate(logits!, ids, 2, { left: 1, image: 7, right: 1 }, 'fixed');
    assert.equal(official.image, fixed.image);
    assert.equal(official.right, fixed.right);
    assert.notEqual(official.left, fixed.left);
    assert.ok(Math.abs(official.loss - (official.left! + 7 * official.image! + official.right!) / 9) < 1e-5);
    assert.throws(() => lossParts(small, small.l + 2), InputError);
    await ev.release();
  });
});

describe('model folders', () => {
  it('loads a folder written in the official torch format', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeSmallModel(dir);
      const { cfg, weights } = await loadRudolphDir(dir);
      assert.equal(cfg.numLayers, SMALL_PARAMS.num_layers);
      assert.equal(weights.size, 10 + 16 * SMALL_PARAMS.num_layers + 2);
    } finally {
      await cleanup();
    }
  });
});
