import assert from 'node:assert/strict';
import { cpSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { loadStateDict } from '../src/io/checkpoint.js';
import { TorchCheckpoint } from '../src/io/torch-zip.js';
import { makeConfig } from '../src/model/config.js';
import { RudolphError } from '../src/errors.js';
import { Rudolph } from '../src/rudolph.js';
import { readImage } from '../src/runtime/node/index.js';
import { ManifestError, readManifest } from '../src/train/data.js';
import { TrainingError } from '../src/train/errors.js';
import { mergeAdapters } from '../src/train/merge.js';
import { finetune, type FinetuneOptions } from '../src/train/run.js';
import { SMALL_PARAMS, SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { builtCli, GOLDEN_DIR } from './helpers.js';
import { startMockHub } from './mock-hub.js';

const COLORS: [string, [number, number, number]][] = [['красный', [220, 30, 30]], ['зелёный', [30, 200, 40]], ['синий', [30, 40, 220]], ['жёлтый', [230, 220, 30]]];

describe('fine-tuning', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let base: FinetuneOptions;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    await writeSmallModel(path.join(dir, 'model'), 21);
    await fsp.mkdir(path.join(dir, 'data', 'img'), { recursive: true });
    const lines: string[] = [];
    for (const [name, rgb] of COLORS) {
      // a coloured square on a white field
      const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 255, g: 255, b: 255 } } })
        .composite([{ input: await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer(), top: 8, left: 8 }])
        .png().toBuffer();
      await fsp.writeFile(path.join(dir, 'data', 'img', `${name}.png`), png);
      lines.push(JSON.stringify({ image: `img/${name}.png`, right: `${name} квадрат` }));
    }
    await fsp.writeFile(path.join(dir, 'data', 'train.jsonl'), `${lines.join('\n')}\n`);
    await fsp.writeFile(path.join(dir, 'data', 'val.jsonl'), `${lines[0]}\n`);
    base = {
      data: path.join(dir, 'data', 'train.jsonl'), model: path.join(dir, 'model'), tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR,
      cacheDir: path.join(dir, 'cache'), out: '', batchSize: 2, lr: 3e-3, seed: 7, threads: 1,
    };
  });
  after(async () => { await cleanup(); });

  it('a few dozen steps lower the training loss markedly; the export loads everywhere', async () => {
    const out = path.join(dir, 'run-long');
    const res = await finetune({ ...base, out, steps: 40, val: path.join(dir, 'data', 'val.jsonl'), checkpointEvery: 20 });
    assert.equal(res.steps, 40);
    assert.ok(res.lastLoss < res.firstLoss * 0.6, `loss ${res.firstLoss} → ${res.lastLoss}`);
    assert.ok(res.valLoss !== undefined && res.valLoss < res.firstLoss);
    const log = (await fsp.readFile(res.logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number; valLoss?: number });
    assert.equal(log.filter((e) => e.loss !== undefined).length, 40);
    assert.ok(log.some((e) => e.valLoss !== undefined));

    // the export: safetensors + config.json (fromPretrained) and an official-layout pytorch_model.bin
    const model = path.join(out, 'model');
    const r = await Rudolph.fromPretrained(model, { vqgan: TINY_VQGAN_DIR, cacheDir: path.join(dir, 'cache'), threads: 1 });
    const [ids] = [await r.vqgan!.encode([await readImage(path.join(dir, 'data', 'img', 'красный.png'))])];
    const caption = await r.caption({ image: { ids }, template: 'красный', generations: 2, count: 1, seed: 1 });
    assert.equal(caption.captions.length, 1);
    await r.release();
    const bin = await loadStateDict(path.join(model, 'pytorch_model.bin'));
    const st = await loadStateDict(path.join(model, 'model.safetensors'));
    assert.deepEqual([...bin.keys()].sort(), [...st.keys()].sort());
    for (const [k, t] of st) assert.deepEqual(bin.get(k)!.data, t.data, `${k}: pytorch_model.bin and model.safetensors differ`);
    const original = await loadStateDict(path.join(dir, 'model', 'pytorch_model.bin'));
    const moved = [...st.keys()].filter((k) => !k.endsWith('_mask') && Buffer.compare(Buffer.from(st.get(k)!.data.buffer), Buffer.from(original.get(k)!.data.buffer)) !== 0);
    assert.equal(moved.length, st.size - 4, 'every parameter moved during training');
    const golden = await TorchCheckpoint.open(path.join(GOLDEN_DIR, 'rudolph-tiny', 'pytorch_model.bin'));
    const pattern = (k: string) => k.replace(/layers\.\d+\./, 'layers.N.');
    const patterns = (keys: Iterable<string>) => [...new Set([...keys].map(pattern))].sort();
    assert.deepEqual(patterns(bin.keys()), patterns(golden.keys()), 'the key layout of an official checkpoint');
    for (const k of golden.keys()) if (bin.has(k)) assert.equal(bin.get(k)!.dtype, golden.info(k).dtype, k);
    assert.equal(bin.get('transformer.row_mask')!.dtype, 'bool');
    await golden.close();
    const ours = await TorchCheckpoint.open(path.join(model, 'pytorch_model.bin'));
    assert.equal(ours.archiveName, 'pytorch_model');
    await ours.close();
  });

  it('resume continues bit-for-bit as if never stopped', async () => {
    const whole = await finetune({ ...base, out: path.join(dir, 'run-whole'), steps: 6, checkpointEvery: 3 });
    const split = path.join(dir, 'run-split');
    const ckpt = path.join(split, 'checkpoint');
    const at3 = path.join(dir, 'checkpoint-at-3');
    const controller = new AbortController();
    const part = await finetune({
      ...base, out: split, steps: 6, checkpointEvery: 3, signal: controller.signal,
      onProgress: (p) => {
        if (p.step !== 4) return;
        cpSync(ckpt, at3, { recursive: true }); // the step-3 checkpoint, as a run killed now would leave it
        controller.abort();
      },
    });
    assert.equal(part.interrupted, true);
    assert.equal(part.steps, 4);
    // a kill after step 4: its checkpoint never written, the log ahead of the checkpoint and cut mid-line
    await fsp.rm(ckpt, { recursive: true });
    await fsp.rename(at3, ckpt);
    await fsp.appendFile(part.logFile, '{"step": 5, "loss": 1, "half a li');
    const resumed = await finetune({ ...base, out: split, steps: 6, checkpointEvery: 3, resume: true });
    assert.equal(resumed.steps, 6);
    assert.equal(resumed.lastLoss, whole.lastLoss);
    const a = await fsp.readFile(path.join(dir, 'run-whole', 'model', 'model.safetensors'));
    const b = await fsp.readFile(path.join(split, 'model', 'model.safetensors'));
    assert.ok(a.equals(b), 'exported weights differ');
    const logA = (await fsp.readFile(whole.logFile, 'utf8')).split('\n').map((l) => l.replace(/"samplesPerSecond":[^,}]*/, ''));
    const logB = (await fsp.readFile(resumed.logFile, 'utf8')).split('\n').map((l) => l.replace(/"samplesPerSecond":[^,}]*/, ''));
    assert.deepEqual(logB, logA);
  });

  it('--checkpoint-every does not change the trained model (dropout masks depend on the step alone)', async () => {
    const a = await finetune({ ...base, out: path.join(dir, 'run-every-2'), steps: 5, checkpointEvery: 2 });
    const b = await finetune({ ...base, out: path.join(dir, 'run-every-50'), steps: 5 });
    assert.equal(a.lastLoss, b.lastLoss);
    const wa = await fsp.readFile(path.join(dir, 'run-every-2', 'model', 'model.safetensors'));
    const wb = await fsp.readFile(path.join(dir, 'run-every-50', 'model', 'model.safetensors'));
    assert.ok(wa.equals(wb), 'exported weights differ');
  });

  it('a damaged checkpoint is refused with a clear error', async () => {
    const out = path.join(dir, 'run-damaged');
    await finetune({ ...base, out, steps: 2, checkpointEvery: 1 });
    const state = path.join(out, 'checkpoint', 'state.json');
    await fsp.writeFile(state, JSON.stringify({ version: 2, step: 'two' }));
    await assert.rejects(finetune({ ...base, out, steps: 4, resume: true }), (e: unknown) => e instanceof TrainingError && /state\.json/.test(e.message));
  });

  it('options and the run folder are checked before anything loads', async () => {
    const noModel = { ...base, model: path.join(dir, 'no-such-model') };
    for (const [over, message] of [
      [{ lr: -1 }, /lr must be > 0, got -1/], [{ lr: Number.NaN }, /lr must be > 0/], [{ clip: 0 }, /clip must be > 0/],
      [{ weightDecay: -1 }, /weightDecay must be ≥ 0/], [{ steps: 0 }, /steps must be an integer ≥ 1/], [{ epochs: 1.5 }, /epochs must be an integer/],
      [{ checkpointEvery: 0 }, /checkpointEvery must be an integer ≥ 1/], [{ lossWeights: { left: 0, image: 0, right: 0 } }, /lossWeights/],
    ] as const) {
      await assert.rejects(finetune({ ...noModel, out: path.join(dir, 'run-opts'), ...over }), (e: unknown) => e instanceof TrainingError && message.test(e.message), JSON.stringify(over));
    }
    // an earlier run: refused without resume/overwrite, before the (missing) model is looked for
    const out = path.join(dir, 'run-earlier');
    await fsp.mkdir(path.join(out, 'checkpoint'), { recursive: true });
    await assert.rejects(finetune({ ...noModel, out }), (e: unknown) => e instanceof TrainingError && /already holds a run \(checkpoint\).*--resume.*--overwrite/.test(e.message));
    // an empty folder is no run
    const empty = path.join(dir, 'run-empty');
    await fsp.mkdir(empty, { recursive: true });
    await assert.rejects(finetune({ ...noModel, out: empty }), (e: unknown) => !(e instanceof TrainingError && /already holds/.test((e as Error).message)));
  });

  it('over-long texts are cut and counted, or refused with truncate: false', async () => {
    const file = path.join(dir, 'data', 'long.jsonl');
    await fsp.writeFile(file, [
      JSON.stringify({ image: 'img/красный.png', right: 'очень '.repeat(80) }),
      JSON.stringify({ image: 'img/зелёный.png', right: 'зелёный квадрат' }),
      JSON.stringify({ left: 'длинный '.repeat(80) }),
    ].join('\n'));
    const warnings: string[] = [];
    const res = await finetune({ ...base, data: file, out: path.join(dir, 'run-long-text'), steps: 1, onWarning: (m) => warnings.push(m) });
    assert.equal(res.truncated, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /long\.jsonl:1: 2 sample\(s\) have a text longer than its segment, cut .*lines 1, 3/);
    await assert.rejects(finetune({ ...base, data: file, out: path.join(dir, 'run-long-strict'), steps: 1, truncate: false }), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.deepEqual(e.problems.map((p) => p.line), [1, 3]);
      assert.match(e.problems[0].reason, /right text is \d+ tokens/);
      assert.match(e.problems[1].reason, /left text is \d+ tokens/);
      return true;
    });
  });

  it('bad manifest lines are reported with their line numbers', async () => {
    const file = path.join(dir, 'data', 'bad.jsonl');
    await fsp.writeFile(file, [
      JSON.stringify({ image: 'img/красный.png', right: 'ок' }),
      '{not json',
      JSON.stringify({ right: 'нет картинки' }),
      JSON.stringify({ image: 'img/нет-такого.png' }),
      JSON.stringify({ caption: 'не то поле' }),
      '',
      JSON.stringify({ left: 'только текст' }),
    ].join('\n'));
    const parsed = await readManifest(file);
    assert.deepEqual(parsed.bad.map((b) => b.line), [2, 3, 5]);
    await assert.rejects(finetune({ ...base, data: file, out: path.join(dir, 'run-bad'), steps: 1 }), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.deepEqual(e.problems.map((p) => p.line), [2, 3, 4, 5]);
      assert.match(e.message, /bad\.jsonl:4: image .*нет-такого\.png/);
      return true;
    });
    const warnings: string[] = [];
    const res = await finetune({ ...base, data: file, out: path.join(dir, 'run-skip'), steps: 2, onBadLine: 'skip', onWarning: (m) => warnings.push(m) });
    assert.equal(res.steps, 2);
    assert.equal(warnings.length, 4);
  });

  describe('LoRA', () => {
    const lora = { rank: 8, alpha: 16, targets: ['all-linear', 'to_logits.1'] };

    it('40 steps lower the loss as much as full fine-tuning; PEFT files; the adapter in fromPretrained, merge and from the hub', async () => {
      const full = await finetune({ ...base, out: path.join(dir, 'lora-full'), steps: 40 });
      const out = path.join(dir, 'lora-run');
      const res = await finetune({ ...base, out, steps: 40, lr: 5e-3, lora, merge: true, val: path.join(dir, 'data', 'val.jsonl') });
      assert.equal(res.steps, 40);
      assert.ok(res.firstLoss - res.lastLoss >= 0.97 * (full.firstLoss - full.lastLoss), `LoRA ${res.firstLoss} → ${res.lastLoss}, full ${full.firstLoss} → ${full.lastLoss}`);
      assert.ok(res.valLoss !== undefined && res.valLoss < res.firstLoss);

      // PEFT's layout: adapter_config.json + adapter_model.safetensors with base_model.model.<module>.lora_A/B.weight
      const config = JSON.parse(await fsp.readFile(path.join(res.adapter!, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(config.peft_type, 'LORA');
      assert.equal(config.r, 8);
      assert.equal(config.lora_alpha, 16);
      assert.equal(config.lora_dropout, 0.05);
      assert.equal(config.bias, 'none');
      assert.equal(config.fan_in_fan_out, false);
      assert.equal(config.base_model_name_or_path, base.model);
      assert.deepEqual(config.target_modules, ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h', 'to_logits.1']);
      const sd = await loadStateDict(path.join(res.adapter!, 'adapter_model.safetensors'));
      assert.equal(sd.size, 2 * (4 * 4 + 1));
      assert.deepEqual(sd.get('base_model.model.transformer.layers.3.attention.query_key_value.lora_A.weight')!.shape, [8, 64]);
      assert.deepEqual(sd.get('base_model.model.transformer.layers.3.attention.query_key_value.lora_B.weight')!.shape, [192, 8]);
      assert.deepEqual(sd.get('base_model.model.to_logits.1.lora_B.weight')!.shape, [makeConfig(SMALL_PARAMS).logitsWidth, 8]);
      for (const t of sd.values()) assert.equal(t.dtype, 'float32');
      // the base model is untouched; the merged model differs only in the adapted weights
      const original = await loadStateDict(path.join(dir, 'model', 'pytorch_model.bin'));
      const merged = await loadStateDict(path.join(res.model!, 'model.safetensors'));
      for (const [k, t] of merged) {
        if (k.endsWith('_mask')) continue;
        const same = Buffer.compare(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), Buffer.from(original.get(k)!.data.buffer, original.get(k)!.data.byteOffset, original.get(k)!.data.byteLength)) === 0;
        assert.equal(same, !/(query_key_value|dense|dense_h_to_4h|dense_4h_to_h)\.weight$|^to_logits\.1\.weight$/.test(k), k);
      }

      // the adapter at inference: merged at load (converted once, then cached) = the merged model folder = merge()
      const opts = { vqgan: TINY_VQGAN_DIR, cacheDir: path.join(dir, 'cache'), threads: 1 };
      const text = async (model: string, extra: { adapters?: string[]; endpoint?: string } = {}) => {
        const stages: string[] = [];
        const r = await Rudolph.fromPretrained(model, { ...opts, ...extra, tokenizer: SMALL_TOKENIZER, onProgress: (p) => stages.push(p.stage) });
        const out = await r.generateText({ template: 'красный', count: 3, seed: 2, earlyStop: 8 });
        const adapters = r.info().files.adapters;
        await r.release();
        return { texts: out.texts, stages, adapters };
      };
      const viaAdapter = await text(base.model, { adapters: [res.adapter!] });
      assert.ok(viaAdapter.stages.includes('convert'));
      assert.deepEqual(viaAdapter.adapters, [res.adapter!]);
      const again = await text(base.model, { adapters: [res.adapter!] });
      assert.ok(!again.stages.includes('convert'), 'the merged graph comes from the cache');
      assert.deepEqual(again.texts, viaAdapter.texts);
      assert.deepEqual((await text(res.model!)).texts, viaAdapter.texts);
      const mergedDir = path.join(dir, 'lora-merged');
      const m = await mergeAdapters({ model: base.model, adapters: [res.adapter!], out: mergedDir, tokenizer: SMALL_TOKENIZER, cacheDir: opts.cacheDir });
      assert.ok(m.exported.some((f) => f.endsWith('pytorch_model.bin')));
      assert.ok((await fsp.readFile(path.join(mergedDir, 'model.safetensors'))).equals(await fsp.readFile(path.join(res.model!, 'model.safetensors'))));
      const plain = await text(base.model);
      assert.notDeepEqual(plain.texts, viaAdapter.texts, 'the adapter changes the model');

      // from a hub repo, like models
      const hub = await startMockHub({ repos: { 'test-org/rudolph-lora': { files: {
        'adapter_config.json': await fsp.readFile(path.join(res.adapter!, 'adapter_config.json')),
        'adapter_model.safetensors': await fsp.readFile(path.join(res.adapter!, 'adapter_model.safetensors')),
      } } } });
      try {
        const fromHub = await text(base.model, { adapters: ['test-org/rudolph-lora'], endpoint: hub.endpoint });
        assert.deepEqual(fromHub.texts, viaAdapter.texts);
        assert.ok(!fromHub.stages.includes('convert'), 'same adapter bytes, same cached merge');
        await assert.rejects(text(base.model, { adapters: ['test-org/no-such-adapter'], endpoint: hub.endpoint }), RudolphError);
      } finally {
        await hub.close();
      }
      await assert.rejects(text(base.model, { adapters: [path.join(dir, 'data')] }), /no adapter_config\.json/);
    });

    it('resume continues a LoRA run bit-for-bit', async () => {
      const opts = { ...base, lr: 5e-3, lora, steps: 4, checkpointEvery: 2 };
      const whole = await finetune({ ...opts, out: path.join(dir, 'lora-whole') });
      const split = path.join(dir, 'lora-split');
      const controller = new AbortController();
      const part = await finetune({ ...opts, out: split, signal: controller.signal, onProgress: (p) => { if (p.step === 3) controller.abort(); } });
      assert.equal(part.interrupted, true);
      assert.equal(part.adapter, undefined);
      const resumed = await finetune({ ...opts, out: split, resume: true });
      assert.equal(resumed.lastLoss, whole.lastLoss);
      const a = await fsp.readFile(path.join(dir, 'lora-whole', 'adapter', 'adapter_model.safetensors'));
      const b = await fsp.readFile(path.join(split, 'adapter', 'adapter_model.safetensors'));
      assert.ok(a.equals(b), 'adapters differ');
      await assert.rejects(finetune({ ...opts, lora: { ...lora, rank: 4 }, out: split, resume: true }), /other data or options/);
    });

    it('the CLI: finetune --lora, then merge, then caption with --adapter', async () => {
      const cli = await builtCli();
      const rudolph = (args: string[]) => promisify(execFile)(process.execPath, [cli, ...args], { maxBuffer: 16 << 20, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
      const common = ['--tokenizer', SMALL_TOKENIZER, '--vqgan', TINY_VQGAN_DIR, '--cache-dir', path.join(dir, 'cache'), '--threads', '1'];
      const out = path.join(dir, 'lora-cli');
      const ft = await rudolph(['finetune', '--data', base.data, '--model', base.model, '--out', out, '--steps', '2', '--batch-size', '2', '--lora', '--lora-rank', '4', '--lora-targets', 'query_key_value', '--json', ...common]);
      const res = JSON.parse(ft.stdout) as { adapter: string; model?: string };
      assert.equal(res.adapter, path.join(out, 'adapter'));
      assert.equal(res.model, undefined);
      const config = JSON.parse(await fsp.readFile(path.join(res.adapter, 'adapter_config.json'), 'utf8')) as { r: number; target_modules: string[] };
      assert.equal(config.r, 4);
      assert.deepEqual(config.target_modules, ['query_key_value']);
      await rudolph(['merge', '--model', base.model, '--adapter', res.adapter, '--out', path.join(out, 'merged'), ...common]);
      await fsp.access(path.join(out, 'merged', 'pytorch_model.bin'));
      const img = path.join(dir, 'data', 'img', 'красный.png');
      const cap = async (extra: string[]) => (JSON.parse((await rudolph(['caption', img, '--seed', '1', '--json', ...extra, ...common])).stdout) as { captions: unknown[] }).captions;
      assert.deepEqual(await cap(['--model', base.model, '--adapter', res.adapter]), await cap(['--model', path.join(out, 'merged')]));
      await assert.rejects(rudolph(['finetune', '--data', base.data, '--model', base.model, '--out', out, '--lora-rank', '4', ...common]), /--lora-rank needs --lora/);
    });
  });
});
