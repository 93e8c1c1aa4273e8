/**
 * Cluster mode against a real redis-server (started here on a free port, append-only file in a
 * temp dir) with fronts (`rudolph serve --redis`) and workers (`rudolph worker`) as separate
 * processes on the small random model: the API through a front equals single-process mode,
 * jobs survive a worker killed with SIGKILL (same bytes, completed once), any front reads and
 * cancels any job, Redis stopping gives quick 503s and the queue comes back whole, and two
 * fronts under 200 concurrent clients answer every request with 200 or 429 and lose nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TextToken } from '../src/generation/streaming.js';
import type { JobView } from '../src/server/jobs.js';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { type Front, type ModelFolder, RedisServer, type RudolphProcess, smallModelFolder, startFront, startWorkerProcess } from './cluster-fixture.js';
import { SMALL_TOKENIZER, TINY_VQGAN_DIR } from './fixtures.js';
import { type JsonResponse, postJson, readEvents, request, sleep, type SseEvent, testPngBase64, waitFor } from './server-fixture.js';

interface ErrorBody { statusCode: number; code: string; message: string; field?: string }

/** ~1 ms per decoding step at batch 1: seconds of work unless cancelled */
const LONG_TEXT = { template: 'долгий текст', count: 1000, seed: 1 };
/** fast hand-over of a lost worker's jobs (production default: 30 s) */
const FAST_STALLS = ['--lock-duration', '2000', '--stalled-interval', '1000'];

