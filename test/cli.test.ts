import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { readImage } from '../src/runtime/node/index.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { builtCli } from './helpers.js';

const run = promisify(execFile);
let CLI = '';

interface Result { code: number; stdout: string; stderr: string }

async function rudolph(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { maxBuffer: 16 << 20, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('rudolph CLI', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let model: string[];
  before(async () => {
    CLI = await builtCli();
    ({ dir, cleanup } = await tempDir());
    await writeSmallModel(path.join(dir, 'model'));
    model = ['--model', path.join(dir, 'model'), '--tokenizer', SMALL_TOKENIZER, '--vqgan', TINY_VQGAN_DIR, '--cache-dir', path.join(dir, 'cache'), '--threads', '1'];
  });
  after(async () => { await cleanup(); });

  it('dream writes PNG files and prints their scores as JSON', async () => {
    const out = path.join(dir, 'out');
    const r = await rudolph(['dream', 'рыжий кот', '-n', '2', '--candidates', '3', '--out', out, '--seed', '5', '--json', ...model]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { seed: number; images: { file: string; score: number }[] };
    assert.equal(res.seed, 5);
    assert.equal(res.images.length, 2);
    for (const img of res.images) {
      const decoded = await readImage(img.file);
      assert.equal(decoded.width, 32);
    }
    assert.ok(res.images[0].score <= res.images[1].score);
    assert.notEqual(res.images[0].file, res.images[1].file);
    // same seed, same images
    const again = await rudolph(['dream', 'рыжий кот', '-n', '2', '--candidates', '3', '--out', path.join(dir, 'out2'), '--seed', '5', '--json', ...model]);
    const res2 = JSON.parse(again.stdout) as { images: { file: string }[] };
    assert.deepEqual(await fsp.readFile(res2.images[0].file), await fsp.readFile(res.images[0].file));
  });

  it('caption, classify, text, rank-images, rank-texts and info run', async () => {
    const r0 = await rudolph(['dream', 'дом', '--candidates', '1', '--out', dir, '--seed', '1', '--json', ...model]);
    const image = (JSON.parse(r0.stdout) as { images: { file: string }[] }).images[0].file;
    const cap = await rudolph(['caption', image, '--generations', '3', '-n', '2', '--json', '--seed', '1', ...model]);
    assert.equal(cap.code, 0, cap.stderr);
    assert.ok((JSON.parse(cap.stdout) as { captions: unknown[] }).captions.length >= 1);
    const cls = await rudolph(['classify', image, '--classes', 'кошка,собака', '--template', 'это {}', ...model]);
    assert.equal(cls.code, 0, cls.stderr);
    assert.match(cls.stdout.split('\n')[0], /^(кошка|собака)$/);
    const txt = await rudolph(['text', 'вопрос: что такое море?', '-n', '3', '--seed', '2', '--json', ...model]);
    assert.equal(txt.code, 0, txt.stderr);
    assert.ok((JSON.parse(txt.stdout) as { texts: unknown[] }).texts.length >= 1);
    const ri = await rudolph(['rank-images', 'дом', image, image, '--json', ...model]);
    assert.equal((JSON.parse(ri.stdout) as { scores: number[] }).scores.length, 2);
    const rt = await rudolph(['rank-texts', image, 'дом', 'кот', ...model]);
    assert.equal(rt.code, 0, rt.stderr);
    assert.equal(rt.stdout.trim().split('\n').length, 2);
    const info = await rudolph(['info', '--json', ...model]);
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout) as { model: { config: { num_layers: number } }; presets: Record<string, unknown> };
    assert.equal(parsed.model.config.num_layers, 4);
    assert.ok('350M' in parsed.presets);
  });

  it('rejects bad input with a clear message and a non-zero exit', async () => {
    const missing = await rudolph(['caption', path.join(dir, 'nope.png'), ...model]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.png/);
    const junk = path.join(dir, 'junk.png');
    await fsp.writeFile(junk, Buffer.from('definitely not a png'));
    const unreadable = await rudolph(['classify', junk, '--classes', 'a', ...model]);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /junk\.png/);
    const empty = await rudolph(['dream', '  ', ...model]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /empty/);
    const img = path.join(dir, 'img.png');
    const d = await rudolph(['dream', 'кот', '--candidates', '1', '--out', dir, '--seed', '3', '--json', ...model]);
    await fsp.copyFile((JSON.parse(d.stdout) as { images: { file: string }[] }).images[0].file, img);
    const field = await rudolph(['classify', img, '--classes', 'кот', '--template', 'на {cls}', ...model]);
    assert.equal(field.code, 2);
    assert.match(field.stderr, /unknown template field \{cls\}/);
    // a text over its segment is cut with a warning, or refused with --strict-length
    const long = await rudolph(['dream', 'очень '.repeat(60), '--candidates', '1', '--out', dir, '--json', ...model]);
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.stderr, /warning: text was cut to \d+ tokens/);
    assert.ok((JSON.parse(long.stdout) as { truncated: unknown[] }).truncated.length >= 1);
    const strict = await rudolph(['dream', 'очень '.repeat(60), '--strict-length', ...model]);
    assert.equal(strict.code, 2);
    assert.match(strict.stderr, /too long/);
    const badOpt = await rudolph(['dream', 'кот', '--top-p', 'abc', ...model]);
    assert.equal(badOpt.code, 2);
    // input is checked before the model is looked for: the message is about the input
    const early = await rudolph(['dream', '   ', '--model', path.join(dir, 'no-such-model')]);
    assert.equal(early.code, 2);
    assert.match(early.stderr, /text is empty/);
    const noBraces = await rudolph(['classify', img, '--classes', 'кот,дом', '--template', 'на картинке', '--model', path.join(dir, 'no-such-model')]);
    assert.equal(noBraces.code, 2);
    assert.match(noBraces.stderr, /has no \{\}/);
    const noModel = await rudolph(['dream', 'кот', '--model', path.join(dir, 'no-such-model')]);
    assert.equal(noModel.code, 2);
    assert.match(noModel.stderr, /no-such-model/);
    const emptyDir = path.join(dir, 'empty-model');
    await fsp.mkdir(emptyDir, { recursive: true });
    const noConfig = await rudolph(['dream', 'кот', '--model', emptyDir]);
    assert.equal(noConfig.code, 2);
    assert.ok(noConfig.stderr.includes(`${emptyDir}: no config.json in this folder`), noConfig.stderr);
    assert.match(noConfig.stderr, /pytorch_model\.bin or model\.safetensors/);
    const emptyNumber = await rudolph(['text', 'кот', '--allowed-tokens', '12,,57', ...model]);
    assert.equal(emptyNumber.code, 2);
    assert.match(emptyNumber.stderr, /--allowed-tokens must be an integer/);
    // --out names a folder, or (ending in .png) the image file: an existing file of another kind is refused
    const notes = path.join(dir, 'notes.txt');
    await fsp.writeFile(notes, 'not a folder');
    const outIsFile = await rudolph(['dream', 'кот', '--out', notes, ...model]);
    assert.equal(outIsFile.code, 2);
    assert.match(outIsFile.stderr, /--out .*notes\.txt: cannot create the output folder/);
  });

  it('finetune trains, exports a loadable model, and reports bad manifest lines', async () => {
    const data = path.join(dir, 'ft');
    await fsp.mkdir(data, { recursive: true });
    const d = await rudolph(['dream', 'кот', '--candidates', '1', '--out', data, '--seed', '4', '--json', ...model]);
    const img = path.basename((JSON.parse(d.stdout) as { images: { file: string }[] }).images[0].file);
    await fsp.writeFile(path.join(data, 'train.jsonl'), `${JSON.stringify({ image: img, right: 'кот' })}\n${JSON.stringify({ left: 'текст' })}\n`);
    const out = path.join(dir, 'ft-run');
    const ft = await rudolph(['finetune', '--data', path.join(data, 'train.jsonl'), ...model, '--out', out, '--steps', '3', '--json', '--lr', '1e-3']);
    assert.equal(ft.code, 0, ft.stderr);
    const res = JSON.parse(ft.stdout) as { steps: number; exported: string[] };
    assert.equal(res.steps, 3);
    const info = await rudolph(['info', '--json', '--model', path.join(out, 'model'), '--vqgan', TINY_VQGAN_DIR, '--cache-dir', path.join(dir, 'cache')]);
    assert.equal(info.code, 0, info.stderr);
    await fsp.writeFile(path.join(data, 'bad.jsonl'), `${JSON.stringify({ image: img })}\n{oops\n`);
    const bad = await rudolph(['finetune', '--data', path.join(data, 'bad.jsonl'), ...model, '--out', path.join(dir, 'ft-bad'), '--steps', '1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.jsonl:2: not valid JSON/);
  });

  it('prints Russian examples in --help', async () => {
    const r = await rudolph(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Примеры/);
    const sub = await rudolph(['classify', '--help']);
    assert.match(sub.stdout, /на картинке изображено/);
  });
});
