/**
 * Streamed text: `generateTextStream` / `captionStream` (and `onToken`) give every sampled token
 * as it is generated, before reranking, and end with the same result as the plain call; leaving
 * the loop cancels the task; `--stream` on the CLI prints the candidates as they come (NDJSON with
 * --json); the jobs API sends `token` events before `done`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TextToken } from '../src/generation/streaming.js';
import { Rudolph } from '../src/rudolph.js';
import { encodePng } from '../src/runtime/node/index.js';
import { eventStream } from '../src/util/event-stream.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { builtCli } from './helpers.js';
import { postJson, readEvents, startSmallServer, testImage, type TestServer } from './server-fixture.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let modelDir: string;
before(async () => {
  tmp = await tempDir('rudolph-streaming-');
  modelDir = path.join(tmp.dir, 'model');
  await writeSmallModel(modelDir);
});
after(async () => { await tmp.cleanup(); });

/** Per candidate: its tokens in order. Checks the stream's own invariants on the way. */
function byCandidate(tokens: TextToken[]): Map<number, TextToken[]> {
  const out = new Map<number, TextToken[]>();
  for (const t of tokens) {
    const list = out.get(t.candidate) ?? [];
    assert.ok(!list.at(-1)?.done, `candidate ${t.candidate} got a token after its last`);
    list.push(t);
    out.set(t.candidate, list);
  }
  for (const [c, list] of out) {
    assert.equal(list.at(-1)!.done, true, `candidate ${c} never ended`);
    // the deltas add up to the text (here every text extends the one before)
    assert.equal(list.map((t) => t.delta).join(''), list.at(-1)!.text.slice(list[0].text.length - list[0].delta.length), `candidate ${c}`);
  }
  return out;
}

/** Distinct final texts with counts, as the task counts them (empty texts dropped). */
function counted(lists: Map<number, TextToken[]>): Map<string, number> {
  const m = new Map<string, number>();
  for (const list of lists.values()) {
    const text = list.at(-1)!.text;
    if (text) m.set(text, (m.get(text) ?? 0) + 1);
  }
  return m;
}

describe('library streams', () => {
  let r: Rudolph;
  before(async () => {
    r = await Rudolph.fromPretrained(modelDir, { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(tmp.dir, 'cache'), threads: 1, upscaler: false });
  });
  after(async () => { await r?.release(); });

  it('generateTextStream: tokens as they are sampled, before ranking, then the same result as generateText', async () => {
    const options = { template: 'море', count: 5, seed: 3, earlyStop: 12, batchSize: 2 };
    const order: string[] = [];
    const tokens: TextToken[] = [];
    let result;
    for await (const e of r.generateTextStream({ ...options, onProgress: (p) => order.push(`progress ${p.stage}`) })) {
      if (e.type === 'token') {
        const { type: _, ...t } = e;
        tokens.push(t);
        order.push('token');
      } else {
        result = e.result;
        order.push('result');
      }
    }
    assert.deepEqual(result, await r.generateText(options));
    const lists = byCandidate(tokens);
    assert.deepEqual([...lists.keys()].sort(), [0, 1, 2, 3, 4]);
    for (const list of lists.values()) assert.ok(list[0].text.startsWith('море'));
    assert.deepEqual(counted(lists), new Map(result!.texts.map((t) => [t.text, t.count])));
    // streamed while sampling: every token before scoring starts, the result last
    assert.ok(order.lastIndexOf('token') < order.indexOf('progress scoring'), order.join(', '));
    assert.equal(order.at(-1), 'result');
    // candidates of one batch arrive interleaved, step by step (not one finished text after another)
    const first = tokens.findIndex((t) => t.candidate === 1);
    assert.ok(first >= 0 && first < lists.get(0)!.length, 'candidate 1 started only after candidate 0 ended');
  });

  it('captionStream and onToken: the same tokens, the reranked captions last', async () => {
    const image = testImage(32);
    const options = { image, generations: 4, count: 2, seed: 5, earlyStop: 14 };
    const viaCallback: TextToken[] = [];
    const plain = await r.caption({ ...options, onToken: (t) => viaCallback.push(t) });
    const streamed: TextToken[] = [];
    let last;
    for await (const e of r.captionStream(options)) {
      if (e.type === 'token') { const { type: _, ...t } = e; streamed.push(t); } else last = e.result;
    }
    assert.deepEqual(last, plain);
    assert.deepEqual(streamed, viaCallback);
    const lists = byCandidate(streamed);
    assert.equal(lists.size, 4);
    for (const c of plain.captions) assert.ok([...lists.values()].some((l) => l.at(-1)!.text === c.text), c.text);
  });

  it('leaving the loop cancels the task; the model stays usable', async () => {
    let done = 0, total = 0;
    let seen = 0;
    for await (const e of r.generateTextStream({ template: 'кот', count: 8, seed: 1, batchSize: 1, onProgress: (p) => { done = p.done; total = p.total; } })) {
      if (e.type === 'token' && ++seen === 2) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(total > 0 && done < total, `the task ran on: ${done}/${total}`);
    assert.ok((await r.generateText({ template: 'кот', count: 2, seed: 1, earlyStop: 6 })).texts.length >= 1);
  });

  it('eventStream: buffered events in order, the error of a failed run, the caller\'s signal', async () => {
    const seen: unknown[] = [];
    for await (const e of eventStream<number, string>(async (emit) => { emit(1); emit(2); await Promise.resolve(); emit(3); return 'end'; })) seen.push(e);
    assert.deepEqual(seen, [1, 2, 3, { type: 'result', result: 'end' }]);
    const failing = eventStream<number, string>(async (emit) => { emit(1); throw new Error('boom'); });
    assert.deepEqual(await failing.next(), { value: 1, done: false });
    await assert.rejects(failing.next(), /boom/);
    assert.deepEqual(await failing.next(), { value: undefined, done: true });
    const outer = new AbortController();
    const waiting = eventStream<number, string>((_, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')))), outer.signal);
    const pending = waiting.next();
    outer.abort();
    await assert.rejects(pending, /stopped/);
  });
});

describe('rudolph text --stream', () => {
  let CLI = '';
  before(async () => { CLI = await builtCli(); });

  /** Runs the CLI, keeping stdout as the chunks it arrived in. */
  function runCli(args: string[]): Promise<{ code: number; chunks: string[]; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HF_HUB_OFFLINE: '1' } });
      const chunks: string[] = [];
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => chunks.push(c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, chunks, stderr }));
    });
  }
  const model = () => ['--model', modelDir, '--tokenizer', SMALL_TOKENIZER, '--vqgan', TINY_VQGAN_DIR, '--cache-dir', path.join(tmp.dir, 'cache'), '--threads', '1'];

  it('prints each candidate as it is generated, in order, then the ranked texts as without --stream', async () => {
    const args = ['text', 'погода сегодня', '-n', '4', '--seed', '7', '--early-stop', '12', '--batch-size', '2', ...model()];
    const plain = await runCli(args);
    assert.equal(plain.code, 0, plain.stderr);
    const streamed = await runCli([...args, '--stream']);
    assert.equal(streamed.code, 0, streamed.stderr);
    const out = streamed.chunks.join('');
    const [live, ranked] = out.split('\n\n');
    const lines = live.split('\n');
    assert.deepEqual(lines.map((l) => l.split(':')[0]), ['1', '2', '3', '4']);
    for (const l of lines) assert.match(l, /^\d: погода сегодня/);
    assert.equal(ranked, plain.chunks.join(''));
    // written piece by piece while sampling, not at the end
    assert.ok(streamed.chunks.length > 2, `${streamed.chunks.length} stdout chunks`);
  });

  it('--json --stream writes one event a line: tokens, then the result', async () => {
    const r = await runCli(['text', 'море', '-n', '3', '--seed', '7', '--early-stop', '10', '--json', '--stream', ...model()]);
    assert.equal(r.code, 0, r.stderr);
    const events = r.chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as { type: string; result?: { texts: { text: string; count: number }[] } } & TextToken);
    const result = events.at(-1)!;
    assert.equal(result.type, 'result');
    assert.ok(events.slice(0, -1).every((e) => e.type === 'token'));
    const lists = byCandidate(events.slice(0, -1).map(({ type: _, ...t }) => t as TextToken));
    assert.deepEqual(counted(lists), new Map(result.result!.texts.map((t) => [t.text, t.count])));
    // the first token reached the reader before the result was written
    assert.ok(!r.chunks[0].includes('"type":"result"'));
  });
});

