/**
 * rudolph eval: the metric code against hand-checked values (confusion matrices, sklearn's
 * report, the official f1_score.py normalisation), the data layouts (image folder, CIFAR-10
 * binary, SQuAD JSON / JSON lines, captions.jsonl) with bad data named by file and line, and the
 * runs on small generated data sets with the small test model: results equal the tasks run one
 * by one, an interrupted run resumes to the same report, the CLI writes report, results and heat map.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { AbortError } from '../src/errors.js';
import { evalCaptions } from '../src/eval/caption.js';
import { evalClassify } from '../src/eval/classify.js';
import { CIFAR10_RUSSIAN, DATA_LIMITS, DataError, readCaptionData, readClassificationData, readQaData } from '../src/eval/datasets.js';
import { confusionHeatmap } from '../src/eval/heatmap.js';
import { classificationReport, confusionMatrix, formatReport } from '../src/eval/metrics.js';
import { evalQa } from '../src/eval/qa.js';
import { ResultsLog } from '../src/eval/results-log.js';
import { answerF1, answerTokens, exactMatch, normalizeAnswer, scoreAnswer } from '../src/eval/squad.js';
import type { RgbImage } from '../src/image/index.js';
import { Rudolph } from '../src/rudolph.js';
import { encodePng, readImage } from '../src/runtime/node/index.js';
import { Rng } from '../src/util/random.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { builtCli } from './helpers.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} ≠ ${b}`);

function noiseImage(seed: number, size = 32): RgbImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng.next() * 256);
  return { width: size, height: size, data };
}

const CIFAR_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** A CIFAR-10 binary batch of `n` seeded records with labels i mod 10 (or `labels`). */
async function writeCifar(dir: string, n: number, labels?: number[]): Promise<Buffer> {
  await fsp.mkdir(dir, { recursive: true });
  const rng = new Rng(77);
  const bytes = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    bytes[i * 3073] = labels?.[i] ?? i % 10;
    for (let j = 1; j < 3073; j++) bytes[i * 3073 + j] = Math.floor(rng.next() * 256);
  }
  await fsp.writeFile(path.join(dir, 'test_batch.bin'), bytes);
  await fsp.writeFile(path.join(dir, 'batches.meta.txt'), `${CIFAR_NAMES.join('\n')}\n\n`);
  return bytes;
}

const rejects = (p: Promise<unknown>, re: RegExp) => assert.rejects(p, (e: unknown) => e instanceof DataError && re.test(e.message));

let tmp: { dir: string; cleanup: () => Promise<void> };
before(async () => { tmp = await tempDir('rudolph-eval-'); });
after(async () => { await tmp.cleanup(); });

