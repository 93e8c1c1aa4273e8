/**
 * LoRA: target selection as PEFT reads target_modules, PEFT's initialisation, the adapter
 * gradients (∂L/∂A by finite differences with B ≠ 0; ∂L/∂B against the golden gradients lives
 * in test/golden/grad-cases.ts), the forward pass with adapters against the merged weights, and
 * the validation of adapter files.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RudolphError } from '../src/errors.js';
import { makeConfig, type RudolphConfig } from '../src/model/config.js';
import {
  adapterFromPeft, initLoraWeights, linearModules, loraAdapter, LoraMerger, loraParamName, loraSetup, loraSpecs, mergeLoraInto,
  peftConfig, peftStateDict, resolveLoraTargets,
} from '../src/model/lora.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights, type RudolphWeights } from '../src/model/weights.js';
import { PRESETS } from '../src/presets.js';
import type { StateDict } from '../src/tensor.js';
import { Rng } from '../src/util/random.js';
import { Trainer } from '../src/train/trainer.js';

const tinyCfg = (): RudolphConfig => makeConfig({
  ...PRESETS['350M'].params, num_layers: 2, hidden_size: 16, num_attention_heads: 2, l_text_seq_length: 4, image_tokens_per_dim: 2,
  r_text_seq_length: 4, vocab_size: 40, image_vocab_size: 20, text_special_tokens: 0, image_special_tokens: 0, kernel_size: 3, last_kernel_size: 3,
});

function tinyWeights(cfg: RudolphConfig, seed = 3): RudolphWeights {
  const w = randomWeights(cfg, seed);
  for (const [k, v] of w) if (/layernorm|to_logits\.0/.test(k)) for (let i = 0; i < v.length; i++) v[i] += 0.3 * Math.sin(i * 7 + k.length);
  return w;
}

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

/** Adapters with B ≠ 0 (a trained adapter), seeded. */
function trainedAdapter(cfg: RudolphConfig, targets: string[], rank = 4): { setup: ReturnType<typeof loraSetup>; tensors: Map<string, Float32Array> } {
  const setup = loraSetup(cfg, { rank, alpha: 8, dropout: 0, targets });
  const tensors = initLoraWeights(cfg, setup.modules, 5);
  const rng = new Rng(9);
  for (const [name, t] of tensors) if (name.endsWith('lora_B.weight')) rng.fillUniform(t, -0.3, 0.3);
  return { setup, tensors };
}

describe('LoRA targets and initialisation', () => {
  test('targets as PEFT reads them: suffix names, all-linear, patterns; a target matching nothing is an error', () => {
    const cfg = tinyCfg();
    assert.deepEqual(resolveLoraTargets(cfg, ['query_key_value', 'dense']), [
      'transformer.layers.0.attention.query_key_value', 'transformer.layers.0.attention.dense',
      'transformer.layers.1.attention.query_key_value', 'transformer.layers.1.attention.dense',
    ]);
    assert.equal(resolveLoraTargets(cfg, ['all-linear']).length, 8);
    assert.deepEqual(resolveLoraTargets(cfg, ['transformer.layers.1.mlp.*']), ['transformer.layers.1.mlp.dense_h_to_4h', 'transformer.layers.1.mlp.dense_4h_to_h']);
    assert.deepEqual(resolveLoraTargets(cfg, ['to_logits.1']), ['to_logits.1']);
    assert.throws(() => resolveLoraTargets(cfg, ['qkv']), (e: unknown) => e instanceof RudolphError && /"qkv" matches no linear layer/.test(e.message));
    assert.throws(() => loraSetup(cfg, { rank: 0 }), /rank/);
    assert.throws(() => loraSetup(cfg, { dropout: 1 }), /dropout/);
  });

  test('PEFT init: A ~ U(±1/√in) per module, B = 0; seeded', () => {
    const cfg = tinyCfg();
    const setup = loraSetup(cfg, { rank: 4, targets: ['all-linear'] });
    const a = initLoraWeights(cfg, setup.modules, 1), b = initLoraWeights(cfg, setup.modules, 1), c = initLoraWeights(cfg, setup.modules, 2);
    for (const spec of loraSpecs(cfg, setup.modules)) {
      const t = a.get(spec.name)!;
      assert.equal(t.length, spec.shape[0] * spec.shape[1]);
      assert.deepEqual(t, b.get(spec.name));
      if (spec.name.endsWith('lora_B.weight')) { assert.ok(t.every((v) => v === 0), spec.name); continue; }
      const bound = 1 / Math.sqrt(spec.shape[1]);
      assert.ok(t.every((v) => Math.abs(v) <= bound) && t.some((v) => Math.abs(v) > bound / 2), spec.name);
      assert.notDeepEqual(t, c.get(spec.name));
    }
  });
});

