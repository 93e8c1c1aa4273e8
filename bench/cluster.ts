/**
 * Cluster mode (issue 14) on the small random model, with a real redis-server, one front and
 * 1 or 2 workers (one onnxruntime thread each) as separate processes:
 * - jobs/s and p50/p95 latency of synchronous classify and dream requests from concurrent
 *   clients, with batching off (--concurrency 1) and on (--concurrency 8);
 * - HTTP + queue overhead per job: p50 of POST /v1/classify through the front (sequential
 *   calls, one worker) minus p50 of the direct facade call, alternated. Target ≤ 10 ms.
 * Run under the heavy lock: `flock /work/heavy.lock npm run bench -- cluster`.
 */
import { Rudolph } from '../src/rudolph.js';
import { encodePng } from '../src/runtime/node/index.js';
import { RedisServer, type RudolphProcess, smallModelFolder, startFront, startWorkerProcess } from '../test/cluster-fixture.js';
import { SMALL_TOKENIZER, TINY_VQGAN_DIR } from '../test/fixtures.js';
import { testImage } from '../test/server-fixture.js';

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function post(url: string, body: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return performance.now() - t;
}

/** `total` requests from `clients` concurrent loops: jobs/s and latency quantiles. */
async function load(url: string, bodies: string[], total: number, clients: number) {
  const times: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < total) {
      const i = next++;
      times.push(await post(url, bodies[i % bodies.length]));
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { jobs_per_s: total / seconds, p50_ms: quantile(times, 0.5), p95_ms: quantile(times, 0.95) };
}

export async function benchCluster(): Promise<Record<string, number | string>> {
  const [redis, model] = await Promise.all([RedisServer.start(), smallModelFolder()]);
  const out: Record<string, number | string> = {};
  const workers: RudolphProcess[] = [];
  const front = await startFront(redis.url, model, ['--max-queue', '1000']);
  try {
    const image = testImage();
    const png = (await encodePng(image)).toString('base64');
    const classes = Array.from({ length: 24 }, (_, i) => `к${i}`);
    const classify = Array.from({ length: 8 }, (_, i) => JSON.stringify({ image: png, classes, template: `${i} {}` }));
    const dream = Array.from({ length: 8 }, (_, i) => JSON.stringify({ text: `кошка ${i}`, candidates: 4, seed: i }));

    // overhead over the direct facade call (one worker, sequential)
    workers.push(await startWorkerProcess(redis.url, model, [], 'worker 1'));
    const direct = await Rudolph.fromPretrained(model.dir, { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: model.cacheDir, threads: 1 });
    const body = JSON.stringify({ image: png, classes: ['кошка', 'собака', 'дом', 'машина'] });
    const viaFacade = async () => { const t = performance.now(); await direct.classify({ image, classes: ['кошка', 'собака', 'дом', 'машина'] }); return performance.now() - t; };
    const facade: number[] = [], http: number[] = [];
    for (let i = 0; i < 20; i++) { await viaFacade(); await post(`${front.url}/v1/classify`, body); }
    for (let i = 0; i < 200; i++) { facade.push(await viaFacade()); http.push(await post(`${front.url}/v1/classify`, body)); }
    await direct.release();
    out.classify_facade_p50_ms = quantile(facade, 0.5);
    out.classify_cluster_p50_ms = quantile(http, 0.5);
    out.classify_cluster_overhead_p50_ms = quantile(http, 0.5) - quantile(facade, 0.5);
    out.classify_cluster_overhead_paired_p50_ms = quantile(http.map((h, i) => h - facade[i]), 0.5);
    await Promise.all(workers.splice(0).map((w) => w.stop()));

    for (const n of [1, 2]) {
      for (const batching of [false, true]) {
        const extra = batching ? ['--concurrency', '8'] : ['--concurrency', '1'];
        for (let i = 0; i < n; i++) workers.push(await startWorkerProcess(redis.url, model, extra, `worker ${i + 1}`));
        const tag = `${n}w_${batching ? 'batch' : 'nobatch'}`;
        await load(`${front.url}/v1/classify`, classify, 16, 8);
        for (const [task, bodies, total] of [['classify', classify, 160], ['dream', dream, 48]] as const) {
          const r = await load(`${front.url}/v1/${task}`, bodies, total, 16);
          out[`${task}_${tag}_jobs_per_s`] = r.jobs_per_s;
          out[`${task}_${tag}_p50_ms`] = r.p50_ms;
          out[`${task}_${tag}_p95_ms`] = r.p95_ms;
        }
        await Promise.all(workers.splice(0).map((w) => w.stop()));
      }
    }
    out.note = 'small random model; 16 concurrent clients; classify 24 classes, dream 4 candidates; dream has no batched form yet (its batching rows equal its no-batching ones)';
    return out;
  } finally {
    await Promise.all([front, ...workers].map((p) => p.stop()));
    await redis.close();
    await model.cleanup();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await benchCluster(), null, 1));
}
