/**
 * A full sampled generation in a fresh process (issue 16), run by bench/model.ts: opens the graph
 * folder it is given, then generates one image's 256 tokens at batch 1 (prefill + sampling with
 * the official image sampling settings) three times with one seed, timing each whole call.
 * Also the process's memory before and after opening the graph: a user's process that opens a
 * converted model holds only that (the bench's own process also converted the weights before).
 *
 *   node --import tsx bench/generate.ts <graph folder> <precision> [threads]
 */
import '../src/runtime/node/index.js'; // a child process of its own: register the Node runtime
import path from 'node:path';
import type { LinearPrecision } from '../src/model/graph-context.js';
import { RudolphModel } from '../src/model/rudolph-model.js';
import { presetConfig } from '../src/presets.js';
import { generateImageTokens } from '../src/tasks/image-tokens.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { TOKENIZER_DIR } from '../test/helpers.js';
import { rssMB, statusKB } from '../fuzz/lib/memory.js';

const [dir, precision, threads] = process.argv.slice(2);
const cfg = presetConfig('350M');
const memory = () => ({ rss_mb: rssMB(), anon_mb: (statusKB('RssAnon') ?? NaN) / 1024, file_mb: (statusKB('RssFile') ?? NaN) / 1024 });
/** What this script prints (bench/model.ts reads it). */
export type GenerateReport = { tokens: number; runs_s: number[]; memory: { before_open: ReturnType<typeof memory>; after_build: ReturnType<typeof memory> } };
const beforeOpen = memory();
const model = await RudolphModel.fromGraphFile(cfg, path.join(dir, 'model.onnx'), { precision: precision as LinearPrecision, threads: threads ? Number(threads) : undefined });
const afterBuild = memory();
const tokenizer = (await YttmTokenizer.fromFile(path.join(TOKENIZER_DIR, 'bpe-16384.model'))).asTextTokenizer();
const ctx = { model, cfg, tokenizer, batchSize: 1 };
const runs: number[] = [];
let first: Int32Array | null = null;
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const { codebooks } = await generateImageTokens(ctx, { text: 'рыжий кот на подоконнике', count: 1, seed: 1 });
  runs.push((performance.now() - t0) / 1000);
  if (first && codebooks[0].some((v, j) => v !== first![j])) throw new Error('generation is not reproducible for one seed');
  first = codebooks[0];
}
await model.release();
const report: GenerateReport = { tokens: cfg.imageLength, runs_s: runs, memory: { before_open: beforeOpen, after_build: afterBuild } };
console.log(JSON.stringify(report));
