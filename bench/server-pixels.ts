/**
 * The issue-11 case: rank-images with 12 copies of a 10000×10000 PNG (one request, a few MB of
 * body) against a server with the small random model, in this process. Reports the answer, the
 * time, the process's peak RSS over the request (VmHWM reset before it) and the RSS after it.
 * BENCH_MAX_PIXELS sets ServeOptions.maxPixels (today: decoded pixels per request; before
 * issue 11: per image), default the server's default.
 */
import path from 'node:path';
import sharp from 'sharp';
import { peakMemory, rssMB } from '../fuzz/lib/memory.js';
import { startServer } from '../src/server/serve.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from '../test/fixtures.js';

const SIDE = 10_000;
const COPIES = 12;
const maxPixels = process.env.BENCH_MAX_PIXELS ? Number(process.env.BENCH_MAX_PIXELS) : undefined;

const { dir, cleanup } = await tempDir('rudolph-bench-pixels-');
try {
  await writeSmallModel(dir);
  const png = await sharp({ create: { width: SIDE, height: SIDE, channels: 3, background: { r: 200, g: 60, b: 30 } } }).png({ compressionLevel: 9 }).toBuffer();
  const body = JSON.stringify({ text: 'кот', images: Array(COPIES).fill(png.toString('base64')) });
  const server = await startServer({
    model: dir, tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(dir, 'cache'), port: 0, handleSignals: false,
    threads: 1, batchSize: 1, maxPixels,
  });
  try {
    (globalThis as { gc?: () => void }).gc?.();
    const before = rssMB();
    const memory = peakMemory();
    const t0 = performance.now();
    const res = await fetch(`${server.url}/v1/rank-images`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const answer = await res.text();
    const seconds = (performance.now() - t0) / 1000;
    const peakGrowthMB = memory.growthMB();
    const afterMB = rssMB();
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 1000));
    console.log(JSON.stringify({
      maxPixels: maxPixels ?? 'default', pngBytes: png.length, bodyBytes: body.length, status: res.status, answer: answer.slice(0, 200), seconds,
      rssBeforeMB: Math.round(before), peakGrowthMB: Math.round(peakGrowthMB), rssAfterMB: Math.round(afterMB), rssAfterGcMB: Math.round(rssMB()),
    }, null, 1));
  } finally {
    await server.close();
  }
} finally {
  await cleanup();
}
