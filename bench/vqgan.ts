/**
 * VQGAN benchmark: the full Sber-VQGAN config with random weights built in memory; session
 * build time, encode 128×128 → 16×16 and decode 16×16 → 128×128 (batch 1, median of several
 * runs after a warm-up), peak RSS. Reference (RUNTIME.md, official PyTorch on this machine
 * kind): decode 0.63 s, encode 0.45 s.
 */
import { SBER_VQGAN_CONFIG } from '../src/vqgan/config.js';
import { Vqgan } from '../src/vqgan/vqgan-model.js';
import { randomVqganStateDict } from '../src/vqgan/weights.js';

export interface VqganBenchOptions { size?: number; reps?: number; threads?: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timeIt(reps: number, fn: () => Promise<unknown>): Promise<{ median: number; min: number }> {
  await fn(); // warm-up: first runs allocate and pick kernels
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await fn();
    times.push((performance.now() - s) / 1000);
  }
  return { median: median(times), min: Math.min(...times) };
}

export async function benchVqgan(opts: VqganBenchOptions = {}): Promise<Record<string, number>> {
  const size = opts.size ?? 128;
  const reps = opts.reps ?? 5;
  const cfg = { ...SBER_VQGAN_CONFIG, chMult: [...SBER_VQGAN_CONFIG.chMult], attnResolutions: [...SBER_VQGAN_CONFIG.attnResolutions] };
  const t0 = performance.now();
  const sd = randomVqganStateDict(cfg, 3);
  const t1 = performance.now();
  const model = await Vqgan.fromWeights(cfg, sd, { threads: opts.threads });
  sd.clear();
  const t2 = performance.now();

  let s = 12345;
  const image = { width: size, height: size, data: new Uint8Array(size * size * 3).map(() => (s = (s * 1103515245 + 12345) >>> 0) >>> 24) };
  const n = size / model.factor;
  const ids = Int32Array.from({ length: n * n }, (_, i) => (i * 2654435761) % cfg.nEmbed);

  const enc = await timeIt(reps, () => model.encode([image]));
  const dec = await timeIt(reps, () => model.decode(ids, 1));
  const result: Record<string, number> = {
    image_size: size,
    random_weights_s: (t1 - t0) / 1000,
    session_build_s: (t2 - t1) / 1000,
    encode_s: enc.median,
    encode_min_s: enc.min,
    decode_s: dec.median,
    decode_min_s: dec.min,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  await model.release();
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchVqgan({
    size: Number(process.env.VQGAN_SIZE ?? 128),
    reps: Number(process.env.VQGAN_REPS ?? 5),
    threads: process.env.VQGAN_THREADS ? Number(process.env.VQGAN_THREADS) : undefined,
  }), null, 1));
}