describe('classification metrics', () => {
  it('a hand-checked confusion matrix and report (sklearn semantics)', () => {
    const truth = [0, 0, 0, 1, 1, 2, 2, 2, 2];
    const pred = [0, 1, 0, 1, 2, 2, 2, 0, 2];
    const m = confusionMatrix(truth, pred, 4);
    assert.deepEqual(m, [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 0]]);
    const r = classificationReport(m);
    assert.equal(r.count, 9);
    close(r.accuracy, 6 / 9, 'accuracy');
    // class 0: tp 2 of 3 predicted, 3 true; class 1: 1 of 2, 2; class 2: 3 of 4, 4; class 3: nothing (0 by zero_division)
    assert.deepEqual(r.perClass.map((c) => c.support), [3, 2, 4, 0]);
    for (const [i, p] of [2 / 3, 1 / 2, 3 / 4, 0].entries()) {
      close(r.perClass[i].precision, p, `precision ${i}`);
      close(r.perClass[i].recall, p, `recall ${i}`);
      close(r.perClass[i].f1, p, `f1 ${i}`);
    }
    close(r.macro.f1, (2 / 3 + 1 / 2 + 3 / 4 + 0) / 4, 'macro f1');
    close(r.macro.precision, (2 / 3 + 1 / 2 + 3 / 4) / 4, 'macro precision');
    close(r.weighted.f1, (3 * (2 / 3) + 2 * (1 / 2) + 4 * (3 / 4)) / 9, 'weighted f1');
    // precision and recall differ when a class is over-predicted
    const skew = classificationReport(confusionMatrix([0, 0, 1, 1], [0, 0, 0, 1], 2));
    close(skew.perClass[0].precision, 2 / 3, 'p0');
    close(skew.perClass[0].recall, 1, 'r0');
    close(skew.perClass[0].f1, 0.8, 'f0');
    close(skew.perClass[1].precision, 1, 'p1');
    close(skew.perClass[1].recall, 0.5, 'r1');
    close(skew.macro.f1, (0.8 + 2 / 3) / 2, 'macro');
    const text = formatReport(skew, ['кот', 'собака']);
    assert.match(text, /кот\s+0\.67\s+1\.00\s+0\.80\s+2/);
    assert.match(text, /macro avg\s+0\.83\s+0\.75\s+0\.73\s+4/);
    assert.match(text, /1 кот\s+2\s+0\n\s+2 собака\s+1\s+1/);
    assert.throws(() => confusionMatrix([0, 3], [0, 1], 3), /item 1 has true label 3, outside \[0, 3\)/);
  });

  it('the heat map: one shaded, labelled cell per pair', async () => {
    const img = confusionHeatmap([[5, 0], [1, 3]]);
    const cell = 28;
    assert.deepEqual([img.width, img.height], [3 * cell, 3 * cell]);
    const at = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
    assert.deepEqual(at(cell + 1, cell + 1), [8, 48, 107], 'a whole row in one cell: the darkest shade');
    assert.deepEqual(at(2 * cell + 1, cell + 1), [247, 251, 255], 'an empty cell: the lightest');
    const quarter = at(cell + 1, 2 * cell + 1);
    assert.deepEqual(quarter, [247, 251, 255].map((lo, c) => Math.round(lo + ([8, 48, 107][c] - lo) * 0.25)));
    // the count is drawn in the cell (white on a dark cell)
    let white = 0;
    for (let y = cell; y < 2 * cell - 1; y++) for (let x = cell; x < 2 * cell - 1; x++) if (at(x, y)[0] === 255) white++;
    assert.ok(white > 10, `${white} white pixels in the "5" cell`);
    assert.equal((await readImage(await encodePng(img))).width, 3 * cell);
  });
});

describe('answer scores (official f1_score.py)', () => {
  it('normalises like normalize_answer: lower, space after .,!?;, ASCII punctuation out, whitespace collapsed, articles kept', () => {
    assert.equal(normalizeAnswer('  Известковыми,   Выделениями!  '), 'известковыми выделениями');
    // "a.b" gains a space before the dot goes: two tokens (SQuAD's script would give "ab")
    assert.deepEqual(answerTokens('a.b'), ['a', 'b']);
    assert.deepEqual(answerTokens('The cat'), ['the', 'cat']);
    // only ASCII punctuation is removed
    assert.deepEqual(answerTokens('«Ёлка» — да'), ['«ёлка»', '—', 'да']);
    assert.deepEqual(answerTokens('x\u00a0y\u2003z'), ['x', 'y', 'z']);
    assert.deepEqual(answerTokens(''), []);
  });

  it('F1 over token bags; empty sides; exact match; first or best gold', () => {
    // the notebook's example answer: 6 gold tokens, 9 predicted, 6 shared → P 2/3, R 1
    close(answerF1('персонажи не вырезаны из одного картона', 'за то, что персонажи не вырезаны из одного картона'), 0.8, 'f1');
    close(answerF1('a a b', 'a a a'), 2 / 3, 'counter');
    assert.equal(answerF1('', ''), 1);
    assert.equal(answerF1('x', ''), 0);
    assert.equal(answerF1('', '.'), 1, 'punctuation alone normalises to nothing');
    assert.equal(answerF1('кот', 'собака'), 0);
    assert.equal(exactMatch('В 7 лет.', 'в 7 лет'), 1);
    assert.equal(exactMatch('в 7 лет', 'в семь лет'), 0);
    assert.deepEqual(scoreAnswer(['кот', 'в 7 лет'], 'в 7 лет'), { f1: 0, em: 0 });
    assert.deepEqual(scoreAnswer(['кот', 'в 7 лет'], 'в 7 лет', true), { f1: 1, em: 1 });
  });
});

