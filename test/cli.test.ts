import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
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

    // an earlier run is never replaced silently
    const again = await rudolph(['finetune', '--data', path.join(data, 'train.jsonl'), ...model, '--out', out, '--steps', '2']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a run .*--resume.*--overwrite/);
    const before = await fsp.readFile(path.join(out, 'model', 'model.safetensors'));
    assert.ok(before.length > 0);
    const over = await rudolph(['finetune', '--data', path.join(data, 'train.jsonl'), ...model, '--out', out, '--steps', '2', '--json', '--overwrite']);
    assert.equal(over.code, 0, over.stderr);
    assert.equal((JSON.parse(over.stdout) as { steps: number }).steps, 2);

    // over-long captions: cut and counted, or refused with --strict-length
    await fsp.writeFile(path.join(data, 'long.jsonl'), `${JSON.stringify({ image: img, right: 'очень '.repeat(80) })}\n${JSON.stringify({ image: img, right: 'кот' })}\n`);
    const long = await rudolph(['finetune', '--data', path.join(data, 'long.jsonl'), ...model, '--out', path.join(dir, 'ft-long'), '--steps', '1', '--json']);
    assert.equal(long.code, 0, long.stderr);
    assert.equal((JSON.parse(long.stdout) as { truncated: number }).truncated, 1);
    assert.match(long.stderr, /long\.jsonl:1: 1 sample\(s\) have a text longer than its segment, cut .*--strict-length/);
    const strict = await rudolph(['finetune', '--data', path.join(data, 'long.jsonl'), ...model, '--out', path.join(dir, 'ft-strict'), '--steps', '1', '--strict-length']);
    assert.equal(strict.code, 2);
    assert.match(strict.stderr, /long\.jsonl:1: right text is \d+ tokens, the model's segment holds/);
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`finetune saves a checkpoint and exits on ${signal}`, async () => {
      const data = path.join(dir, `sig-${signal}`);
      await fsp.mkdir(data, { recursive: true });
      await fsp.writeFile(path.join(data, 'train.jsonl'), `${JSON.stringify({ left: 'первый текст' })}\n${JSON.stringify({ left: 'второй текст' })}\n`);
      const out = path.join(data, 'run');
      const child = spawn(process.execPath, [CLI, 'finetune', '--data', path.join(data, 'train.jsonl'), ...model, '--out', out, '--steps', '100000', '--checkpoint-every', '100000'], {
        env: { ...process.env, HF_HUB_OFFLINE: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        await new Promise<void>((resolve, reject) => {
          child.stderr.on('data', (d: Buffer) => {
            stderr += d.toString();
            if (/finetune: [1-9]\d*\/100000/.test(stderr)) resolve();
          });
          void exited.then((code) => reject(new Error(`finetune exited early (${code}): ${stderr}`)));
        });
        child.kill(signal);
        const code = await exited;
        assert.equal(code, signal === 'SIGINT' ? 130 : 143, stderr);
        assert.match(stderr, new RegExp(`${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'}: finishing the current step, saving a checkpoint`));
        assert.match(stdout, /interrupted at step \d+/);
        const state = JSON.parse(await fsp.readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
        assert.ok(state.step >= 1, `checkpoint at step ${state.step}`);
        // and the run continues from it
        const resumed = await rudolph(['finetune', '--data', path.join(data, 'train.jsonl'), ...model, '--out', out, '--steps', String(state.step + 1), '--checkpoint-every', '100000', '--resume', '--json']);
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.equal((JSON.parse(resumed.stdout) as { steps: number }).steps, state.step + 1);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  }

  it('checks serve and finetune options, ports and output folders before any model loads', async () => {
    const noModel = ['--model', path.join(dir, 'no-such-model')];
    const port = await rudolph(['serve', '--port', '99999', ...noModel]);
    assert.equal(port.code, 2);
    assert.equal(port.stderr.trim().split('\n').length, 1, port.stderr);
    assert.match(port.stderr, /--port must be an integer ≤ 65535, got "99999"/);
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const inUse = await rudolph(['serve', '--port', String((busy.address() as net.AddressInfo).port), ...noModel]);
      assert.equal(inUse.code, 2);
      assert.match(inUse.stderr, /cannot listen on 127\.0\.0\.1:\d+: the port is in use/);
      assert.doesNotMatch(inUse.stderr, /no-such-model|\n\s+at /);
    } finally {
      busy.close();
    }
    for (const [args, message] of [
      [['--max-pixels', '0'], /--max-pixels must be an integer ≥ 1/],
      [['--body-limit', 'lots'], /--body-limit must be a size in bytes/],
    ] as const) {
      const r = await rudolph(['serve', ...args, ...noModel]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
    }
    // a folder nothing can be written in (root may write anywhere else)
    const unwritable = await rudolph(['dream', 'кот', '--out', '/proc', ...noModel]);
    assert.equal(unwritable.code, 2);
    assert.match(unwritable.stderr, /--out \/proc: cannot write PNG files there/);

    const data = path.join(dir, 'opts.jsonl');
    await fsp.writeFile(data, `${JSON.stringify({ left: 'текст' })}\n`);
    const ft = ['finetune', '--data', data, '--out', path.join(dir, 'ft-opts'), ...noModel];
    for (const [args, message] of [
      [['--lr', '-1'], /--lr must be > 0, got "-1"/],
      [['--lr', '0'], /--lr must be > 0/],
      [['--weight-decay', '-0.5'], /--weight-decay must be ≥ 0/],
      [['--clip', '0'], /--clip must be > 0/],
      [['--steps', '0'], /--steps must be an integer ≥ 1/],
      [['--epochs', '1.5'], /--epochs must be an integer/],
      [['--batch-size', '0'], /--batch-size must be an integer ≥ 1/],
      [['--grad-accum', '-2'], /--grad-accum must be an integer/],
      [['--warmup', '-1'], /--warmup must be an integer/],
      [['--checkpoint-every', '0'], /--checkpoint-every must be an integer ≥ 1/],
      [['--seed', 'x'], /--seed must be an integer/],
      [['--threads', '0'], /--threads must be an integer ≥ 1/],
      [['--loss-weights', '1,-1,1'], /--loss-weights must be three non-negative numbers/],
      [['--resume', '--overwrite'], /resume and overwrite exclude each other/],
    ] as const) {
      const r = await rudolph([...ft, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const ftOut = await rudolph(['finetune', '--data', data, '--out', '/proc', ...noModel]);
    assert.equal(ftOut.code, 2);
    assert.match(ftOut.stderr, /--out \/proc: cannot write the run there/);
  });

  it('prints Russian examples in --help', async () => {
    const r = await rudolph(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Примеры/);
    const sub = await rudolph(['classify', '--help']);
    assert.match(sub.stdout, /на картинке изображено/);
  });
});