describe('LoRA gradients and forward pass', () => {
  test('∂L/∂A and ∂L/∂B (B ≠ 0, dropout off) match finite differences of the loss', async () => {
    const cfg = tinyCfg();
    const { tensors } = trainedAdapter(cfg, ['all-linear', 'to_logits.1']);
    const ids = tinyIds(cfg, 2, 1);
    const trainer = await Trainer.create(cfg, tinyWeights(cfg), { lr: 0, dropout: false, threads: 1, lora: { rank: 4, alpha: 8, targets: ['all-linear', 'to_logits.1'] }, loraWeights: tensors });
    await trainer.accumulate({ ids, batch: 2 });
    const grads = trainer.pendingGradients()!;
    assert.equal(grads.size, 2 * 9);
    const names = [
      loraParamName('transformer.layers.0.attention.query_key_value', 'A'), loraParamName('transformer.layers.1.mlp.dense_4h_to_h', 'A'),
      loraParamName('to_logits.1', 'A'), loraParamName('transformer.layers.0.attention.dense', 'B'),
    ];
    for (const name of names) {
      const w = tensors.get(name)!;
      const analytic = grads.get(name)!;
      let scale = 1e-6;
      for (const v of analytic) scale = Math.max(scale, Math.abs(v));
      for (const j of [0, 3, 17, 33, 50].filter((k) => k < w.length)) {
        const x0 = w[j];
        w[j] = x0 + 1e-2;
        const up = (await trainer.evaluate({ ids, batch: 2 })).loss;
        w[j] = x0 - 1e-2;
        const down = (await trainer.evaluate({ ids, batch: 2 })).loss;
        w[j] = x0;
        const fd = (up - down) / 2e-2;
        assert.ok(Math.abs(fd - analytic[j]) <= 3e-2 * scale, `${name}[${j}]: ${analytic[j]} vs finite difference ${fd}`);
      }
    }
    await trainer.release();
  });

  test('the forward pass with adapters equals the forward pass of the merged weights W + (α/r)·B·A', async () => {
    const cfg = tinyCfg();
    const weights = tinyWeights(cfg);
    const { setup, tensors } = trainedAdapter(cfg, ['query_key_value', 'dense', 'dense_4h_to_h']);
    const ids = tinyIds(cfg, 2, 4);
    const adapted = await RudolphModel.fromWeights(cfg, weights, { threads: 1, adapter: loraAdapter(setup.modules, tensors, loraSpecs(cfg, setup.modules)) });
    const merged = new Map(weights);
    const merger = new LoraMerger({ threads: 1 });
    await mergeLoraInto(cfg, merged, { modules: setup.modules, tensors }, merger);
    // the merge, by hand for one layer: W + (α/r)·B·A
    const m = linearModules(cfg).find((x) => x.name === 'transformer.layers.1.attention.dense')!;
    const W = weights.get(`${m.name}.weight`)!, A = tensors.get(loraParamName(m.name, 'A'))!, B = tensors.get(loraParamName(m.name, 'B'))!;
    const got = merged.get(`${m.name}.weight`)!;
    for (const [o, i] of [[0, 0], [3, 7], [15, 15]]) {
      let sum = 0;
      for (let r = 0; r < 4; r++) sum += B[o * 4 + r] * A[r * m.in + i];
      assert.ok(Math.abs(got[o * m.in + i] - (W[o * m.in + i] + 2 * sum)) < 1e-6);
    }
    assert.equal(merged.get('transformer.layers.0.mlp.dense_h_to_4h.weight'), weights.get('transformer.layers.0.mlp.dense_h_to_4h.weight'), 'untouched layers are not copied');
    const base = await RudolphModel.fromWeights(cfg, weights, { threads: 1 });
    const mergedModel = await RudolphModel.fromWeights(cfg, merged, { threads: 1 });
    const a = (await adapted.forward(ids, 2)).logits!, b = (await mergedModel.forward(ids, 2)).logits!, c = (await base.forward(ids, 2)).logits!;
    let diff = 0, moved = 0, scale = 0;
    for (let i = 0; i < a.length; i++) { diff = Math.max(diff, Math.abs(a[i] - b[i])); moved = Math.max(moved, Math.abs(a[i] - c[i])); scale = Math.max(scale, Math.abs(a[i])); }
    assert.ok(diff <= 1e-5 * scale, `adapted vs merged logits differ by ${diff} (max |logit| ${scale})`);
    assert.ok(moved > 1e-2 * scale, 'the adapter changes the model');
    // the trainer's evaluation (training segments, no dropout) agrees with both
    const trainer = await Trainer.create(cfg, weights, { lr: 0, dropout: false, threads: 1, lora: { rank: 4, alpha: 8, targets: ['query_key_value', 'dense', 'dense_4h_to_h'] }, loraWeights: tensors });
    const full = await Trainer.create(cfg, merged, { lr: 0, dropout: false, threads: 1 });
    const la = (await trainer.evaluate({ ids, batch: 2 })).loss, lb = (await full.evaluate({ ids, batch: 2 })).loss;
    assert.ok(Math.abs(la - lb) < 1e-5 * Math.abs(lb), `loss ${la} vs ${lb}`);
    for (const x of [adapted, base, mergedModel]) await x.release();
    await trainer.release();
    await full.release();
    await merger.release();
  });

  test('accumulation and clipping as for full fine-tuning: two micro-batches of 1 = one batch of 2', async () => {
    const cfg = tinyCfg();
    const ids = tinyIds(cfg, 2, 2);
    const T = cfg.totalLength;
    const opts = { lr: 1e-2, dropout: false, threads: 1, clipGradNorm: 1e-3, lora: { rank: 2, targets: ['all-linear'] }, seed: 3 } as const;
    const a = await Trainer.create(cfg, tinyWeights(cfg), opts), b = await Trainer.create(cfg, tinyWeights(cfg), opts);
    const ra = await a.step([{ ids: ids.slice(0, T), batch: 1 }, { ids: ids.slice(T), batch: 1 }]);
    const rb = await b.step({ ids, batch: 2 });
    assert.ok(Math.abs(ra.gradNorm - rb.gradNorm) < 1e-4 * rb.gradNorm && rb.gradNorm > 1e-3, `grad norm ${ra.gradNorm} vs ${rb.gradNorm} (clipped)`);
    for (const [name, t] of a.adapterTensors()) {
      const u = b.adapterTensors().get(name)!;
      for (let i = 0; i < t.length; i++) assert.ok(Math.abs(t[i] - u[i]) < 1e-6, `${name}[${i}]`);
    }
    await a.release();
    await b.release();
  });

  test('the base stays frozen and untouched; only A and B move', async () => {
    const cfg = tinyCfg();
    const weights = tinyWeights(cfg);
    const before = new Map([...weights].map(([k, v]) => [k, v.slice()]));
    const trainer = await Trainer.create(cfg, weights, { lr: 1e-2, dropout: true, seed: 4, threads: 1, lora: { rank: 2 } });
    assert.deepEqual([...trainer.trainable], loraSpecs(cfg, trainer.lora!.modules).map((s) => s.name));
    const b0 = trainer.adapterTensors().get(loraParamName('transformer.layers.0.attention.dense', 'B'))!.slice();
    await trainer.step({ ids: tinyIds(cfg, 1, 2), batch: 1 });
    await trainer.step({ ids: tinyIds(cfg, 1, 3), batch: 1 });
    for (const [k, v] of weights) assert.deepEqual(v, before.get(k), `${k} moved`);
    assert.notDeepEqual(trainer.adapterTensors().get(loraParamName('transformer.layers.0.attention.dense', 'B')), b0);
    await assert.rejects(Trainer.create(cfg, weights, { lr: 1e-2, lora: {}, freeze: ['*'] }), /base is frozen/);
    await assert.rejects(Trainer.create(cfg, weights, { lr: 1e-2, lora: { rank: 2 }, loraWeights: new Map() }), /LoRA tensor .* is missing/);
    await trainer.release();
  });
});

