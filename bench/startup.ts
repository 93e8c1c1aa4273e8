/**
 * Start-up cost of a 350M-size model (issue 5): a random-weight checkpoint written in the official
 * torch format, then `Rudolph.fromPretrained` in a fresh process twice — the first load (hash +
 * conversion into the converted-model cache + open) and the second (cache hit: open by path).
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import { configToJson } from '../src/model/config.js';
import { parameterSpecs, randomWeights } from '../src/model/weights.js';
import { presetConfig } from '../src/presets.js';
import { Rudolph } from '../src/rudolph.js';
import type { StateDict } from '../src/tensor.js';
import { TOKENIZER_DIR } from '../test/helpers.js';

const self = fileURLToPath(import.meta.url);

async function child(dir: string): Promise<void> {
  const t0 = performance.now();
  const r = await Rudolph.fromPretrained(path.join(dir, 'model'), { tokenizer: path.join(TOKENIZER_DIR, 'bpe-16384.model'), vqgan: false, cacheDir: path.join(dir, 'cache') });
  const open = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await r.generateText({ template: 'привет', count: 1, earlyStop: 4, seed: 1 });
  const firstTask = (performance.now() - t1) / 1000;
  process.stdout.write(`${JSON.stringify({ open_s: open, first_task_s: firstTask, peak_rss_mb: process.resourceUsage().maxRSS / 1024 })}\n`);
  await r.release();
}

export async function benchStartup(): Promise<Record<string, number>> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-startup-'));
  try {
    const cfg = presetConfig('350M');
    const weights = randomWeights(cfg, 2);
    const sd: StateDict = new Map();
    for (const spec of parameterSpecs(cfg)) sd.set(spec.name, { dtype: 'float32', shape: spec.shape, data: weights.get(spec.name)! });
    await fsp.mkdir(path.join(dir, 'model'));
    await saveTorchCheckpoint(path.join(dir, 'model', 'pytorch_model.bin'), sd);
    await fsp.writeFile(path.join(dir, 'model', 'config.json'), JSON.stringify(configToJson(cfg)));
    weights.clear();
    sd.clear();
    const runChild = () => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', self, 'child', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!) as Record<string, number>;
    const first = runChild();
    const second = runChild();
    return {
      first_open_s: first.open_s, first_peak_rss_mb: first.peak_rss_mb,
      second_open_s: second.open_s, second_first_task_s: second.first_task_s, second_peak_rss_mb: second.peak_rss_mb,
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  if (process.argv[2] === 'child') await child(process.argv[3]);
  else console.log(JSON.stringify(await benchStartup(), null, 1));
}
