import { RedisServer, smallModelFolder, startFront, startWorkerProcess } from '/work/wt-cluster/test/cluster-fixture.ts';
import { postJson, request, testPngBase64 } from '/work/wt-cluster/test/server-fixture.ts';
const redis = await RedisServer.start();
const m = await smallModelFolder();
const t0 = performance.now();
const [front, worker] = await Promise.all([startFront(redis.url, m), startWorkerProcess(redis.url, m, ['--concurrency', '4'])]);
console.log('started in', performance.now() - t0, front.url);
try {
  const png = await testPngBase64();
  const r = await postJson(`${front.url}/v1/classify`, { image: png, classes: ['a', 'b'] });
  console.log(r.status, JSON.stringify(r.body).slice(0, 300), r.ms);
  const d = await postJson(`${front.url}/v1/dream`, { text: 'кошка', candidates: 2, seed: 1 });
  console.log(d.status, JSON.stringify(d.body).slice(0, 200), d.ms);
  const j = await postJson<{id:string}>(`${front.url}/v1/jobs`, { task: 'text', input: { template: 'лес', count: 4 } });
  console.log(j.status, j.body);
  await new Promise((r) => setTimeout(r, 1500));
  console.log(JSON.stringify((await request(`${front.url}/v1/jobs/${j.body.id}`)).body).slice(0, 300));
  console.log(JSON.stringify((await request(`${front.url}/v1/health`)).body));
  console.log(JSON.stringify((await request(`${front.url}/v1/info`)).body).slice(0, 200));
  const times: number[] = [];
  for (let i = 0; i < 20; i++) times.push((await postJson(`${front.url}/v1/classify`, { image: png, classes: ['a', 'b'] })).ms);
  console.log('classify ms', times.map((x) => x.toFixed(1)).join(' '));
} finally {
  await Promise.all([front.stop(), worker.stop()]);
  console.log(worker.stderr.slice(-5).join('\n'));
  await redis.close(); await m.cleanup();
}