describe('cluster: fronts and workers on Redis', () => {
  let redis: RedisServer;
  let model: ModelFolder;
  let single: RunningServer;
  let a: Front;
  let b: Front;
  let limited: Front;
  let worker: RudolphProcess;
  const extraWorkers: RudolphProcess[] = [];
  let png: string;

  before(async () => {
    [redis, model, png] = await Promise.all([RedisServer.start(), smallModelFolder(), testPngBase64()]);
    [single, a, b, limited, worker] = await Promise.all([
      startServer({ model: model.dir, tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: model.cacheDir, port: 0, handleSignals: false, batchSize: 1, threads: 1, maxQueue: 64 }),
      startFront(redis.url, model, ['--max-queue', '64'], 'front A'),
      startFront(redis.url, model, ['--max-queue', '64'], 'front B'),
      startFront(redis.url, model, ['--rate-limit', '2/min'], 'rate-limited front'),
      startWorkerProcess(redis.url, model, ['--batch-size', '1', '--metrics-port', '0', ...FAST_STALLS], 'worker 1'),
    ]);
  });

  after(async () => {
    await Promise.all([a, b, limited, worker, ...extraWorkers].filter(Boolean).map((p) => p.stop()));
    await single?.close();
    await redis?.close();
    await model?.cleanup();
  });

  async function startLongJob(front: Front, input: Record<string, unknown> = LONG_TEXT, task = 'text'): Promise<JobView> {
    const res = await postJson<JobView>(`${front.url}/v1/jobs`, { task, input });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return waitFor(async () => {
      const j = (await request<JobView>(`${front.url}/v1/jobs/${res.body.id}`)).body;
      return j.state === 'running' && (j.progress?.done ?? 0) > 0 ? j : undefined;
    }, 20_000, 'the long job to run');
  }

  it('every endpoint through a front gives what single-process mode gives', async () => {
    const same = async (path: string, body?: unknown, compare: (x: JsonResponse, y: JsonResponse) => void = (x, y) => assert.deepEqual(x.body, y.body, path)) => {
      const [x, y] = body === undefined
        ? await Promise.all([request(`${a.url}${path}`), request(`${single.url}${path}`)])
        : await Promise.all([postJson(`${a.url}${path}`, body), postJson(`${single.url}${path}`, body)]);
      assert.equal(x.status, y.status, `${path}: ${JSON.stringify(x.body).slice(0, 200)}`);
      compare(x, y);
      return x;
    };
    // tasks: same results for the same seeds
    await same('/v1/classify', { image: png, classes: ['кошка', 'собака', 'дом'], template: 'на картинке {}' });
    const dream = await same('/v1/dream', { text: 'кошка на диване', candidates: 3, images: 2, seed: 11 });
    const codebook = (dream.body as { images: { codebook: number[] }[] }).images[0].codebook;
    await same('/v1/text', { template: 'лес', count: 4, seed: 5, earlyStop: 12 });
    await same('/v1/caption', { image: png, generations: 6, count: 3, seed: 2 });
    await same('/v1/rank-images', { text: 'кошка на диване', images: [{ ids: codebook }, png] });
    await same('/v1/rank-texts', { image: { ids: codebook }, texts: ['кошка', 'собака на улице'] });
    // multipart uploads
    const form = () => {
      const f = new FormData();
      f.append('image', new Blob([Buffer.from(png, 'base64')], { type: 'image/png' }), 'test.png');
      for (const c of ['кошка', 'собака']) f.append('classes', c);
      return f;
    };
    const [mx, my] = await Promise.all([request(`${a.url}/v1/classify`, { method: 'POST', body: form() }), request(`${single.url}/v1/classify`, { method: 'POST', body: form() })]);
    assert.equal(mx.status, 200);
    assert.deepEqual(mx.body, my.body);
    // errors: the same status, code, field and message
    for (const [path, body] of [
      ['/v1/classify', { classes: ['a'] }], ['/v1/dream', { text: 'кот', topP: 2 }], ['/v1/jobs', { task: 'paint', input: {} }],
      ['/v1/classify', { image: Buffer.from('not an image').toString('base64'), classes: ['a'] }],
      ['/v1/dream', { text: 'кот', images: 3, candidates: 2 }],
    ] as const) await same(path, body);
    await same('/v1/jobs/no-such-job');
    await same('/v1/tasks');
    await same('/openapi.json');
    const info = await same('/v1/info', undefined, (x, y) => {
      const pick = (r: JsonResponse) => { const v = r.body as Record<string, unknown>; return [v.model, v.presets, v.tasks, v.runtime, v.batchSize, v.version]; };
      assert.deepEqual(pick(x), pick(y));
    });
    assert.equal((info.body as { mode: string }).mode, 'cluster');
    const page = await request<string>(`${a.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.body, /data-testid="generate"/);
    // jobs: POST, GET, SSE from the other front, same result as the synchronous call
    const job = await postJson<JobView>(`${a.url}/v1/jobs`, { task: 'text', input: { template: 'привет', count: 40, seed: 3 } });
    assert.equal(job.status, 202);
    assert.equal(job.headers.get('location'), `/v1/jobs/${job.body.id}`);
    const events = await readEvents(`${b.url}/v1/jobs/${job.body.id}/events`);
    assert.deepEqual(events.map((e) => e.id), events.map((_, i) => i + 1));
    assert.equal(events.at(-1)?.event, 'done');
    const progress = events.filter((e) => e.event === 'progress');
    assert.ok(progress.length >= 1, 'no progress events');
    const direct = await postJson(`${single.url}/v1/text`, { template: 'привет', count: 40, seed: 3 });
    assert.deepEqual((events.at(-1)!.data as JobView).result, direct.body);
    assert.deepEqual((await request<JobView>(`${a.url}/v1/jobs/${job.body.id}`)).body.result, direct.body);
    const list = await request<{ jobs: JobView[] }>(`${b.url}/v1/jobs`);
    assert.ok(list.body.jobs.some((j) => j.id === job.body.id && j.result === undefined));
    // metrics on the front
    const metrics = await request<string>(`${a.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /rudolph_http_request_seconds_bucket/);
    assert.match(metrics.body, /rudolph_queue_jobs\{state="queued"\}/);
    assert.match(metrics.body, /rudolph_workers 1/);
    // JSON logs with the job id
    const jobLines = worker.lines.filter((l) => l.jobId === job.body.id);
    assert.deepEqual(jobLines.map((l) => l.msg), ['job started', 'job done']);
    // metrics on the worker
    const workerMetrics = await request<string>(`${(worker.lines.find((l) => l.msg === 'worker ready') as { metrics: string }).metrics}/metrics`);
    assert.equal(workerMetrics.status, 200);
    for (const name of ['rudolph_job_run_seconds_bucket', 'rudolph_batch_size_bucket', 'rudolph_decoded_tokens_total', 'rudolph_model_load_seconds', 'rudolph_process_resident_memory_bytes']) {
      assert.ok(workerMetrics.body.includes(name), `worker metrics lack ${name}`);
    }
  });

  it('text jobs stream token events through any front (the queue\'s token channel), before done', async () => {
    // a job ahead keeps this one queued until its event stream on the other front is open
    const ahead = await postJson<JobView>(`${a.url}/v1/jobs`, { task: 'dream', input: { text: 'дом', candidates: 8, seed: 1 } });
    assert.equal(ahead.status, 202);
    const input = { template: 'лес', count: 4, seed: 2, earlyStop: 10 };
    const job = await postJson<JobView>(`${a.url}/v1/jobs`, { task: 'text', input });
    assert.equal(job.status, 202);
    const events = await readEvents(`${b.url}/v1/jobs/${job.body.id}/events`);
    const names = events.map((e) => e.event);
    assert.equal(names.at(-1), 'done');
    const tokens = events.filter((e) => e.event === 'token').map((e) => e.data as TextToken);
    assert.ok(tokens.length >= 4, names.join(','));
    assert.ok(names.lastIndexOf('token') < names.indexOf('done'));
    // every candidate's tokens in order, its last one done; the final texts are the result's
    const last = new Map<number, TextToken>();
    for (const t of tokens) {
      assert.ok(!last.get(t.candidate)?.done, `candidate ${t.candidate} got a token after its last`);
      last.set(t.candidate, t);
    }
    assert.equal(last.size, input.count);
    assert.ok([...last.values()].every((t) => t.done));
    const counts = new Map<string, number>();
    for (const t of last.values()) if (t.text) counts.set(t.text, (counts.get(t.text) ?? 0) + 1);
    const result = (events.at(-1)!.data as JobView).result as { texts: { text: string; count: number }[] };
    assert.deepEqual(counts, new Map(result.texts.map((t) => [t.text, t.count])));
    // tasks that do not stream text send none
    const cls = await postJson<JobView>(`${a.url}/v1/jobs`, { task: 'classify', input: { image: png, classes: ['кот', 'дом'] } });
    const clsEvents = await readEvents(`${b.url}/v1/jobs/${cls.body.id}/events`);
    assert.equal(clsEvents.at(-1)!.event, 'done');
    assert.equal(clsEvents.filter((e) => e.event === 'token').length, 0);
  });

  it('--rate-limit: per client (API key or IP), counted in Redis, 429 RATE_LIMITED with Retry-After', async () => {
    const send = (key: string) => request<ErrorBody>(`${limited.url}/v1/jobs`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': key }, body: JSON.stringify({ task: 'classify', input: { image: png, classes: ['a', 'b'] } }),
    });
    assert.equal((await send('alice')).status, 202);
    assert.equal((await send('alice')).status, 202);
    const third = await send('alice');
    assert.equal(third.status, 429);
    assert.equal(third.body.code, 'RATE_LIMITED');
    assert.ok(Number(third.headers.get('retry-after')) >= 1);
    assert.equal((await send('bob')).status, 202);
    assert.equal((await request(`${limited.url}/v1/health`)).status, 200, 'health is not limited');
  });

  it('Idempotency-Key: a retried POST gets the same job, another body with the key a 422', async () => {
    const body = { task: 'classify', input: { image: png, classes: ['a', 'b'] } };
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'retry-1' };
    const send = (front: Front, b2: unknown) => request<JobView>(`${front.url}/v1/jobs`, { method: 'POST', headers, body: JSON.stringify(b2) });
    const first = await send(a, body);
    const again = await send(b, body);
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.equal(again.body.id, first.body.id);
    const other = await send(a, { ...body, input: { ...body.input, classes: ['c'] } });
    assert.equal(other.status, 422);
    assert.equal((other.body as unknown as ErrorBody).code, 'IDEMPOTENCY_CONFLICT');
  });

  it('a job started through front A is read, followed and cancelled through front B within a decoding step', async () => {
    const job = await startLongJob(a);
    const seen = await request<JobView>(`${b.url}/v1/jobs/${job.id}`);
    assert.equal(seen.body.state, 'running');
    const events: SseEvent[] = [];
    const stream = readEvents(`${b.url}/v1/jobs/${job.id}/events`, (e) => events.push(e));
    await waitFor(async () => (events.some((e) => e.event === 'progress') ? true : undefined), 5000, 'progress through B');
    const t0 = performance.now();
    const cancelled = await request<JobView>(`${b.url}/v1/jobs/${job.id}`, { method: 'DELETE' });
    const ms = performance.now() - t0;
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.body.state, 'cancelled');
    assert.equal(cancelled.body.error?.code, 'ABORTED');
    assert.ok(cancelled.body.stepsAfterCancel !== undefined && cancelled.body.stepsAfterCancel <= 1, `ran ${cancelled.body.stepsAfterCancel} steps after the cancel`);
    assert.ok(ms < 2000, `cancel took ${ms.toFixed(0)} ms`);
    await stream;
    assert.equal(events.at(-1)?.event, 'cancelled');
    assert.equal((await request<JobView>(`${a.url}/v1/jobs/${job.id}`)).body.state, 'cancelled');
    // a queued job is cancelled at once, without running
    const blocker = await startLongJob(a);
    const queued = await postJson<JobView>(`${a.url}/v1/jobs`, { task: 'classify', input: { image: png, classes: ['a'] } });
    const dropped = await request<JobView>(`${b.url}/v1/jobs/${queued.body.id}`, { method: 'DELETE' });
    assert.equal(dropped.body.state, 'cancelled');
    assert.equal(dropped.body.startedAt, undefined);
    assert.equal((await request<JobView>(`${a.url}/v1/jobs/${queued.body.id}`)).body.state, 'cancelled');
    assert.equal((await request<JobView>(`${a.url}/v1/jobs/${blocker.id}`, { method: 'DELETE' })).body.state, 'cancelled');
  });

  it('a worker killed with SIGKILL mid-dream: another finishes the job once, with the same PNG bytes', async () => {
    const input = { text: 'рыжая кошка', candidates: 96, images: 2, seed: 21 };
    const want = await postJson<{ images: { png: string }[] }>(`${single.url}/v1/dream`, input);
    assert.equal(want.status, 200);
    const job = await startLongJob(a, input, 'dream');
    worker.kill('SIGKILL');
    await worker.exited;
    const next = await startWorkerProcess(redis.url, model, ['--batch-size', '1', ...FAST_STALLS], 'worker 2');
    extraWorkers.push(next);
    const done = await waitFor(async () => {
      const j = (await request<JobView>(`${b.url}/v1/jobs/${job.id}`)).body;
      return j.state === 'done' || j.state === 'failed' ? j : undefined;
    }, 60_000, 'the job to finish on the new worker');
    assert.equal(done.state, 'done', JSON.stringify(done.error));
    assert.equal(done.attempts, 2);
    const pngs = (done.result as { images: { png: string }[] }).images.map((i) => i.png);
    assert.deepEqual(pngs, want.body.images.map((i) => i.png));
    const finishes = [...worker.lines, ...next.lines].filter((l) => l.jobId === job.id && l.msg === 'job done');
    assert.equal(finishes.length, 1, 'the job finished more than once');
    worker = next;
  });

  it('Redis stopped: quick 503s and a live health; restarted: fronts and workers resume, queued jobs kept', async () => {
    // queue jobs behind a long one, then take Redis away
    const blocker = await startLongJob(a, { text: 'долгая работа', candidates: 256, seed: 4 }, 'dream');
    const queued: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await postJson<JobView>(`${b.url}/v1/jobs`, { task: 'classify', input: { image: png, classes: ['a', `класс ${i}`] } });
      assert.equal(res.status, 202);
      queued.push(res.body.id);
    }
    await redis.stop();
    for (const front of [a, b]) {
      for (const [path, body] of [['/v1/classify', { image: png, classes: ['a'] }], ['/v1/jobs', { task: 'text', input: { template: 'x' } }]] as const) {
        const res = await postJson<ErrorBody>(`${front.url}${path}`, body);
        assert.equal(res.status, 503, JSON.stringify(res.body));
        assert.equal(res.body.code, 'REDIS_UNAVAILABLE');
        assert.ok(res.ms < 3500, `503 took ${res.ms.toFixed(0)} ms`);
      }
      const got = await request<ErrorBody>(`${front.url}/v1/jobs/${queued[0]}`);
      assert.equal(got.status, 503);
      const health = await request<{ status: string; redis: string }>(`${front.url}/v1/health`);
      assert.equal(health.status, 200);
      assert.equal(health.body.redis, 'down');
      assert.ok(health.ms < 1500, `health took ${health.ms.toFixed(0)} ms`);
      assert.equal((await request(`${front.url}/v1/ready`)).status, 503);
    }
    await sleep(1000);
    await redis.resume();
    // everything queued before the outage completes; the fronts serve again
    for (const id of queued) {
      const done = await waitFor(async () => {
        const res = await request<JobView>(`${a.url}/v1/jobs/${id}`);
        return res.status === 200 && (res.body.state === 'done' || res.body.state === 'failed') ? res.body : undefined;
      }, 60_000, `queued job ${id} after the restart`);
      assert.equal(done.state, 'done', JSON.stringify(done.error));
    }
    const blockerEnd = (await request<JobView>(`${a.url}/v1/jobs/${blocker.id}`)).body;
    assert.ok(['running', 'queued', 'done'].includes(blockerEnd.state), blockerEnd.state);
    await request(`${a.url}/v1/jobs/${blocker.id}`, { method: 'DELETE' });
    const after = await postJson(`${b.url}/v1/classify`, { image: png, classes: ['a', 'b'] });
    assert.equal(after.status, 200);
    assert.match(worker.stderr.join('\n'), /Redis is back: resuming/);
  });

  it('a front stopped mid-job: the job goes on and another front gives its status and result', async () => {
    const job = await startLongJob(b, { template: 'после остановки', count: 400, seed: 9 });
    assert.equal(await b.stop(), 0);
    const done = await waitFor(async () => {
      const j = (await request<JobView>(`${a.url}/v1/jobs/${job.id}`)).body;
      return j.state === 'done' ? j : undefined;
    }, 30_000, 'the job through the other front');
    const want = await postJson(`${single.url}/v1/text`, { template: 'после остановки', count: 400, seed: 9 });
    assert.deepEqual(done.result, want.body, `${JSON.stringify(done).slice(0, 400)}\n${worker.stderr.filter((l) => l.includes(job.id) || /warn|error|stall/i.test(l)).join('\n')}`);
    // a worker stopped between jobs leaves at once, with exit code 0
    const t0 = performance.now();
    assert.equal(await worker.stop(), 0);
    assert.ok(performance.now() - t0 < 10_000, 'the worker took over 10 s to stop');
    assert.ok(worker.lines.some((l) => l.msg === 'stopped'));
  });
});