describe('data layouts', () => {
  it('an image folder: class folders sorted, bad entries named', async () => {
    const dir = path.join(tmp.dir, 'folder-ok');
    for (const [c, cls] of ['собака', 'кошка'].entries()) {
      await fsp.mkdir(path.join(dir, cls), { recursive: true });
      for (let i = 0; i < 2; i++) await fsp.writeFile(path.join(dir, cls, `${i}.png`), await encodePng(noiseImage(c * 10 + i)));
    }
    await fsp.writeFile(path.join(dir, 'кошка', '.DS_Store'), 'x');
    const data = await readClassificationData(dir);
    assert.equal(data.layout, 'image-folder');
    assert.deepEqual(data.classes, ['кошка', 'собака']);
    assert.deepEqual(data.items.map((i) => [i.id, i.label]), [['кошка/0.png', 0], ['кошка/1.png', 0], ['собака/0.png', 1], ['собака/1.png', 1]]);
    assert.deepEqual((await data.items[2].read()).data, noiseImage(0).data);
    assert.deepEqual((await readClassificationData(dir, { classes: ['кот', 'пёс'] })).classes, ['кот', 'пёс']);
    await rejects(readClassificationData(dir, { classes: ['a'] }), /--classes gives 1 names, the data has 2 classes/);

    const bad = path.join(tmp.dir, 'folder-bad');
    await fsp.mkdir(path.join(bad, 'кошка'), { recursive: true });
    await fsp.mkdir(path.join(bad, 'пусто'), { recursive: true });
    await fsp.writeFile(path.join(bad, 'кошка', 'notes.txt'), 'x');
    await fsp.writeFile(path.join(bad, 'loose.png'), 'x');
    await rejects(readClassificationData(bad), /loose\.png: files belong in class folders[\s\S]*кошка\/notes\.txt: not an image file[\s\S]*пусто: class folder without images/);
    await rejects(readClassificationData(path.join(tmp.dir, 'absent')), /absent: no such file or folder/);
  });

  it('CIFAR-10 binary: Russian names, planes to RGB, damaged files named by record', async () => {
    const dir = path.join(tmp.dir, 'cifar');
    const bytes = await writeCifar(dir, 12);
    for (const where of [dir, path.join(dir, 'test_batch.bin')]) {
      const data = await readClassificationData(where);
      assert.equal(data.layout, 'cifar10-binary');
      assert.deepEqual(data.classes, CIFAR_NAMES.map((n) => CIFAR10_RUSSIAN[n]));
      assert.deepEqual(data.classes, ['самолет', 'машина', 'птица', 'кот', 'олень', 'собака', 'лягушка', 'лошадь', 'корабль', 'грузовик']);
      assert.equal(data.items.length, 12);
      assert.deepEqual(data.items.slice(0, 3).map((i) => [i.id, i.label]), [['test_batch.bin#0', 0], ['test_batch.bin#1', 1], ['test_batch.bin#2', 2]]);
    }
    const img = await (await readClassificationData(dir)).items[5].read();
    // pixel (x 3, y 2) of record 5: R, G, B from the three planes
    const p = 2 * 32 + 3, base = 5 * 3073 + 1;
    assert.deepEqual(Array.from(img.data.subarray(p * 3, p * 3 + 3)), [bytes[base + p], bytes[base + 1024 + p], bytes[base + 2048 + p]]);

    const cut = path.join(tmp.dir, 'cifar-cut');
    await writeCifar(cut, 3);
    await fsp.truncate(path.join(cut, 'test_batch.bin'), 3073 * 2 + 100);
    await rejects(readClassificationData(cut), /test_batch\.bin: 6246 bytes is not a whole number of 3073-byte records .* record 2 is cut/);
    const labels = path.join(tmp.dir, 'cifar-labels');
    await writeCifar(labels, 3, [0, 12, 1]);
    await rejects(readClassificationData(labels), /test_batch\.bin: record 1 has label 12, batches\.meta\.txt lists 10 classes/);
    await fsp.rm(path.join(labels, 'batches.meta.txt'));
    await rejects(readClassificationData(labels), /batches\.meta\.txt: missing/);
  });

  it('QA: SQuAD JSON and JSON lines; bad records named by line or path', async () => {
    const squad = path.join(tmp.dir, 'squad.json');
    await fsp.writeFile(squad, JSON.stringify({
      version: '1.1',
      data: [{ title: 't', paragraphs: [{ context: 'Окунь живёт в озере.', qas: [{ id: 'q1', question: 'Где живёт окунь?', answers: [{ text: 'в озере', answer_start: 11 }] }] }] }],
    }, null, 1));
    assert.deepEqual(await readQaData(squad), [{ id: 'q1', context: 'Окунь живёт в озере.', question: 'Где живёт окунь?', answers: ['в озере'] }]);
    const lines = path.join(tmp.dir, 'squad.jsonl');
    await fsp.writeFile(lines, `${JSON.stringify({ id: 7, context: 'c', question: 'q?', answers: { text: ['a', 'b'], answer_start: [0, 1] } })}\n\n`);
    assert.deepEqual(await readQaData(lines), [{ id: '7', context: 'c', question: 'q?', answers: ['a', 'b'] }]);

    const broken = path.join(tmp.dir, 'broken.json');
    await fsp.writeFile(broken, '{"data": [\n  {"paragraphs": []},\n  {oops}\n]}');
    await rejects(readQaData(broken), /broken\.json:3: not valid JSON/);
    const noAnswers = path.join(tmp.dir, 'no-answers.json');
    await fsp.writeFile(noAnswers, JSON.stringify({ data: [{ paragraphs: [{ context: 'c', qas: [{ id: 'x1', question: 'q', answers: [] }] }] }] }));
    await rejects(readQaData(noAnswers), /no-answers\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\] \(id x1\): "answers" must be a non-empty list/);
    const badLine = path.join(tmp.dir, 'bad.jsonl');
    await fsp.writeFile(badLine, `${JSON.stringify({ context: 'c', question: 'q', answers: { text: ['a'] } })}\n{"context": "c"\n${JSON.stringify({ context: 'c', question: '', answers: { text: ['a'] } })}\n`);
    await rejects(readQaData(badLine), /bad\.jsonl:2: not valid JSON[\s\S]*bad\.jsonl:3: "question" must be a non-empty string/);
  });

  it('captions.jsonl: images relative to it, bad lines named', async () => {
    const dir = path.join(tmp.dir, 'captions');
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(path.join(dir, 'a.png'), await encodePng(noiseImage(1)));
    await fsp.writeFile(path.join(dir, 'captions.jsonl'), `${JSON.stringify({ image: 'a.png', caption: 'кот' })}\n`);
    const items = await readCaptionData(dir);
    assert.deepEqual(items.map((i) => [i.id, i.captions]), [['a.png', ['кот']]]);
    await fsp.writeFile(path.join(dir, 'captions.jsonl'), `${JSON.stringify({ image: 'a.png', captions: ['кот', 'кошка'] })}\n{"image": "b.png", "caption": "x"}\n{"image": "a.png"}\nnope\n`);
    await rejects(readCaptionData(dir), /captions\.jsonl:2: no image file b\.png[\s\S]*captions\.jsonl:3: needs "caption"[\s\S]*captions\.jsonl:4: not valid JSON/);
  });

  it('data files are read bounded: devices, FIFOs, folders and oversized files refused by name, quickly', async () => {
    const t0 = performance.now();
    // /dev/zero never ends: read whole it would exhaust memory
    await rejects(readClassificationData('/dev/zero'), /\/dev\/zero: not a folder/);
    await rejects(readQaData('/dev/zero'), /\/dev\/zero: cannot read \(is a device, not a regular file\)/);
    await rejects(readCaptionData('/dev/urandom'), /\/dev\/urandom: cannot read \(is a device, not a regular file\)/);
    const fifoDir = path.join(tmp.dir, 'fifo');
    await fsp.mkdir(fifoDir, { recursive: true });
    const fifo = path.join(fifoDir, 'squad.json');
    await promisify(execFile)('mkfifo', [fifo]);
    // opening a FIFO without a writer would block forever
    await rejects(readQaData(fifo), /squad\.json: cannot read \(is a FIFO, not a regular file\)/);
    await rejects(readQaData(tmp.dir), /cannot read \(is a directory, not a regular file\)/);
    const big = path.join(tmp.dir, 'cifar-big');
    await writeCifar(big, 1);
    await fsp.truncate(path.join(big, 'test_batch.bin'), DATA_LIMITS.cifarBatch + 3073);
    await rejects(readClassificationData(big), /test_batch\.bin: cannot read \(too large: 614603073 bytes, more than the 614600000 accepted here\)/);
    assert.ok(performance.now() - t0 < 5000, 'bounded reads took too long');
  });

  it('the results log: header checked, a cut last line dropped, damage named', async () => {
    const file = path.join(tmp.dir, 'log.jsonl');
    const log = await ResultsLog.open<{ id: string; v: number }>(file, { a: 1 });
    await log.append([{ id: 'x', v: 1 }, { id: 'y', v: 2 }]);
    await log.close();
    await fsp.appendFile(file, '{"id": "z", "v"');
    const again = await ResultsLog.open<{ id: string; v: number }>(file, { a: 1 });
    assert.deepEqual([...again.done.keys()], ['x', 'y']);
    await again.append([{ id: 'z', v: 3 }]);
    await again.close();
    assert.equal((await fsp.readFile(file, 'utf8')).split('\n').filter(Boolean).length, 4);
    await rejects(ResultsLog.open(file, { a: 2 }), /log\.jsonl: these results were made with other settings \(a: 1 → 2\); use --restart/);
    const fresh = await ResultsLog.open(file, { a: 2 }, { restart: true });
    assert.equal(fresh.done.size, 0);
    await fresh.close();
    await fsp.writeFile(file, `${JSON.stringify({ settings: { a: 1 } })}\n{"id": "x"}\ngarbage\n`);
    await rejects(ResultsLog.open(file, { a: 1 }), /log\.jsonl:3: not valid JSON/);
  });
});