describe('jobs API: token events', () => {
  let server: TestServer;
  before(async () => { server = await startSmallServer({ threads: 1 }); });
  after(async () => { await server?.close(); });

  it('caption and text jobs send token events before done; other tasks none', async () => {
    // a job ahead keeps this one queued until its event stream is open
    const ahead = await postJson<{ id: string }>(`${server.url}/v1/jobs`, { task: 'dream', input: { text: 'дом', candidates: 8, seed: 1 } });
    assert.equal(ahead.status, 202);
    const job = await postJson<{ id: string }>(`${server.url}/v1/jobs`, { task: 'text', input: { template: 'лес', count: 4, seed: 2, earlyStop: 10 } });
    assert.equal(job.status, 202);
    const events = await readEvents(`${server.url}/v1/jobs/${job.body.id}/events`);
    const names = events.map((e) => e.event);
    assert.equal(names.at(-1), 'done');
    const tokens = events.filter((e) => e.event === 'token').map((e) => e.data as TextToken);
    assert.ok(tokens.length >= 4, names.join(','));
    assert.ok(names.lastIndexOf('token') < names.indexOf('done'));
    const result = (events.at(-1)!.data as { result: { texts: { text: string; count: number }[] } }).result;
    assert.deepEqual(counted(byCandidate(tokens)), new Map(result.texts.map((t) => [t.text, t.count])));

    const image = (await encodePng(testImage(32))).toString('base64');
    await postJson(`${server.url}/v1/jobs`, { task: 'dream', input: { text: 'дом', candidates: 8, seed: 1 } });
    const cap = await postJson<{ id: string }>(`${server.url}/v1/jobs`, { task: 'caption', input: { image, generations: 3, seed: 1, earlyStop: 14 } });
    const capEvents = await readEvents(`${server.url}/v1/jobs/${cap.body.id}/events`);
    assert.equal(capEvents.at(-1)!.event, 'done');
    assert.ok(capEvents.some((e) => e.event === 'token'), JSON.stringify(capEvents).slice(0, 600));
    const cls = await postJson<{ id: string }>(`${server.url}/v1/jobs`, { task: 'classify', input: { image, classes: ['кот', 'дом'] } });
    const clsEvents = await readEvents(`${server.url}/v1/jobs/${cls.body.id}/events`);
    assert.equal(clsEvents.filter((e) => e.event === 'token').length, 0);
    assert.equal(clsEvents.at(-1)!.event, 'done');
  });
});
