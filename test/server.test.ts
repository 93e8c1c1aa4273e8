/**
 * The HTTP service against a real server on 127.0.0.1 with the small random model: every
 * endpoint (results compared with direct facade calls), validation, 413, 429, SSE, cancel,
 * disconnect, health under load, multipart, and shutdown of a separate process on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { Rudolph } from '../src/rudolph.js';
import { readImage } from '../src/runtime/node/index.js';
import type { JobView } from '../src/server/jobs.js';
import type { TaskMethod, TaskResult } from '../src/tasks/registry.js';
import type { ResultJson } from '../src/tasks/spec.js';

type Out<M extends TaskMethod> = ResultJson<TaskResult<M>>;
type CaptionOutput = Out<'caption'>;
type ClassifyOutput = Out<'classify'>;
type DreamOutput = Out<'dream'>;
type RankOutput = Out<'rankImages'>;
type TextOutput = Out<'generateText'>;
import { SMALL_TOKENIZER, TINY_VQGAN_DIR } from './fixtures.js';
import { REPO_ROOT } from './helpers.js';
import { postJson, readEvents, request, sleep, type SseEvent, startSmallServer, testPngBase64, type TestServer, waitFor } from './server-fixture.js';

const BODY_LIMIT = 512 * 1024;
/** ~1 ms per decoding step at batch 1: many seconds unless cancelled */
const LONG_JOB = { task: 'text', input: { template: 'долгий текст', count: 1000, seed: 1 } } as const;

interface ErrorBody { statusCode: number; code: string; message: string; field?: string }