describe('evaluation runs with the small model', () => {
  let r: Rudolph;
  let modelDir: string;
  before(async () => {
    modelDir = path.join(tmp.dir, 'model');
    await writeSmallModel(modelDir);
    r = await Rudolph.fromPretrained(modelDir, { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(tmp.dir, 'cache'), threads: 1, batchSize: 4, upscaler: false });
  });
  after(async () => { await r?.release(); });

  it('classify: predictions are the classify task\'s, image by image; the report is their metrics', async () => {
    const data = await readClassificationData(path.join(tmp.dir, 'cifar'));
    const rep = await evalClassify(r, data, { limit: 10, batch: 3, resultsFile: path.join(tmp.dir, 'cls.jsonl') });
    const truth: number[] = [], pred: number[] = [];
    for (const item of data.items.slice(0, 10)) {
      const one = await r.classify({ image: await item.read(), classes: data.classes, template: 'на картинке изображено: {}' });
      truth.push(item.label);
      pred.push(one.label);
    }
    assert.deepEqual(rep.confusion, confusionMatrix(truth, pred, 10));
    close(rep.accuracy, pred.filter((p, i) => p === truth[i]).length / 10, 'accuracy');
    assert.equal(rep.count, 10);
    assert.equal(rep.template, 'на картинке изображено: {}');
  });

  it('an interrupted run resumes to the report of an uninterrupted one', async () => {
    const data = await readClassificationData(path.join(tmp.dir, 'cifar'));
    const whole = await evalClassify(r, data, { batch: 4, resultsFile: path.join(tmp.dir, 'whole.jsonl') });
    const file = path.join(tmp.dir, 'interrupted.jsonl');
    const controller = new AbortController();
    await assert.rejects(evalClassify(r, data, {
      batch: 4, resultsFile: file, signal: controller.signal,
      onProgress: (p) => { if (p.done >= 4) controller.abort(new Error('stop')); },
    }), AbortError);
    const kept = (await fsp.readFile(file, 'utf8')).trim().split('\n');
    assert.equal(kept.length, 1 + 4, 'the header and the first batch');
    const resumed = await evalClassify(r, data, { batch: 4, resultsFile: file });
    assert.equal(resumed.resumed, 4);
    assert.deepEqual({ ...resumed, resumed: 0 }, { ...whole, resumed: 0 });
    // other settings are refused
    await rejects(evalClassify(r, data, { batch: 4, resultsFile: file, template: 'это {}' }), /other settings \(template: "на картинке изображено: \{\}" → "это \{\}"\)/);
  });

  it('qa: answers from the official layout, scored by f1_score.py, the same in any batch size', async () => {
    const file = path.join(tmp.dir, 'qa.json');
    await fsp.writeFile(file, JSON.stringify({
      data: [{
        paragraphs: [
          { context: 'окунь живёт в озере', qas: [{ id: 'a', question: 'где?', answers: [{ text: 'в озере' }] }, { id: 'b', question: 'кто?', answers: [{ text: 'окунь' }] }] },
          { context: 'кот спит', qas: [{ id: 'c', question: 'что делает кот?', answers: [{ text: 'спит' }, { text: 'лежит' }] }] },
        ],
      }],
    }));
    const data = await readQaData(file);
    const one = await evalQa(r, data, { seed: 5, batch: 1, resultsFile: path.join(tmp.dir, 'qa1.jsonl') });
    const three = await evalQa(r, data, { seed: 5, batch: 3, resultsFile: path.join(tmp.dir, 'qa3.jsonl') });
    const lines = async (f: string) => (await fsp.readFile(path.join(tmp.dir, f), 'utf8')).trim().split('\n').slice(1).map((l) => JSON.parse(l) as { id: string; prediction: string; f1: number; em: number });
    const a = await lines('qa1.jsonl'), b = await lines('qa3.jsonl');
    assert.deepEqual(a, b);
    assert.deepEqual(a.map((l) => l.id), ['a', 'b', 'c']);
    for (const [i, l] of a.entries()) assert.deepEqual({ f1: l.f1, em: l.em }, scoreAnswer(data[i].answers, l.prediction));
    close(one.f1, a.reduce((s, l) => s + l.f1, 0) / 3, 'mean f1');
    assert.deepEqual(one, three);
    const other = await evalQa(r, data, { seed: 6, batch: 3, resultsFile: path.join(tmp.dir, 'qa6.jsonl') });
    assert.equal(other.seed, 6);
    // the small model's left text is 16 tokens (bos, <LT_TQA>, 13 BPE tokens, eos): these three
    // questions with their contexts are 17, 17 and 14 BPE tokens, so all are cut — and reported
    assert.equal(one.truncated, 3);
    assert.ok(a.every((l) => (l as { truncated?: boolean }).truncated === true));
    const short = [{ id: 's', context: 'кот', question: 'кто?', answers: ['кот'] }, data[2]];
    const cut = await evalQa(r, short, { seed: 5, batch: 2, resultsFile: path.join(tmp.dir, 'qa-short.jsonl') });
    assert.equal(cut.truncated, 1);
    const cutLines = (await fsp.readFile(path.join(tmp.dir, 'qa-short.jsonl'), 'utf8')).trim().split('\n').slice(1).map((l) => JSON.parse(l) as { id: string; truncated?: boolean });
    assert.deepEqual(cutLines.map((l) => [l.id, l.truncated ?? false]), [['s', false], ['c', true]]);
  });

  it('caption: each caption\'s perplexity as the classify task scores it', async () => {
    const items = await readCaptionData(path.join(tmp.dir, 'captions-run'));
    const rep = await evalCaptions(r, items, { batch: 2, resultsFile: path.join(tmp.dir, 'cap.jsonl') });
    const all: number[] = [];
    for (const it of items) all.push(...(await r.classify({ image: await it.read(), classes: it.captions, template: '{}' })).ppl);
    assert.equal(rep.captions, all.length);
    close(rep.meanPpl, all.reduce((a, b) => a + b, 0) / all.length, 'mean');
    assert.equal(rep.minPpl, Math.min(...all));
  });

  before(async () => {
    const dir = path.join(tmp.dir, 'captions-run');
    await fsp.mkdir(dir, { recursive: true });
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      await fsp.writeFile(path.join(dir, `${i}.png`), await encodePng(noiseImage(40 + i)));
      lines.push(JSON.stringify({ image: `${i}.png`, captions: ['на картинке кот', `картинка номер ${i}`] }));
    }
    await fsp.writeFile(path.join(dir, 'captions.jsonl'), `${lines.join('\n')}\n`);
  });
});

