import { Redis } from 'ioredis';
import { RedisServer, smallModelFolder, startFront, startWorkerProcess } from '../test/cluster-fixture.js';
import { postJson, request } from '../test/server-fixture.js';
const redis = await RedisServer.start();
const m = await smallModelFolder();
const [a, b, w] = await Promise.all([startFront(redis.url, m), startFront(redis.url, m), startWorkerProcess(redis.url, m, ['--batch-size', '1'])]);
const c = new Redis(redis.url);
try {
  const j = await postJson<{ id: string }>(`${b.url}/v1/jobs`, { task: 'text', input: { template: 'после остановки', count: 400, seed: 9 } });
  await new Promise((r) => setTimeout(r, 800));
  console.log('stop b', await b.stop());
  for (let i = 0; i < 30; i++) {
    const v = (await request<Record<string, unknown>>(`${a.url}/v1/jobs/${j.body.id}`)).body;
    console.log(v.state, v.result ? 'result' : 'no result', JSON.stringify(v.error ?? ''));
    if (v.state === 'done') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const keys = await c.keys(`*${j.body.id}*`);
  for (const k of keys) console.log(k, await c.type(k), (await c.type(k)) === 'hash' ? Object.keys(await c.hgetall(k)) : '');
  console.log(w.stderr.filter((l) => l.includes(j.body.id) || l.includes('error') || l.includes('warn')).slice(-10).join('\n'));
} finally { c.disconnect(); await Promise.all([a.stop(), w.stop()]); await redis.close(); await m.cleanup(); }