describe('PEFT adapter files', () => {
  test('config and keys round-trip; foreign adapters are refused with the reason', () => {
    const cfg = tinyCfg();
    const { setup, tensors } = trainedAdapter(cfg, ['query_key_value', 'dense']);
    const config = peftConfig(cfg, setup, 'org/base');
    assert.equal(config.peft_type, 'LORA');
    assert.deepEqual(config.target_modules, ['query_key_value', 'dense']);
    assert.equal(config.fan_in_fan_out, false);
    assert.equal(config.bias, 'none');
    const sd = peftStateDict(cfg, setup.modules, tensors);
    assert.deepEqual([...sd.keys()].slice(0, 2), ['base_model.model.transformer.layers.0.attention.query_key_value.lora_A.weight', 'base_model.model.transformer.layers.0.attention.query_key_value.lora_B.weight']);
    assert.deepEqual(sd.get('base_model.model.transformer.layers.0.attention.query_key_value.lora_B.weight')!.shape, [48, 4]);
    const back = adapterFromPeft(cfg, JSON.parse(JSON.stringify(config)), sd, 'test');
    assert.deepEqual([...back.modules.keys()], [...setup.modules.keys()]);
    assert.equal(back.modules.get('transformer.layers.1.attention.dense')!.scale, 2);
    assert.deepEqual(back.tensors.get(loraParamName('transformer.layers.1.attention.dense', 'B')), tensors.get(loraParamName('transformer.layers.1.attention.dense', 'B')));
    // only some layers: target_modules names them in full
    const some = loraSetup(cfg, { rank: 4, targets: ['transformer.layers.1.attention.dense'] });
    assert.deepEqual(peftConfig(cfg, some, null).target_modules, ['transformer.layers.1.attention.dense']);

    const refuse = (json: object, sdx: StateDict, pattern: RegExp) => assert.throws(() => adapterFromPeft(cfg, json, sdx, 'x'), (e: unknown) => e instanceof RudolphError && pattern.test(e.message));
    refuse({ ...config, peft_type: 'IA3' }, sd, /only LORA/);
    refuse({ ...config, use_dora: true }, sd, /DoRA/);
    refuse({ ...config, bias: 'all' }, sd, /bias/);
    refuse({ ...config, r: 8 }, sd, /shape \[4, 16\], expected \[8, 16\]/);
    refuse(config, new Map([...sd, ['base_model.model.text_embeddings.lora_A.weight', sd.values().next().value!]]), /text_embeddings is not a linear layer/);
    refuse(config, new Map([...sd].filter(([k]) => !k.endsWith('layers.0.attention.dense.lora_B.weight'))), /has lora_A but no lora_B/);
  });
});
