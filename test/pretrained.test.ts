import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { RudolphError } from '../src/errors.js';
import { type LoadProgress, Rudolph } from '../src/rudolph.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';
import { builtCli } from './helpers.js';
import { type MockHub, startMockHub } from './mock-hub.js';

const run = promisify(execFile);

const REPO = 'test-org/rudolph-small';

describe('fromPretrained from a hub repo, with the converted-model cache', () => {
  let hub: MockHub;
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    const model = path.join(dir, 'src');
    await writeSmallModel(model);
    hub = await startMockHub({
      repos: {
        [REPO]: {
          files: {
            'config.json': await fsp.readFile(path.join(model, 'config.json')),
            'pytorch_model.bin': await fsp.readFile(path.join(model, 'pytorch_model.bin')),
            'bpe.model': await fsp.readFile(SMALL_TOKENIZER),
          },
        },
        // the default VQGAN's repo, with the golden tiny checkpoint standing in
        'sberbank-ai/rudalle-utils': { files: { 'vqgan.gumbelf8-sber.model.ckpt': await fsp.readFile(path.join(TINY_VQGAN_DIR, 'vqgan.ckpt')) } },
      },
    });
  });
  after(async () => { await hub.close(); await cleanup(); });

  const load = async (extra: { offline?: boolean; endpoint?: string } = {}) => {
    const stages: LoadProgress[] = [];
    const t0 = performance.now();
    const r = await Rudolph.fromPretrained(REPO, {
      endpoint: hub.endpoint, cacheDir: path.join(dir, 'cache'), vqgan: TINY_VQGAN_DIR, threads: 1,
      onProgress: (p) => stages.push(p), ...extra,
    });
    const seconds = (performance.now() - t0) / 1000;
    const text = await r.generateText({ template: 'кот', count: 2, seed: 3, earlyStop: 6 });
    await r.release();
    return { stages, seconds, text };
  };

  it('downloads, converts once, then starts from the cache without network, faster', async () => {
    const first = await load();
    assert.ok(first.stages.some((s) => s.stage === 'download' && s.file === `${REPO}/pytorch_model.bin`));
    assert.ok(first.stages.some((s) => s.stage === 'convert'));
    const bodies = hub.count({ method: 'GET', body: true });
    const second = await load({ offline: true, endpoint: 'http://127.0.0.1:9' });
    assert.ok(!second.stages.some((s) => s.stage === 'convert' || s.stage === 'download'));
    assert.equal(hub.count({ method: 'GET', body: true }), bodies);
    assert.deepEqual(second.text, first.text);
    assert.ok(second.seconds < first.seconds, `second start ${second.seconds}s vs first ${first.seconds}s`);
  });

  it('detects a damaged or stale conversion and rebuilds it', async () => {
    const root = path.join(dir, 'cache', '.rudolph-ts', 'converted');
    const [key] = (await fsp.readdir(root)).filter((f) => !f.endsWith('.json'));
    const weights = path.join(root, key, 'weights.bin');
    const bytes = await fsp.readFile(weights);
    bytes[0] ^= 0xff;
    await fsp.writeFile(weights, bytes);
    const damaged = await load({ offline: true });
    assert.ok(damaged.stages.some((s) => s.stage === 'convert'), 'a flipped byte must trigger a rebuild');
    const metaFile = path.join(root, key, 'meta.json');
    const meta = JSON.parse(await fsp.readFile(metaFile, 'utf8')) as { converterVersion: number };
    meta.converterVersion = -1;
    await fsp.writeFile(metaFile, JSON.stringify(meta));
    const stale = await load({ offline: true });
    assert.ok(stale.stages.some((s) => s.stage === 'convert'), 'a stale converter version must trigger a rebuild');
    const clean = await load({ offline: true });
    assert.ok(!clean.stages.some((s) => s.stage === 'convert'));
    assert.deepEqual(clean.text, damaged.text);
  });

  it('offline with a file missing says what is missing', async () => {
    await assert.rejects(
      Rudolph.fromPretrained('test-org/not-cached', { cacheDir: path.join(dir, 'cache'), offline: true, vqgan: false }),
      (e: unknown) => e instanceof RudolphError && e.code === 'OFFLINE' && /test-org\/not-cached/.test(e.message) && /config\.json/.test(e.message),
    );
  });

  it('rudolph download / cache ls / cache verify / cache rm through the CLI', async () => {
    const cacheDir = path.join(dir, 'cli-cache');
    const env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_HUB_OFFLINE: '' };
    const main = await builtCli();
    const cli = async (args: string[], extraEnv: Record<string, string> = {}) => {
      try {
        const { stdout, stderr } = await run(process.execPath, [main, ...args], { env: { ...env, ...extraEnv } });
        return { code: 0, stdout, stderr };
      } catch (e) {
        const err = e as { code: number; stdout: string; stderr: string };
        return { code: err.code, stdout: err.stdout, stderr: err.stderr };
      }
    };
    const offline = await cli(['download', REPO, '--cache-dir', cacheDir, '--offline']);
    assert.equal(offline.code, 3);
    assert.match(offline.stderr, /config\.json from test-org\/rudolph-small/);
    assert.match(offline.stderr, /vqgan\.gumbelf8-sber\.model\.ckpt from sberbank-ai\/rudalle-utils/);
    const got = await cli(['download', REPO, '--cache-dir', cacheDir, '--json']);
    assert.equal(got.code, 0, got.stderr);
    const files = JSON.parse(got.stdout) as { weights: string; tokenizer: string; vqgan: string };
    assert.ok((await fsp.readFile(files.weights)).equals(await fsp.readFile(path.join(dir, 'src', 'pytorch_model.bin'))));
    assert.match(files.vqgan, /models--sberbank-ai--rudalle-utils/);
    const ls = await cli(['cache', 'ls', '--cache-dir', cacheDir, '--json']);
    const listing = JSON.parse(ls.stdout) as { repos: { repo: string }[] };
    assert.deepEqual(listing.repos.map((r) => r.repo).sort(), ['sberbank-ai/rudalle-utils', REPO].sort());
    const verify = await cli(['cache', 'verify', '--cache-dir', cacheDir]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const rm = await cli(['cache', 'rm', REPO, '--cache-dir', cacheDir]);
    assert.equal(rm.code, 0, rm.stderr);
    const after = JSON.parse((await cli(['cache', 'ls', '--cache-dir', cacheDir, '--json'])).stdout) as { repos: { repo: string }[] };
    assert.deepEqual(after.repos.map((r) => r.repo), ['sberbank-ai/rudalle-utils']);
  });

  it('an unknown model source is a clear error', async () => {
    await assert.rejects(Rudolph.fromPretrained('no such thing', { vqgan: false }), (e: unknown) => e instanceof RudolphError && /not a preset/.test(e.message));
  });
});
