/**
 * `rudolph eval classify` on the 350M preset with random weights (issue 15): CIFAR-sized
 * images (random pixels, 10 classes, the official template) classified one image per batch and
 * eight per batch (`runMany`: the [left | image] prefixes of a batch in one model call, every class
 * row of every image in shared calls) → images/s and the projected time of the official 1001-image
 * run; the predictions of both must agree. Then streamed text: `generateText` with and without
 * `onToken` (the cost of decoding every candidate's text at every step).
 *
 *   node --import tsx --import ./test/setup.ts bench/eval.ts [--precision int8|fp32|q4] [--images 24]
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { evalClassify } from '../src/eval/classify.js';
import type { ClassificationData } from '../src/eval/datasets.js';
import type { LinearPrecision } from '../src/model/graph-context.js';
import { buildRudolphGraph } from '../src/model/rudolph-graph.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { randomWeights } from '../src/model/weights.js';
import { PRESET_NAMES, presetConfig } from '../src/presets.js';
import { Rudolph } from '../src/rudolph.js';
import { saveGraph } from '../src/runtime/node/graph-files.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { Rng } from '../src/util/random.js';
import { randomVqganStateDict, SBER_VQGAN_CONFIG, Vqgan } from '../src/vqgan/index.js';
import { TOKENIZER_DIR } from '../test/helpers.js';

const CLASSES = ['самолет', 'машина', 'птица', 'кот', 'олень', 'собака', 'лягушка', 'лошадь', 'корабль', 'грузовик'];

export async function benchEval(precision: LinearPrecision, images: number): Promise<Record<string, number | string | boolean>> {
  const cfg = presetConfig('350M');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-eval-bench-'));
  try {
    await saveGraph(buildRudolphGraph(cfg, randomWeights(cfg, 5), { precision }), dir);
    const model = await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), { precision });
    const vqgan = await Vqgan.fromWeights(SBER_VQGAN_CONFIG, randomVqganStateDict(SBER_VQGAN_CONFIG, 3));
    const tokenizer = (await YttmTokenizer.fromFile(path.join(TOKENIZER_DIR, 'bpe-16384.model'))).asTextTokenizer();
    const batchSize = 8;
    const r = new Rudolph({
      model, cfg, tokenizer, vqgan, batchSize,
      info: {
        source: 'random 350M', config: cfg.params, specialTokens: cfg.specialTokens, presets: PRESET_NAMES,
        files: { weights: '', tokenizer: '', vqgan: null, converted: dir, adapters: [] }, cacheDir: dir,
        runtime: { name: 'node', onnxruntime: '', executionProviders: ['cpu'], threads: 'auto', precision }, batchSize,
      },
    });
    const rng = new Rng(11);
    const data: ClassificationData = {
      layout: 'cifar10-binary', classes: CLASSES,
      items: Array.from({ length: images }, (_, i) => {
        const pixels = new Uint8Array(32 * 32 * 3);
        for (let j = 0; j < pixels.length; j++) pixels[j] = Math.floor(rng.next() * 256);
        return { id: `#${i}`, label: i % 10, read: async () => ({ width: 32, height: 32, data: pixels }) };
      }),
    };
    const run = async (batch: number) => {
      const t0 = performance.now();
      const rep = await evalClassify(r, data, { batch, resultsFile: path.join(dir, `b${batch}.jsonl`) });
      return { seconds: (performance.now() - t0) / 1000, rep };
    };
    const one = await run(1);
    const eight = await run(8);
    const lines = async (b: number) => (await fsp.readFile(path.join(dir, `b${b}.jsonl`), 'utf8')).trim().split('\n').slice(1).map((l) => (JSON.parse(l) as { predicted: number }).predicted);
    const agree = JSON.stringify(await lines(1)) === JSON.stringify(await lines(8));

    // streamed text: the same generation with and without a token listener
    const textOptions = { template: 'вопрос: что такое радуга? ответ:', count: 8, earlyStop: 40, seed: 3 };
    let t = performance.now();
    const plain = await r.generateText(textOptions);
    const plainS = (performance.now() - t) / 1000;
    let tokens = 0;
    t = performance.now();
    const streamed = await r.generateText({ ...textOptions, onToken: () => { tokens++; } });
    const streamedS = (performance.now() - t) / 1000;
    await r.release();
    return {
      preset: '350M', precision, images, classes: CLASSES.length, batch_size: batchSize,
      classify_batch1_images_per_s: images / one.seconds,
      classify_batch8_images_per_s: images / eight.seconds,
      classify_batch8_speedup: one.seconds / eight.seconds,
      projected_1001_images_batch8_min: (1001 / (images / eight.seconds)) / 60,
      predictions_agree: agree,
      text_plain_s: plainS,
      text_streamed_s: streamedS,
      text_streamed_tokens: tokens,
      text_same_result: JSON.stringify(plain) === JSON.stringify(streamed),
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { precision: { type: 'string', default: 'int8' }, images: { type: 'string', default: '24' } } });
  console.log(JSON.stringify(await benchEval(values.precision as LinearPrecision, Number(values.images)), null, 1));
}
