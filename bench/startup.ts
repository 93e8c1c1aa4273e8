/**
 * Start-up cost per preset (issues 5 and 15 §4): random-weight checkpoints written like the hub's
 * files (RUDOLPH fp16 Half storages + Bool masks, the Sber VQGAN fp32 with its loss modules; see
 * hub-checkpoints.ts), then `Rudolph.fromPretrained` with that model folder and VQGAN in a fresh
 * process twice: the first start (sha256 of the checkpoint + conversion into the converted-model
 * cache + open) and the second (cache hit: open by path), each with its peak RSS and the time of a
 * first short task. The VQGAN alone is measured once too (it is read whole at every start).
 * Each preset's files are deleted before the next is written.
 *
 *   npm run bench -- startup                                     (350M)
 *   STARTUP_PRESETS=350M,350M-v1,1.3B,2.7B npx tsx bench/startup.ts
 *   STARTUP_DTYPE=float32 …                                      (fp32 checkpoints, as `finetune` exports)
 */
import '../src/runtime/node/index.js'; // also its own child processes: register the Node runtime
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configToJson } from '../src/model/config.js';
import { isPresetName, presetConfig, type PresetName } from '../src/presets.js';
import { loadVqgan } from '../src/pretrained/vqgan-files.js';
import { Rudolph } from '../src/rudolph.js';
import { TOKENIZER_DIR } from '../test/helpers.js';
import { type FloatDType, writeRudolphCheckpoint, writeVqganCheckpoint } from './hub-checkpoints.js';

const self = fileURLToPath(import.meta.url);

async function child(mode: string, dir: string): Promise<void> {
  const t0 = performance.now();
  if (mode === 'vqgan') {
    const v = await loadVqgan(path.join(dir, 'vqgan.gumbelf8-sber.model.ckpt'));
    const open = (performance.now() - t0) / 1000;
    process.stdout.write(`${JSON.stringify({ open_s: open, peak_rss_mb: process.resourceUsage().maxRSS / 1024 })}\n`);
    await v.release();
    return;
  }
  const r = await Rudolph.fromPretrained(path.join(dir, 'model'), {
    tokenizer: path.join(TOKENIZER_DIR, 'bpe-16384.model'), vqgan: path.join(dir, 'vqgan.gumbelf8-sber.model.ckpt'), cacheDir: path.join(dir, 'cache'),
  });
  const open = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await r.generateText({ template: 'привет', count: 1, earlyStop: 4, seed: 1 });
  const firstTask = (performance.now() - t1) / 1000;
  process.stdout.write(`${JSON.stringify({ open_s: open, first_task_s: firstTask, peak_rss_mb: process.resourceUsage().maxRSS / 1024 })}\n`);
  await r.release();
}

const runChild = (mode: string, dir: string) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', self, 'child', mode, dir], {
  encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
}).trim().split('\n').at(-1)!) as Record<string, number>;

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += (await fsp.stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

export async function benchStartup(opts: { presets?: PresetName[]; dtype?: FloatDType; log?: (m: string) => void } = {}): Promise<Record<string, number>> {
  const presets = opts.presets ?? ['350M'];
  const dtype = opts.dtype ?? 'float16';
  const log = opts.log ?? (() => undefined);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'rudolph-startup-'));
  const out: Record<string, number> = {};
  try {
    const vqgan = path.join(dir, 'vqgan.gumbelf8-sber.model.ckpt');
    await writeVqganCheckpoint(vqgan, 3);
    out.vqgan_checkpoint_mb = (await fsp.stat(vqgan)).size / 1e6;
    const v = runChild('vqgan', dir);
    out.vqgan_open_s = v.open_s;
    out.vqgan_peak_rss_mb = v.peak_rss_mb;
    for (const preset of presets) {
      const cfg = presetConfig(preset);
      const model = path.join(dir, 'model');
      await fsp.mkdir(model);
      log(`${preset}: writing a ${dtype} checkpoint`);
      const t0 = performance.now();
      await writeRudolphCheckpoint(path.join(model, 'pytorch_model.bin'), cfg, { dtype, seed: 2 });
      out[`${preset}_write_s`] = (performance.now() - t0) / 1000;
      out[`${preset}_checkpoint_mb`] = (await fsp.stat(path.join(model, 'pytorch_model.bin'))).size / 1e6;
      await fsp.writeFile(path.join(model, 'config.json'), JSON.stringify(configToJson(cfg)));
      log(`${preset}: first start`);
      const first = runChild('model', dir);
      log(`${preset}: second start`);
      const second = runChild('model', dir);
      out[`${preset}_converted_mb`] = (await du(path.join(dir, 'cache'))) / 1e6;
      Object.assign(out, {
        [`${preset}_first_open_s`]: first.open_s, [`${preset}_first_peak_rss_mb`]: first.peak_rss_mb,
        [`${preset}_second_open_s`]: second.open_s, [`${preset}_second_peak_rss_mb`]: second.peak_rss_mb,
        [`${preset}_second_first_task_s`]: second.first_task_s,
      });
      log(JSON.stringify(out));
      await fsp.rm(model, { recursive: true, force: true });
      await fsp.rm(path.join(dir, 'cache'), { recursive: true, force: true });
    }
    return out;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  if (process.argv[2] === 'child') {
    await child(process.argv[3], process.argv[4]);
  } else {
    const presets = (process.env.STARTUP_PRESETS ?? '350M').split(',').map((p) => p.trim());
    const bad = presets.filter((p) => !isPresetName(p));
    if (bad.length) throw new Error(`STARTUP_PRESETS: unknown preset(s) ${bad.join(', ')}`);
    const dtype = (process.env.STARTUP_DTYPE ?? 'float16') as FloatDType;
    if (dtype !== 'float16' && dtype !== 'float32') throw new Error('STARTUP_DTYPE must be float16 or float32');
    console.log(JSON.stringify(await benchStartup({ presets: presets as PresetName[], dtype, log: (m) => process.stderr.write(`${m}\n`) }), null, 1));
  }
}
