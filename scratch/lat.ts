import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { RedisServer, smallModelFolder, startFront, startWorkerProcess } from '../test/cluster-fixture.js';
import { testPngBase64 } from '../test/server-fixture.js';
const redis = await RedisServer.start();
const m = await smallModelFolder();
const [a, w] = await Promise.all([startFront(redis.url, m), startWorkerProcess(redis.url, m)]);
const c = new Redis(redis.url, { maxRetriesPerRequest: null });
const qn = (w.lines.find((l) => l.msg === 'worker ready') as { queue: string }).queue;
const q = new Queue(qn, { connection: c, prefix: 'rudolph' });
try {
  const png = await testPngBase64();
  const body = JSON.stringify({ task: 'classify', input: { image: png, classes: ['кошка', 'собака', 'дом', 'машина'] } });
  const sbody = JSON.stringify({ image: png, classes: ['кошка', 'собака', 'дом', 'машина'] });
  for (let i = 0; i < 30; i++) {
    const t0 = Date.now(); const p0 = performance.now();
    const r = await fetch(`${a.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sbody });
    await r.text();
    const t1 = performance.now();
    const jobs = await q.getJobs(['completed'], 0, 0);
    const j = jobs[0];
    if (i >= 20) console.log(`total ${(t1 - p0).toFixed(1)}  submit→added ${j.timestamp - t0}  added→active ${j.processedOn! - j.timestamp}  run ${j.finishedOn! - j.processedOn!}  finished→reply ${(t0 + (t1 - p0)) - j.finishedOn!}`);
  }
} finally { await q.close(); c.disconnect(); await Promise.all([a.stop(), w.stop()]); await redis.close(); await m.cleanup(); }