describe('HTTP service', () => {
  let server: TestServer;
  let direct: Rudolph;
  let png: string;
  const url = (p: string) => `${server.url}${p}`;

  before(async () => {
    server = await startSmallServer({ batchSize: 1, maxQueue: 1, bodyLimit: BODY_LIMIT });
    direct = await Rudolph.fromPretrained(server.modelDir, { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: server.cacheDir, batchSize: 1 });
    png = await testPngBase64();
  });

  after(async () => {
    await direct?.release();
    await server?.close();
  });

  /** Submits the long job and waits until it is running with some progress. */
  async function startLongJob(): Promise<JobView> {
    const res = await postJson<JobView>(url('/v1/jobs'), LONG_JOB);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return waitFor(async () => {
      const j = (await request<JobView>(url(`/v1/jobs/${res.body.id}`))).body;
      return j.state === 'running' && (j.progress?.done ?? 0) > 0 ? j : undefined;
    }, 10_000, 'the long job to run');
  }

  async function cancel(id: string): Promise<JobView> {
    const res = await request<JobView>(url(`/v1/jobs/${id}`), { method: 'DELETE' });
    assert.equal(res.status, 200);
    return res.body;
  }

  it('classify matches the direct facade call, in JSON and as a multipart upload', async () => {
    const classes = ['кошка', 'собака', 'дом'];
    const res = await postJson<ClassifyOutput>(url('/v1/classify'), { image: png, classes, template: 'на картинке {}' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const want = await direct.classify({ image: await readImage(Buffer.from(png, 'base64')), classes, template: 'на картинке {}' });
    assert.equal(res.body.label, want.label);
    assert.equal(res.body.class, classes[want.label]);
    res.body.ppl.forEach((p, i) => assert.ok(Math.abs(p - want.ppl[i]) <= 1e-6 * want.ppl[i], `ppl ${i}: ${p} vs ${want.ppl[i]}`));
    assert.ok(Math.abs(res.body.scores.reduce((a, b) => a + b, 0) - 1) < 1e-9);

    const form = new FormData();
    form.append('image', new Blob([Buffer.from(png, 'base64')], { type: 'image/png' }), 'test.png');
    for (const c of classes) form.append('classes', c);
    form.append('template', 'на картинке {}');
    const multi = await request<ClassifyOutput>(url('/v1/classify'), { method: 'POST', body: form });
    assert.equal(multi.status, 200, JSON.stringify(multi.body));
    assert.deepEqual(multi.body, res.body);
  });

  it('dream returns PNGs equal to the facade images for the same seed, and rank-images/rank-texts rank them', async () => {
    const res = await postJson<DreamOutput>(url('/v1/dream'), { text: 'кошка на диване', candidates: 3, images: 2, seed: 11 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const want = await direct.dream({ text: 'кошка на диване', candidates: 3, images: 2, seed: 11 });
    assert.equal(res.body.seed, 11);
    assert.equal(res.body.images.length, 2);
    for (const [i, img] of res.body.images.entries()) {
      assert.deepEqual(img.codebook, Array.from(want.images[i].codebook));
      const decoded = await readImage(Buffer.from(img.png, 'base64'));
      assert.equal(decoded.width, 32);
      assert.deepEqual(decoded.data, want.images[i].image.data);
    }

    const images = [{ ids: res.body.images[0].codebook }, png, { ids: res.body.images[1].codebook }];
    const ranked = await postJson<RankOutput>(url('/v1/rank-images'), { text: 'кошка на диване', images });
    assert.equal(ranked.status, 200, JSON.stringify(ranked.body));
    assert.deepEqual([...ranked.body.order].sort(), [0, 1, 2]);
    assert.equal(ranked.body.scores.length, 3);
    const wantRank = await direct.rankImages({ text: 'кошка на диване', images: [images[0] as { ids: number[] }, await readImage(Buffer.from(png, 'base64')), images[2] as { ids: number[] }] });
    assert.deepEqual(ranked.body.order, wantRank.order);

    const texts = await postJson<RankOutput>(url('/v1/rank-texts'), { image: { ids: res.body.images[0].codebook }, texts: ['кошка', 'собака на улице'] });
    assert.equal(texts.status, 200, JSON.stringify(texts.body));
    assert.deepEqual([...texts.body.order].sort(), [0, 1]);
  });

  it('text and caption match the facade for a seed', async () => {
    const text = await postJson<TextOutput>(url('/v1/text'), { template: 'лес', count: 4, seed: 5, earlyStop: 12 });
    assert.equal(text.status, 200, JSON.stringify(text.body));
    const want = await direct.generateText({ template: 'лес', count: 4, seed: 5, earlyStop: 12 });
    assert.deepEqual(text.body.texts.map((t) => t.text), want.texts.map((t) => t.text));

    const caption = await postJson<CaptionOutput>(url('/v1/caption'), { image: png, generations: 6, count: 3, seed: 2 });
    assert.equal(caption.status, 200, JSON.stringify(caption.body));
    const wantCaption = await direct.caption({ image: await readImage(Buffer.from(png, 'base64')), generations: 6, count: 3, seed: 2 });
    assert.deepEqual(caption.body.captions.map((c) => c.text), wantCaption.captions.map((c) => c.text));
    assert.ok(caption.body.captions.length >= 1 && caption.body.captions.length <= 3);
  });

  it('health, info, OpenAPI and the web page', async () => {
    const health = await request<{ status: string; queue: { running: number; queued: number; maxQueue: number } }>(url('/v1/health'));
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.queue.maxQueue, 1);

    const info = await request<{ tasks: string[]; model: { config: { hidden_size: number } }; limits: { bodyLimit: number }; batchSize: number; presets: string[] }>(url('/v1/info'));
    assert.equal(info.status, 200);
    assert.deepEqual(info.body.tasks, ['dream', 'caption', 'classify', 'text', 'rank-images', 'rank-texts', 'upscale']);
    assert.equal(info.body.model.config.hidden_size, 64);
    assert.equal(info.body.limits.bodyLimit, BODY_LIMIT);
    assert.equal(info.body.batchSize, 1);
    assert.ok(info.body.presets.includes('350M'));

    const api = await request<{ openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required: string[] } }> } }>> }>(url('/openapi.json'));
    assert.equal(api.status, 200);
    assert.match(api.body.openapi, /^3\./);
    for (const p of ['/v1/dream', '/v1/caption', '/v1/classify', '/v1/text', '/v1/rank-images', '/v1/rank-texts', '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/events', '/v1/health', '/v1/info']) {
      assert.ok(api.body.paths[p], `OpenAPI lacks ${p}`);
    }
    assert.deepEqual(api.body.paths['/v1/classify'].post.requestBody?.content['application/json'].schema.required, ['image', 'classes']);

    const page = await request<string>(url('/'));
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    for (const id of ['prompt', 'generate', 'progress', 'upload', 'captions', 'classes-input', 'classify', 'class-result']) {
      assert.ok(page.body.includes(`data-testid="${id}"`), `page lacks data-testid=${id}`);
    }
    assert.equal((await request(url('/app.js'))).status, 200);
  });

  it('rejects invalid requests with 400 naming the field', async () => {
    const cases: [string, unknown, string, string][] = [
      ['/v1/classify', { classes: ['a'] }, 'VALIDATION', 'image'],
      ['/v1/classify', { image: png, classes: 'кошка' }, 'VALIDATION', 'classes'],
      ['/v1/classify', { image: png, classes: [] }, 'VALIDATION', 'classes'],
      ['/v1/classify', { image: png, classes: ['a'], clases: ['b'] }, 'VALIDATION', 'clases'],
      ['/v1/classify', { image: 12, classes: ['a'] }, 'VALIDATION', 'image'],
      ['/v1/dream', { text: 'кот', candidates: 0 }, 'VALIDATION', 'candidates'],
      ['/v1/dream', { text: 'кот', topP: 2 }, 'VALIDATION', 'topP'],
      ['/v1/rank-images', { text: 'кот', images: [png, { ids: 'x' }] }, 'VALIDATION', 'images[1]'],
      ['/v1/text', { template: 'a', seed: 1.5 }, 'VALIDATION', 'seed'],
      ['/v1/jobs', { task: 'classify', input: { image: png } }, 'VALIDATION', 'input.classes'],
      ['/v1/jobs', { task: 'paint', input: {} }, 'VALIDATION', 'task'],
    ];
    for (const [path, body, code, field] of cases) {
      const res = await postJson<ErrorBody>(url(path), body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body).slice(0, 80)} → ${res.status}`);
      assert.equal(res.body.code, code);
      assert.equal(res.body.field, field, res.body.message);
      assert.ok(res.body.message.startsWith(field), res.body.message);
    }
    // errors found by the library: still the client's fault, still named
    const notImage = await postJson<ErrorBody>(url('/v1/classify'), { image: Buffer.from('not an image').toString('base64'), classes: ['a'] });
    assert.equal(notImage.status, 400);
    assert.equal(notImage.body.code, 'IMAGE');
    assert.match(notImage.body.message, /^image: /);
    const tooMany = await postJson<ErrorBody>(url('/v1/dream'), { text: 'кот', images: 3, candidates: 2 });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.code, 'INPUT');
    // checked before the job is queued: no job is created for it
    const before = (await request<{ jobs: unknown[] }>(url('/v1/jobs'))).body.jobs.length;
    const noBraces = await postJson<ErrorBody>(url('/v1/classify'), { image: png, classes: ['a', 'b'], template: 'на картинке' });
    assert.equal(noBraces.status, 400);
    assert.match(noBraces.body.message, /has no \{\}/);
    assert.equal((await request<{ jobs: unknown[] }>(url('/v1/jobs'))).body.jobs.length, before);
    const shortIds = await postJson<ErrorBody>(url('/v1/rank-images'), { text: 'кот', images: [{ ids: [1, 2] }] });
    assert.equal(shortIds.status, 400);
    assert.match(shortIds.body.message, /16 image token ids/);

    const badJson = await request<ErrorBody>(url('/v1/classify'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"image": ' });
    assert.equal(badJson.status, 400);
    const badForm = new FormData();
    badForm.append('image', new Blob([Buffer.from(png, 'base64')]), 'a.png');
    badForm.append('classes', 'a');
    badForm.append('count', 'many');
    const formErr = await request<ErrorBody>(url('/v1/caption'), { method: 'POST', body: badForm });
    assert.equal(formErr.status, 400);
    assert.equal(formErr.body.field, 'count');
    const missing = await request<ErrorBody>(url('/v1/jobs/no-such-job'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.code, 'NOT_FOUND');
  });

  it('answers 413 to bodies over the limit, JSON or multipart', async () => {
    const big = Buffer.alloc(BODY_LIMIT + 1024, 1).toString('base64');
    const json = await postJson<ErrorBody>(url('/v1/classify'), { image: big, classes: ['a'] });
    assert.equal(json.status, 413);
    const form = new FormData();
    form.append('image', new Blob([Buffer.alloc(BODY_LIMIT + 1024, 1)]), 'big.png');
    form.append('classes', 'a');
    const multi = await request<ErrorBody>(url('/v1/classify'), { method: 'POST', body: form });
    assert.equal(multi.status, 413);
    assert.equal((await request(url('/v1/health'))).status, 200);
  });

  it('streams SSE progress in order and ends with the result', async () => {
    const res = await postJson<JobView>(url('/v1/jobs'), { task: 'text', input: { template: 'привет', count: 40, seed: 3 } });
    assert.equal(res.status, 202);
    assert.equal(res.headers.get('location'), `/v1/jobs/${res.body.id}`);
    const events = await readEvents(url(`/v1/jobs/${res.body.id}/events`));
    assert.deepEqual(events.map((e) => e.id), events.map((_, i) => i + 1));
    assert.equal(events[0].event, 'state');
    const last = events[events.length - 1];
    assert.equal(last.event, 'done');
    const job = last.data as JobView;
    assert.equal(job.state, 'done');
    assert.ok((job.result as TextOutput).texts.length > 0);
    const progress = events.filter((e) => e.event === 'progress').map((e) => e.data as { stage: string; done: number; total: number });
    assert.ok(progress.length >= 2, `only ${progress.length} progress events`);
    const stages = [...new Set(progress.map((p) => p.stage))];
    assert.deepEqual(stages, ['sampling', 'scoring']);
    for (let i = 1; i < progress.length; i++) {
      if (progress[i].stage === progress[i - 1].stage) assert.ok(progress[i].done >= progress[i - 1].done, 'progress went back');
    }
    const endOfSampling = progress.filter((p) => p.stage === 'sampling').at(-1)!;
    assert.equal(endOfSampling.done, endOfSampling.total);
    // a stream opened after the end replays the final event
    const replay = await readEvents(url(`/v1/jobs/${res.body.id}/events`));
    assert.deepEqual(replay.map((e) => e.event), ['done']);
  });

  it('keeps health fast while a job runs, and DELETE stops the job within one decoding step', async () => {
    const job = await startLongJob();
    const events: SseEvent[] = [];
    const stream = readEvents(url(`/v1/jobs/${job.id}/events`), (e) => events.push(e));
    for (let i = 0; i < 10; i++) {
      const health = await request(url('/v1/health'));
      assert.equal(health.status, 200);
      assert.ok(health.ms < 100, `health took ${health.ms.toFixed(1)} ms while a job ran`);
      await sleep(20);
    }
    const t0 = performance.now();
    const cancelled = await cancel(job.id);
    const ms = performance.now() - t0;
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(cancelled.error?.code, 'ABORTED');
    assert.ok(cancelled.stepsAfterCancel !== undefined && cancelled.stepsAfterCancel <= 1, `ran ${cancelled.stepsAfterCancel} steps after the cancel`);
    assert.ok(cancelled.progress!.done < cancelled.progress!.total);
    assert.ok(ms < 1000, `cancel took ${ms.toFixed(0)} ms`);
    await stream;
    assert.equal(events.at(-1)?.event, 'cancelled');
    assert.equal((await request<JobView>(url(`/v1/jobs/${job.id}`))).body.state, 'cancelled');
  });

  it('answers 429 with Retry-After when the queue is full; queued jobs cancel without running', async () => {
    const running = await startLongJob();
    const queued = await postJson<JobView>(url('/v1/jobs'), { task: 'classify', input: { image: png, classes: ['a'] } });
    assert.equal(queued.status, 202);
    assert.equal(queued.body.state, 'queued');
    assert.equal(queued.body.position, 1);
    const full = await postJson<ErrorBody>(url('/v1/jobs'), { task: 'classify', input: { image: png, classes: ['a'] } });
    assert.equal(full.status, 429);
    assert.equal(full.body.code, 'QUEUE_FULL');
    assert.ok(Number(full.headers.get('retry-after')) >= 1, `Retry-After ${full.headers.get('retry-after')}`);
    const fullSync = await postJson<ErrorBody>(url('/v1/classify'), { image: png, classes: ['a'] });
    assert.equal(fullSync.status, 429);

    const dropped = await cancel(queued.body.id);
    assert.equal(dropped.state, 'cancelled');
    assert.equal(dropped.startedAt, undefined);
    assert.equal((await cancel(running.id)).state, 'cancelled');
    // the queue drains and serves again
    const after = await postJson(url('/v1/classify'), { image: png, classes: ['a', 'b'] });
    assert.equal(after.status, 200);
  });

  it('cancels a synchronous job when its client disconnects', async () => {
    const client = new AbortController();
    const pending = fetch(url('/v1/text'), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(LONG_JOB.input), signal: client.signal,
    }).catch((e: Error) => e);
    const job = await waitFor(async () => {
      const { jobs } = (await request<{ jobs: JobView[] }>(url('/v1/jobs'))).body;
      return jobs.find((j) => j.sync && j.state === 'running' && (j.progress?.done ?? 0) > 0);
    }, 10_000, 'the synchronous job to run');
    client.abort();
    assert.equal((await pending as Error).name, 'AbortError');
    const ended = await waitFor(async () => {
      const j = (await request<JobView>(url(`/v1/jobs/${job.id}`))).body;
      return j.state === 'running' ? undefined : j;
    }, 2000, 'the job to stop after the disconnect');
    assert.equal(ended.state, 'cancelled');
    assert.match(ended.error!.message, /disconnected/);
    assert.ok(ended.stepsAfterCancel !== undefined && ended.stepsAfterCancel <= 1);
  });
});

describe('shutdown', () => {
  it('on SIGTERM stops accepting, cancels running jobs, answers them and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/server-child.ts'], {
      cwd: REPO_ROOT, env: { ...process.env, RUDOLPH_TEST_BATCH: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await Promise.race([
        new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve)),
        exited.then((code) => { throw new Error(`server exited early (${code}): ${stderr}`); }),
      ]);
      const { url } = JSON.parse(line) as { url: string };
      const sync = postJson<ErrorBody>(`${url}/v1/text`, LONG_JOB.input);
      await waitFor(async () => {
        const { jobs } = (await request<{ jobs: JobView[] }>(`${url}/v1/jobs`)).body;
        return jobs.find((j) => j.state === 'running' && (j.progress?.done ?? 0) > 0);
      }, 10_000, 'a running job');
      const t0 = performance.now();
      child.kill('SIGTERM');
      const answer = await sync;
      assert.equal(answer.status, 503);
      assert.equal(answer.body.code, 'SHUTTING_DOWN');
      const code = await exited;
      assert.equal(code, 0, stderr);
      assert.ok(performance.now() - t0 < 5000, 'shutdown took over 5 s');
      assert.match(stderr, /SIGTERM received/);
      assert.match(stderr, /stopped/);
      await assert.rejects(fetch(`${url}/v1/health`));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});


