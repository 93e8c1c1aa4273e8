/**
 * Real-ESRGAN ×4 at full size (64 features, 23 blocks, growth 32: the hub's RealESRGAN_x4.pth
 * layout) with seeded random weights written as a real torch `.pth`, then opened from that file
 * like a downloaded one: open time, `upscale` of a 128×128 image with the official defaults
 * (one 240×240 patch → 512×512), peak RSS, and the network's multiply-add count. The official
 * PyTorch `predict` cannot run here (no torch), so there is no reference figure.
 *
 *   npm run bench -- upscale        UPSCALE_REPS=3 UPSCALE_THREADS=2 UPSCALE_SCALE=4 UPSCALE_SIZE=128
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { saveTorchCheckpoint } from '../src/io/torch-writer.js';
import { numel } from '../src/tensor.js';
import {
  checkScale, DEFAULT_TILING, patchGrid, randomRrdbNetStateDict, realEsrganConfig, rrdbNetParameterCount, rrdbNetParameterSpecs,
  Upscaler, type RrdbNetConfig,
} from '../src/upscale/index.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Multiply-adds of one network call on a side×side input: Σ over convs of out·in·9·(output pixels). */
export function rrdbNetMacs(cfg: RrdbNetConfig, side: number): number {
  const r = cfg.scale === 2 ? 2 : 1;
  let macs = 0;
  for (const spec of rrdbNetParameterSpecs(cfg)) {
    if (spec.shape.length !== 4) continue;
    const up = /^conv_up(\d)/.exec(spec.name);
    // the trunk runs at side / r; conv_up_k at 2^k times that; conv_hr and conv_last at the output size
    const level = up ? Number(up[1]) : /^conv_(hr|last)/.test(spec.name) ? (cfg.scale === 8 ? 3 : 2) : 0;
    const pixels = ((side / r) * 2 ** level) ** 2;
    macs += numel(spec.shape) * pixels;
  }
  return macs;
}

export async function benchUpscale(opts: { size?: number; reps?: number; threads?: number; scale?: number } = {}): Promise<Record<string, number | string>> {
  const size = opts.size ?? 128;
  const reps = opts.reps ?? 3;
  const scale = checkScale(opts.scale ?? 4);
  const cfg = realEsrganConfig(scale);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rudolph-upscale-bench-'));
  try {
    const file = path.join(dir, `RealESRGAN_x${scale}.pth`);
    const t0 = performance.now();
    await saveTorchCheckpoint(file, randomRrdbNetStateDict(cfg, 5));
    const t1 = performance.now();
    const rssBeforeOpen = process.memoryUsage().rss;
    const up = await Upscaler.fromCheckpoint(file, { scale, threads: opts.threads });
    const t2 = performance.now();

    let s = 12345;
    const image = { width: size, height: size, data: new Uint8Array(size * size * 3).map(() => (s = (s * 1103515245 + 12345) >>> 0) >>> 24) };
    const times: number[] = [];
    let out = { width: 0, height: 0 };
    for (let i = 0; i < reps + 1; i++) {
      const a = performance.now();
      out = await up.upscale(image);
      times.push((performance.now() - a) / 1000);
    }
    await up.release();
    const padded = size + 2 * DEFAULT_TILING.padSize;
    const grid = patchGrid(padded, padded, DEFAULT_TILING);
    const patches = grid.rows * grid.cols;
    const macs = rrdbNetMacs(cfg, grid.side) * patches;
    const steady = median(times.slice(1));
    return {
      scale,
      image: `${size}×${size} → ${out.width}×${out.height}`,
      patches,
      params: rrdbNetParameterCount(cfg),
      checkpoint_mb: (await stat(file)).size / 2 ** 20,
      write_checkpoint_s: (t1 - t0) / 1000,
      open_s: (t2 - t1) / 1000,
      first_upscale_s: times[0],
      upscale_s: steady,
      upscale_min_s: Math.min(...times.slice(1)),
      gmacs: macs / 1e9,
      gflops_per_s: (2 * macs / 1e9) / steady,
      rss_before_open_mb: rssBeforeOpen / 2 ** 20,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
      threads: opts.threads ?? 0,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
  console.log(JSON.stringify(await benchUpscale({
    size: env('UPSCALE_SIZE'), reps: env('UPSCALE_REPS'), threads: env('UPSCALE_THREADS'), scale: env('UPSCALE_SCALE'),
  }), null, 1));
}
