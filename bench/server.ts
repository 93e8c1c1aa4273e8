/**
 * HTTP overhead (issue 7): p50 latency of POST /v1/classify (base64 PNG in, JSON out, over
 * loopback, through the job queue and the worker thread) against the direct facade call on an
 * already-decoded image, on the small random model. Calls alternate so drift hits both alike.
 * Target: overhead ≤ 5 ms.
 */
import { Rudolph } from '../src/rudolph.js';
import { encodePng } from '../src/runtime/node/index.js';
import { startServer } from '../src/server/serve.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from '../test/fixtures.js';
import { testImage } from '../test/server-fixture.js';

export interface ServerBenchOptions { iterations?: number; warmup?: number; threads?: number }

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function benchServer(opts: ServerBenchOptions = {}): Promise<Record<string, number>> {
  const iterations = opts.iterations ?? 200;
  const warmup = opts.warmup ?? 20;
  const { dir, cleanup } = await tempDir('rudolph-bench-server-');
  try {
    await writeSmallModel(dir);
    const load = { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: `${dir}/cache`, threads: opts.threads };
    const direct = await Rudolph.fromPretrained(dir, load);
    const server = await startServer({ model: dir, ...load, port: 0, handleSignals: false });
    try {
      const image = testImage();
      const classes = ['кошка', 'собака', 'дом', 'машина'];
      const body = JSON.stringify({ image: (await encodePng(image)).toString('base64'), classes });
      const viaHttp = async () => {
        const res = await fetch(`${server.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        await res.json();
      };
      const viaFacade = () => direct.classify({ image, classes });
      const time = async (f: () => Promise<unknown>) => { const t = performance.now(); await f(); return performance.now() - t; };

      for (let i = 0; i < warmup; i++) { await viaFacade(); await viaHttp(); }
      const facade: number[] = [], http: number[] = [];
      for (let i = 0; i < iterations; i++) {
        facade.push(await time(viaFacade));
        http.push(await time(viaHttp));
      }
      const facadeP50 = median(facade), httpP50 = median(http);
      return {
        iterations,
        classify_facade_p50_ms: facadeP50,
        classify_http_p50_ms: httpP50,
        classify_http_overhead_p50_ms: httpP50 - facadeP50,
        classify_http_overhead_paired_p50_ms: median(http.map((h, i) => h - facade[i])),
      };
    } finally {
      await server.close();
      await direct.release();
    }
  } finally {
    await cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchServer({ iterations: Number(process.env.ITERATIONS ?? 200) }), null, 1));
}