describe('rudolph eval (CLI)', () => {
  let CLI = '';
  let model: string[];
  before(async () => {
    CLI = await builtCli();
    const modelDir = path.join(tmp.dir, 'cli-model');
    await writeSmallModel(modelDir);
    model = ['--model', modelDir, '--tokenizer', SMALL_TOKENIZER, '--vqgan', TINY_VQGAN_DIR, '--cache-dir', path.join(tmp.dir, 'cli-cache'), '--threads', '1'];
  });
  const exec = promisify(execFile);
  async function rudolph(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, ...args], { maxBuffer: 16 << 20, env: { ...process.env, HF_HUB_OFFLINE: '1' } });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }

  it('classify writes the report, results and heat map; Ctrl-C keeps what is done and the rerun continues', async () => {
    const data = path.join(tmp.dir, 'cli-cifar');
    await writeCifar(data, 40);
    const out = path.join(tmp.dir, 'cli-eval');
    // interrupted once some results are on disk
    const child = spawn(process.execPath, [CLI, 'eval', 'classify', '--data', data, '--out', out, '--batch-size', '1', ...model], { env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const results = path.join(out, 'results.jsonl');
    for (let tries = 0; ; tries++) {
      const text = await fsp.readFile(results, 'utf8').catch(() => '');
      if (text.split('\n').length > 3) break;
      assert.ok(tries < 3000, `no results appeared: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /interrupted after \d+ of 40 items; the same command continues/);
    const done = (await fsp.readFile(results, 'utf8')).trim().split('\n').length - 1;
    assert.ok(done >= 2 && done < 40, `${done} results kept`);

    const r = await rudolph(['eval', 'classify', '--data', data, '--out', out, '--batch-size', '4', '--json', ...model]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { count: number; accuracy: number; resumed: number; confusion: number[][]; classes: string[]; macro: { f1: number } };
    assert.equal(report.count, 40);
    assert.equal(report.resumed, done);
    assert.deepEqual(report.classes.slice(0, 2), ['самолет', 'машина']);
    assert.equal(report.confusion.flat().reduce((a, b) => a + b, 0), 40);
    assert.deepEqual(JSON.parse(await fsp.readFile(path.join(out, 'report.json'), 'utf8')), report);
    const heat = await readImage(path.join(out, 'confusion.png'));
    assert.equal(heat.width, heat.height);
    // a fresh run gives the same figures
    const fresh = await rudolph(['eval', 'classify', '--data', data, '--out', path.join(tmp.dir, 'cli-eval-2'), '--json', ...model]);
    assert.deepEqual({ ...(JSON.parse(fresh.stdout) as object), resumed: done }, report);
    // the text report
    const text = await rudolph(['eval', 'classify', '--data', data, '--out', out, '--limit', '20', '--restart', ...model]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /precision\s+recall\s+f1-score\s+support/);
    assert.match(text.stdout, /accuracy \d\.\d{3} · macro F1 \d\.\d{3} · 20 images \(cifar10-binary\)/);
  });

  it('bad data and bad options exit 2 naming the problem; qa and caption run', async () => {
    const cut = path.join(tmp.dir, 'cli-cut');
    await writeCifar(cut, 2);
    await fsp.truncate(path.join(cut, 'test_batch.bin'), 3000);
    const bad = await rudolph(['eval', 'classify', '--data', cut, '--out', path.join(tmp.dir, 'x'), ...model]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /test_batch\.bin: 3000 bytes/);
    const noData = await rudolph(['eval', 'qa', ...model]);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /--data/);
    const qa = await rudolph(['eval', 'qa', '--data', path.join(tmp.dir, 'qa.json'), '--out', path.join(tmp.dir, 'cli-qa'), '--seed', '5', '--json', ...model]);
    assert.equal(qa.code, 0, qa.stderr);
    const qaReport = JSON.parse(qa.stdout) as { count: number; f1: number; exactMatch: number };
    assert.equal(qaReport.count, 3);
    assert.ok(qaReport.f1 >= 0 && qaReport.f1 <= 1);
    const cap = await rudolph(['eval', 'caption', '--data', path.join(tmp.dir, 'captions-run'), '--out', path.join(tmp.dir, 'cli-cap'), ...model]);
    assert.equal(cap.code, 0, cap.stderr);
    assert.match(cap.stdout, /mean perplexity \d+\.\d{3} \(median \d+\.\d{3}, 6 captions of 3 images\)/);
  });
});
