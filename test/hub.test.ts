import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EXIT, exitCodeOf } from '../src/cli/output.js';
import { formatCacheListing, formatVerifyReport } from '../src/cli/hub-format.js';
import { downloadFile, downloadFileInfo, downloadFiles, type DownloadProgress, listCache, removeFromCache, resolveCachedFile, verifyCache } from '../src/hub/index.js';
import { PRESETS } from '../src/presets.js';
import { fetchModelFiles } from '../src/pretrained/model-files.js';
import { DATA_DIR, GOLDEN_DIR, REPO_ROOT } from './helpers.js';
import { gitBlobSha1, type MockHub, sha256Hex, startMockHub } from './mock-hub.js';

const REPO = 'test-org/rudolph-tiny';
const PRIVATE_REPO = 'test-org/private-model';
const TOKEN = 'hf_mock_token_123';
const WEIGHTS = readFileSync(path.join(GOLDEN_DIR, 'rudolph-tiny', 'pytorch_model.bin'));
const CONFIG = readFileSync(path.join(GOLDEN_DIR, 'rudolph-tiny', 'config.json'));
const NOTES = Buffer.from('nested regular file\n');

// The environment must not leak a real cache, token or endpoint into these tests.
const savedEnv = { ...process.env };
for (const key of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_HUB_OFFLINE', 'HF_ENDPOINT', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_TOKEN_PATH']) {
  delete process.env[key];
}

let hub: MockHub;
let cacheDir: string;
let tmpRoot: string;

function repoRoot(repo = REPO): string {
  return path.join(cacheDir, `models--${repo.replace('/', '--')}`);
}

async function expectCode(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<Error & { code: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as Error & { code: string };
    assert.equal(e.code, code, `expected code ${code}, got ${e.code}: ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

function visibleBlobs(repo = REPO): string[] {
  const dir = path.join(repoRoot(repo), 'blobs');
  return existsSync(dir) ? readdirSync(dir).filter((f) => !f.endsWith('.incomplete')) : [];
}

before(async () => {
  tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'rudolph-hub-'));
  process.env.HF_HOME = path.join(tmpRoot, 'hf-home'); // no stored login token
  hub = await startMockHub({
    repos: {
      [REPO]: { files: { 'pytorch_model.bin': WEIGHTS, 'config.json': CONFIG, 'docs/extra/notes.txt': NOTES } },
      [PRIVATE_REPO]: { private: true, files: { 'pytorch_model.bin': WEIGHTS } },
    },
    token: TOKEN,
  });
});

after(async () => {
  await hub.close();
  await rm(tmpRoot, { recursive: true, force: true });
  process.env = savedEnv;
});

beforeEach(async () => {
  cacheDir = await mkdtemp(path.join(tmpRoot, 'cache-'));
  hub.clearFaults();
  hub.requests.length = 0;
});

afterEach(() => {
  delete process.env.HF_HUB_OFFLINE;
});

describe('download into the hub cache', () => {
  it('downloads an LFS file into blobs/snapshots/refs like huggingface_hub', async () => {
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    const commit = hub.commitOf(REPO);
    const sha = sha256Hex(WEIGHTS);
    assert.equal(local, path.join(repoRoot(), 'snapshots', commit, 'pytorch_model.bin'));
    assert.ok(readFileSync(local).equals(WEIGHTS));
    assert.ok(lstatSync(local).isSymbolicLink());
    assert.equal(readlinkSync(local), path.join('..', '..', 'blobs', sha));
    assert.ok(lstatSync(path.join(repoRoot(), 'blobs', sha)).isFile());
    assert.equal(readFileSync(path.join(repoRoot(), 'refs', 'main'), 'utf8'), commit);
    assert.deepEqual(readdirSync(path.join(repoRoot(), 'blobs')), [sha]); // no .incomplete left
    assert.deepEqual(readdirSync(path.join(cacheDir, '.locks', `models--${REPO.replace('/', '--')}`)), []); // lock released
    // HEAD on the hub, then exactly one body GET on the LFS host
    assert.equal(hub.count({ server: 'hub', method: 'HEAD' }), 1);
    assert.equal(hub.count({ server: 'lfs', body: true }), 1);
  });

  it('names regular files by their git blob id and links nested paths', async () => {
    const local = await downloadFile({ repo: REPO, path: 'docs/extra/notes.txt', cacheDir, endpoint: hub.endpoint });
    const blob = gitBlobSha1(NOTES);
    assert.ok(readFileSync(local).equals(NOTES));
    assert.equal(readlinkSync(local), path.join('..', '..', '..', '..', 'blobs', blob));
    assert.equal(hub.count({ server: 'lfs' }), 0);
  });

  it('downloadFiles pins every file to one commit and returns them in order', async () => {
    const paths = await downloadFiles(REPO, ['config.json', 'pytorch_model.bin'], { cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(paths[0]).equals(CONFIG));
    assert.ok(readFileSync(paths[1]).equals(WEIGHTS));
    const commit = hub.commitOf(REPO);
    // the second HEAD asks for the commit the first one resolved to, not for "main"
    const heads = hub.requests.filter((r) => r.method === 'HEAD');
    assert.match(heads[1].url, new RegExp(`/resolve/${commit}/pytorch_model.bin$`));
  });

  it('serves a cached file without any request, even with the hub gone', async () => {
    const first = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    const before = hub.requests.length;
    const again = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.equal(again, first);
    assert.equal(hub.requests.length, before);
    // a dead endpoint (nothing listens there) is never contacted either
    const dead = await deadEndpoint();
    assert.equal(await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: dead }), first);
    // refresh asks the hub; when it cannot be reached the cached copy is used (huggingface_hub's fallback)
    assert.equal(await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: dead, refresh: true }), first);
    const info = await downloadFileInfo({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, refresh: true });
    assert.equal(info.fromCache, true);
    assert.equal(hub.count({ method: 'HEAD' }), 2);
    assert.equal(hub.count({ body: true }), 1);
  });

  it('refresh follows a branch that moved to a new commit and updates refs/main', async () => {
    const repo = 'test-org/moving';
    const v1 = Buffer.from('first version of the config');
    const v2 = Buffer.from('second version of the config');
    hub.setRepo(repo, { commit: 'a'.repeat(40), files: { 'config.json': v1 } });
    const old = await downloadFile({ repo, path: 'config.json', cacheDir, endpoint: hub.endpoint });
    hub.setRepo(repo, { commit: 'b'.repeat(40), files: { 'config.json': v2 } });
    assert.equal(await downloadFile({ repo, path: 'config.json', cacheDir, endpoint: hub.endpoint }), old); // no refresh: cached
    const fresh = await downloadFile({ repo, path: 'config.json', cacheDir, endpoint: hub.endpoint, refresh: true });
    assert.ok(readFileSync(fresh).equals(v2));
    assert.ok(readFileSync(old).equals(v1)); // the old snapshot stays intact
    assert.equal(readFileSync(path.join(repoRoot(repo), 'refs', 'main'), 'utf8'), 'b'.repeat(40));
    // an explicit commit stays reachable
    assert.equal(await resolveCachedFile({ repo, path: 'config.json', revision: 'a'.repeat(40), cacheDir }), old);
  });
});

describe('resume and integrity', () => {
  it('resumes with a Range request after the server drops the connection mid-file', async () => {
    hub.setFault('pytorch_model.bin', { dropAfterBytes: 300_000, times: 1 });
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    const gets = hub.requests.filter((r) => r.server === 'lfs' && r.method === 'GET');
    assert.equal(gets.length, 2);
    assert.equal(gets[0].range, undefined);
    // resumes from what reached the disk: at most the 300 000 bytes sent (a reset socket may lose some in flight)
    const resumeAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1] ?? NaN);
    assert.ok(resumeAt > 0 && resumeAt <= 300_000, `resumed at ${gets[1].range}`);
    assert.equal(gets[1].status, 206);
  });

  it('a transfer that stalls is cut after timeoutMs and resumed', { timeout: 20_000 }, async () => {
    hub.setFault('pytorch_model.bin', { stallAfterBytes: 200_000, times: 1 });
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, timeoutMs: 300 });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    assert.deepEqual(hub.requests.filter((r) => r.server === 'lfs' && r.method === 'GET').map((r) => r.range), [undefined, 'bytes=200000-']);
  });

  it('rejects corrupted bytes and leaves nothing visible', async () => {
    hub.setFault('pytorch_model.bin', { corruptAt: 123_456 });
    await expectCode(downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint }), 'INTEGRITY', /sha256/);
    assert.deepEqual(visibleBlobs(), []);
    assert.equal(existsSync(path.join(repoRoot(), 'blobs', `${sha256Hex(WEIGHTS)}.incomplete`)), false); // corrupt bytes are not resumed
    assert.equal(existsSync(path.join(repoRoot(), 'snapshots', hub.commitOf(REPO), 'pytorch_model.bin')), false);
    assert.equal(await resolveCachedFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir }), null);
  });

  it('rejects a regular file whose bytes do not match its git blob id', async () => {
    hub.setFault('config.json', { corruptAt: 10 });
    await expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint }), 'INTEGRITY', /git-sha1/);
    assert.deepEqual(visibleBlobs(), []);
  });

  it('refetches from scratch when a leftover partial turns out to be wrong', async () => {
    const sha = sha256Hex(WEIGHTS);
    mkdirSync(path.join(repoRoot(), 'blobs'), { recursive: true });
    writeFileSync(path.join(repoRoot(), 'blobs', `${sha}.incomplete`), Buffer.alloc(5000, 7)); // not the file's first bytes
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    const gets = hub.requests.filter((r) => r.server === 'lfs' && r.method === 'GET');
    assert.deepEqual(gets.map((g) => g.range), ['bytes=5000-', undefined]);
  });

  it('gives up with a DOWNLOAD error after repeated drops and keeps the partial for the next run', async () => {
    hub.setFault('pytorch_model.bin', { dropAfterBytes: 0 });
    await expectCode(
      downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, retries: 2 }),
      'DOWNLOAD',
      /failed 3 times in a row.*next run resumes/,
    );
    assert.equal(hub.count({ server: 'lfs', method: 'GET' }), 3);
    assert.deepEqual(visibleBlobs(), []);
  });

  it('abort mid-download leaves only the resumable .incomplete; the next run resumes it', async () => {
    hub.setFault('pytorch_model.bin', { chunkSize: 16 * 1024, chunkDelayMs: 15 });
    const controller = new AbortController();
    const events: DownloadProgress[] = [];
    const run = downloadFile({
      repo: REPO,
      path: 'pytorch_model.bin',
      cacheDir,
      endpoint: hub.endpoint,
      signal: controller.signal,
      onProgress: (p) => {
        events.push(p);
        if (p.loaded >= 100_000) controller.abort();
      },
    });
    await expectCode(run, 'ABORTED');
    const sha = sha256Hex(WEIGHTS);
    const partial = path.join(repoRoot(), 'blobs', `${sha}.incomplete`);
    assert.deepEqual(readdirSync(path.join(repoRoot(), 'blobs')), [`${sha}.incomplete`]);
    assert.ok(!existsSync(path.join(repoRoot(), 'snapshots')) || readdirSync(path.join(repoRoot(), 'snapshots')).length === 0);
    const kept = lstatSync(partial).size;
    assert.ok(kept >= 100_000 && kept < WEIGHTS.length, `partial holds ${kept} bytes`);
    assert.ok(readFileSync(partial).equals(WEIGHTS.subarray(0, kept)));
    assert.deepEqual(readdirSync(path.join(cacheDir, '.locks', `models--${REPO.replace('/', '--')}`)), []);

    hub.clearFaults();
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    assert.equal(hub.requests.filter((r) => r.server === 'lfs' && r.method === 'GET').at(-1)?.range, `bytes=${kept}-`);
  });

  it('an already aborted signal touches nothing', async () => {
    await expectCode(
      downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, signal: AbortSignal.abort() }),
      'ABORTED',
    );
    assert.equal(hub.requests.length, 0);
  });
});

describe('timeouts and retries', () => {
  /** Runs `fn` while forcing garbage collection, as a long-running process would now and then. */
  async function withGc<T>(fn: () => Promise<T>): Promise<T> {
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const timer = setInterval(gc, 50);
    try {
      return await fn();
    } finally {
      clearInterval(timer);
    }
  }

  it('a hub that accepts the connection and never answers times out (even with GC running)', { timeout: 15_000 }, async () => {
    hub.setFault('config.json', { noAnswer: true, requests: 'head' });
    const started = Date.now();
    const err = await withGc(() =>
      expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint, timeoutMs: 300 }), 'OFFLINE', /no answer within 0\.3 s.*HF_HUB_DOWNLOAD_TIMEOUT/s),
    );
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.equal(exitCodeOf(err), EXIT.network);
  });

  it('HF_HUB_DOWNLOAD_TIMEOUT (seconds) sets the timeout', { timeout: 15_000 }, async () => {
    hub.setFault('config.json', { noAnswer: true, requests: 'head' });
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = '0.4';
    try {
      const started = Date.now();
      await expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint }), 'OFFLINE', /no answer within 0\.4 s/);
      assert.ok(Date.now() - started < 5000);
      process.env.HF_HUB_DOWNLOAD_TIMEOUT = 'soon';
      await expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint }), 'INPUT', /HF_HUB_DOWNLOAD_TIMEOUT/);
    } finally {
      delete process.env.HF_HUB_DOWNLOAD_TIMEOUT;
    }
  });

  it('a body request that is never answered is retried, then gives up with a DOWNLOAD error', { timeout: 20_000 }, async () => {
    hub.setFault('pytorch_model.bin', { noAnswer: true });
    const err = await withGc(() =>
      expectCode(downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, timeoutMs: 300, retries: 2 }), 'DOWNLOAD', /no response within 0\.3 s/),
    );
    assert.equal(hub.count({ server: 'lfs', method: 'GET' }), 3);
    assert.equal(exitCodeOf(err), EXIT.network);
  });

  it('a server that sends a little, stalls and ignores Range is not retried forever', { timeout: 30_000 }, async () => {
    hub.setFault('pytorch_model.bin', { stallAfterBytes: 100_000, ignoreRange: true });
    const started = Date.now();
    await expectCode(
      downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, timeoutMs: 200, retries: 2 }),
      'DOWNLOAD',
      /no new bytes/,
    );
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    assert.ok(hub.count({ server: 'lfs', method: 'GET' }) <= 8, `${hub.count({ server: 'lfs', method: 'GET' })} GETs`);
  });

  it('the total retry budget ends a transfer that keeps dropping, even while it progresses', { timeout: 30_000 }, async () => {
    hub.setFault('pytorch_model.bin', { dropAfterBytes: 100_000 });
    await expectCode(
      downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, retries: 2, retryBudget: 3 }),
      'DOWNLOAD',
      /retry budget of 3/,
    );
    assert.equal(hub.count({ server: 'lfs', method: 'GET' }), 4);
    // what arrived is kept: the next run resumes
    hub.clearFaults();
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    assert.match(hub.requests.filter((r) => r.server === 'lfs' && r.method === 'GET').at(-1)?.range ?? '', /^bytes=[1-9]\d*-$/);
  });

  it('429 on the body is retried after the Retry-After the server asks for', { timeout: 20_000 }, async () => {
    hub.setFault('pytorch_model.bin', { status: 429, retryAfter: '1', times: 1 });
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    const gets = hub.requests.filter((r) => r.server === 'lfs' && r.method === 'GET');
    assert.deepEqual(gets.map((g) => g.status), [429, 200]);
    assert.ok(gets[1].at - gets[0].at >= 950, `waited only ${gets[1].at - gets[0].at} ms`);
  });

  it('503 with Retry-After on the metadata request is retried', { timeout: 20_000 }, async () => {
    hub.setFault('config.json', { status: 503, retryAfter: '1', times: 1, requests: 'head' });
    const local = await downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(CONFIG));
    const heads = hub.requests.filter((r) => r.method === 'HEAD');
    assert.deepEqual(heads.map((h) => h.status), [503, 200]);
    assert.ok(heads[1].at - heads[0].at >= 950, `waited only ${heads[1].at - heads[0].at} ms`);
  });

  it('a Retry-After beyond the bound is not waited for', { timeout: 10_000 }, async () => {
    hub.setFault('config.json', { status: 429, retryAfter: '3600', requests: 'head' });
    const started = Date.now();
    await expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint }), 'DOWNLOAD', /HTTP 429.*retry after 3600 s/s);
    assert.ok(Date.now() - started < 3000);
  });

  it('keeps answering 503: gives up after the retries with the status named', { timeout: 20_000 }, async () => {
    hub.setFault('config.json', { status: 503, requests: 'head' });
    await expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint, retries: 2 }), 'DOWNLOAD', /HTTP 503/);
    assert.equal(hub.count({ method: 'HEAD' }), 3);
  });
});

describe('concurrency', () => {
  it('two concurrent downloads of one file fetch its body once', { timeout: 20_000 }, async () => {
    hub.setFault('pytorch_model.bin', { chunkSize: 64 * 1024, chunkDelayMs: 5 });
    const [a, b] = await Promise.all([
      downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint }),
      downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint }),
    ]);
    assert.equal(a, b);
    assert.ok(readFileSync(a).equals(WEIGHTS));
    assert.equal(hub.count({ server: 'lfs', method: 'GET' }), 1);
  });

  it('a second process waits for the first and then finds the file', { timeout: 30_000 }, async () => {
    hub.setFault('pytorch_model.bin', { chunkSize: 64 * 1024, chunkDelayMs: 10 });
    const script = [
      `import { downloadFile } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'hub', 'index.ts'))};`,
      `const p = await downloadFile({ repo: ${JSON.stringify(REPO)}, path: 'pytorch_model.bin', cacheDir: ${JSON.stringify(cacheDir)}, endpoint: ${JSON.stringify(hub.endpoint)} });`,
      `process.stdout.write(p);`,
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const childDone = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    // start ours once the child's body transfer is under way
    while (hub.count({ server: 'lfs', method: 'GET' }) === 0 && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    const ours = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.equal(await childDone, 0, errText);
    assert.equal(out, ours);
    assert.ok(readFileSync(ours).equals(WEIGHTS));
    assert.equal(hub.count({ server: 'lfs', method: 'GET' }), 1);
  });

  it('takes over a lock left by a process that no longer exists', { timeout: 20_000 }, async () => {
    const deadPid = await new Promise<number>((resolve) => {
      const p = spawn(process.execPath, ['-e', '0']);
      p.on('close', () => resolve(p.pid ?? 999_999));
    });
    const lockDir = path.join(cacheDir, '.locks', `models--${REPO.replace('/', '--')}`);
    mkdirSync(lockDir, { recursive: true });
    writeFileSync(path.join(lockDir, `${sha256Hex(WEIGHTS)}.lock`), JSON.stringify({ pid: deadPid, host: os.hostname(), id: 'old' }));
    const started = Date.now();
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    assert.ok(Date.now() - started < 5000);
    assert.deepEqual(readdirSync(lockDir), []);
  });
});

describe('offline', () => {
  it('HF_HUB_OFFLINE=1 with everything cached works without a request', async () => {
    const local = await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    hub.requests.length = 0;
    process.env.HF_HUB_OFFLINE = '1';
    assert.equal(await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, refresh: true }), local);
    assert.equal(hub.requests.length, 0);
  });

  it('HF_HUB_OFFLINE=1 with a missing file names it and how to provide it', async () => {
    await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
    hub.requests.length = 0;
    process.env.HF_HUB_OFFLINE = '1';
    const err = await expectCode(downloadFile({ repo: REPO, path: 'config.json', cacheDir, endpoint: hub.endpoint }), 'OFFLINE');
    assert.equal(hub.requests.length, 0);
    for (const part of ['config.json', REPO, 'revision main', cacheDir, 'HF_HUB_OFFLINE=1', '--model DIR', 'HF_ENDPOINT']) {
      assert.ok(err.message.includes(part), `message lacks "${part}":\n${err.message}`);
    }
    // the commit is known from refs/main, so the copy target is exact
    assert.ok(err.message.includes(path.join(repoRoot(), 'snapshots', hub.commitOf(REPO), 'config.json')), err.message);
  });

  it('an unreachable hub gives one OFFLINE error listing every missing file', async () => {
    const dead = await deadEndpoint();
    const err = await expectCode(downloadFiles(REPO, ['config.json', 'pytorch_model.bin'], { cacheDir, endpoint: dead }), 'OFFLINE', /cannot be reached \(ECONNREFUSED/);
    assert.match(err.message, /2 needed files are not in the Hugging Face cache/);
    assert.match(err.message, /config\.json from test-org\/rudolph-tiny/);
    assert.match(err.message, /pytorch_model\.bin from test-org\/rudolph-tiny/);
    assert.match(err.message, /<COMMIT>/); // no ref yet: tells how to name the snapshot
  });

  it('a preset offline names the checkpoint, tokenizer and VQGAN in one message', async () => {
    const err = await expectCode(fetchModelFiles('350M', { cacheDir, offline: true }), 'OFFLINE');
    const { checkpoint, tokenizer, vqgan } = PRESETS['350M'];
    for (const f of [checkpoint, tokenizer, vqgan]) assert.ok(err.message.includes(`${f.file} from ${f.repo}`), err.message);
  });
});

describe('environment', () => {
  it('HF_HOME, HF_HUB_CACHE and HF_ENDPOINT choose the cache and the hub', async () => {
    const home = path.join(cacheDir, 'home');
    process.env.HF_HOME = home;
    process.env.HF_ENDPOINT = hub.endpoint;
    try {
      const viaHome = await downloadFile({ repo: REPO, path: 'config.json' });
      assert.equal(viaHome, path.join(home, 'hub', `models--${REPO.replace('/', '--')}`, 'snapshots', hub.commitOf(REPO), 'config.json'));
      process.env.HF_HUB_CACHE = path.join(cacheDir, 'explicit');
      const viaCache = await downloadFile({ repo: REPO, path: 'config.json' });
      assert.ok(viaCache.startsWith(path.join(cacheDir, 'explicit', `models--`)), viaCache);
      assert.equal(await resolveCachedFile({ repo: REPO, path: 'config.json' }), viaCache);
    } finally {
      process.env.HF_HOME = path.join(tmpRoot, 'hf-home');
      delete process.env.HF_HUB_CACHE;
      delete process.env.HF_ENDPOINT;
    }
  });
});

describe('hub errors', () => {
  it('401 for a private repo without a token; works with it, and the token never reaches the LFS host', async () => {
    const denied = await expectCode(
      downloadFile({ repo: PRIVATE_REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint }),
      'DOWNLOAD',
      /HTTP 401.*HF_TOKEN.*--token/s,
    );
    assert.equal((denied as unknown as { status: number }).status, 401);
    await expectCode(downloadFile({ repo: PRIVATE_REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, token: 'wrong' }), 'DOWNLOAD', /401/);

    hub.requests.length = 0;
    const local = await downloadFile({ repo: PRIVATE_REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, token: TOKEN });
    assert.ok(readFileSync(local).equals(WEIGHTS));
    const hubReqs = hub.requests.filter((r) => r.server === 'hub');
    const lfsReqs = hub.requests.filter((r) => r.server === 'lfs');
    assert.ok(hubReqs.length > 0 && hubReqs.every((r) => r.authorization === `Bearer ${TOKEN}`));
    assert.ok(lfsReqs.length > 0 && lfsReqs.every((r) => r.authorization === undefined));
  });

  it('the CLI takes --token, and its 401 message names HF_TOKEN and --token (exit 3)', { timeout: 60_000 }, async () => {
    const cli = (args: string[]): Promise<{ code: number; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'main.ts'), ...args], {
          env: { ...process.env, HF_ENDPOINT: hub.endpoint }, stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
      });
    const denied = await cli(['download', PRIVATE_REPO, '--cache-dir', cacheDir, '-q']);
    assert.equal(denied.code, 3, denied.stderr);
    assert.match(denied.stderr, /HTTP 401.*HF_TOKEN.*--token/s);
    // with the token the hub lets us in: the private repo then lacks config.json (a 404, not a 401)
    const allowed = await cli(['download', PRIVATE_REPO, '--cache-dir', cacheDir, '-q', '--token', TOKEN]);
    assert.equal(allowed.code, 3, allowed.stderr);
    assert.match(allowed.stderr, /file config\.json does not exist in test-org\/private-model/);
  });

  it('HF_TOKEN from the environment is used', async () => {
    process.env.HF_TOKEN = TOKEN;
    try {
      const local = await downloadFile({ repo: PRIVATE_REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint });
      assert.ok(readFileSync(local).equals(WEIGHTS));
    } finally {
      delete process.env.HF_TOKEN;
    }
  });

  it('404 for a missing file, revision or repo', async () => {
    await expectCode(downloadFile({ repo: REPO, path: 'nope.bin', cacheDir, endpoint: hub.endpoint }), 'DOWNLOAD', /file nope\.bin does not exist in test-org\/rudolph-tiny/);
    await expectCode(downloadFile({ repo: REPO, path: 'config.json', revision: 'v9', cacheDir, endpoint: hub.endpoint }), 'DOWNLOAD', /revision v9 does not exist/);
    await expectCode(downloadFile({ repo: 'test-org/missing', path: 'config.json', cacheDir, endpoint: hub.endpoint }), 'DOWNLOAD', /repo test-org\/missing does not exist/);
    assert.equal(existsSync(path.join(cacheDir, 'models--test-org--missing')), false);
  });

  it('bad repo ids and paths are rejected before any request', async () => {
    await expectCode(downloadFile({ repo: '../etc', path: 'x', cacheDir, endpoint: hub.endpoint }), 'INPUT', /repo id/);
    await expectCode(downloadFile({ repo: REPO, path: '../../escape', cacheDir, endpoint: hub.endpoint }), 'INPUT', /file path/);
    assert.equal(hub.requests.length, 0);
  });
});

describe('progress', () => {
  it('reports monotonic progress ending with the full size', async () => {
    // 36 chunks of the 1.16 MB file, 10 ms apart: ≥ 350 ms of transfer, so the tracker's one report
    // per 100 ms gives several before the final one on any machine (3 ms apart made ~110 ms: 2 reports)
    hub.setFault('pytorch_model.bin', { chunkSize: 32 * 1024, chunkDelayMs: 10 });
    const events: DownloadProgress[] = [];
    await downloadFile({ repo: REPO, path: 'pytorch_model.bin', cacheDir, endpoint: hub.endpoint, onProgress: (p) => events.push(p) });
    assert.ok(events.length >= 3, `only ${events.length} events`);
    for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded >= events[i - 1].loaded, `event ${i} went back`);
    const last = events.at(-1) as DownloadProgress;
    assert.deepEqual([last.done, last.loaded, last.total, last.fromCache], [true, WEIGHTS.length, WEIGHTS.length, false]);
    assert.ok(events.every((e) => e.file === 'pytorch_model.bin' && e.repo === REPO && e.total === WEIGHTS.length));
    assert.ok(events.some((e) => e.bytesPerSecond > 0 && e.etaSeconds !== null && !e.done));
    assert.equal(events.filter((e) => e.done).length, 1);
  });
});

describe('cache management', () => {
  it('lists, verifies, detects corruption and removes revisions', async () => {
    await downloadFiles(REPO, ['pytorch_model.bin', 'config.json', 'docs/extra/notes.txt'], { cacheDir, endpoint: hub.endpoint });
    const listing = await listCache(cacheDir);
    assert.equal(listing.repos.length, 1);
    const [repo] = listing.repos;
    assert.equal(repo.repo, REPO);
    assert.equal(repo.revisions.length, 1);
    assert.deepEqual(repo.revisions[0].refs, ['main']);
    assert.deepEqual(repo.revisions[0].files.map((f) => f.path).sort(), ['config.json', 'docs/extra/notes.txt', 'pytorch_model.bin']);
    assert.equal(repo.size, WEIGHTS.length + CONFIG.length + NOTES.length);
    assert.match(formatCacheListing(listing), /test-org\/rudolph-tiny\s+[0-9a-f]{8}\s+main/);

    const clean = await verifyCache(cacheDir);
    assert.equal(clean.ok, true);
    assert.deepEqual(clean.blobs.map((b) => b.status), ['ok', 'ok', 'ok']);

    const blob = path.join(repoRoot(), 'blobs', sha256Hex(WEIGHTS));
    const bytes = await readFile(blob);
    bytes[1000] ^= 1;
    await writeFile(blob, bytes);
    const bad = await verifyCache(cacheDir);
    assert.equal(bad.ok, false);
    assert.deepEqual(bad.corrupt.map((b) => b.blob), [sha256Hex(WEIGHTS)]);
    assert.equal(bad.corrupt[0].actual, createHash('sha256').update(bytes).digest('hex'));
    assert.deepEqual(bad.corrupt[0].usedBy, [`${hub.commitOf(REPO)}/pytorch_model.bin`]);
    assert.match(formatVerifyReport(bad), /CORRUPT test-org\/rudolph-tiny/);

    // a second revision sharing the config blob: removing main must keep that blob
    const other = 'c'.repeat(40);
    hub.setRepo(REPO, { files: { 'pytorch_model.bin': WEIGHTS, 'config.json': CONFIG, 'docs/extra/notes.txt': NOTES }, refs: { v2: other } });
    await downloadFile({ repo: REPO, path: 'config.json', revision: 'v2', cacheDir, endpoint: hub.endpoint });
    const removed = await removeFromCache(cacheDir, REPO, 'main');
    assert.equal(removed.commit, hub.commitOf(REPO));
    assert.equal(removed.removedBytes, WEIGHTS.length + NOTES.length);
    assert.deepEqual(visibleBlobs().sort(), [gitBlobSha1(CONFIG)]);
    assert.ok(readFileSync(path.join(repoRoot(), 'snapshots', other, 'config.json')).equals(CONFIG));
    assert.equal(existsSync(path.join(repoRoot(), 'refs', 'main')), false);
    await expectCode(removeFromCache(cacheDir, REPO, 'main'), 'INPUT', /not in the cache/);

    await removeFromCache(cacheDir, REPO);
    assert.equal(existsSync(repoRoot()), false);
    assert.deepEqual((await listCache(cacheDir)).repos, []);
    hub.setRepo(REPO, { files: { 'pytorch_model.bin': WEIGHTS, 'config.json': CONFIG, 'docs/extra/notes.txt': NOTES } });
  });

  it('uses files a copy-instead-of-symlink cache holds (huggingface_hub on Windows)', async () => {
    const commit = 'd'.repeat(40);
    const snap = path.join(repoRoot(), 'snapshots', commit);
    mkdirSync(snap, { recursive: true });
    mkdirSync(path.join(repoRoot(), 'refs'), { recursive: true });
    writeFileSync(path.join(snap, 'config.json'), CONFIG);
    writeFileSync(path.join(repoRoot(), 'refs', 'main'), commit);
    process.env.HF_HUB_OFFLINE = '1';
    assert.equal(await downloadFile({ repo: REPO, path: 'config.json', cacheDir }), path.join(snap, 'config.json'));
    const listing = await listCache(cacheDir);
    assert.equal(listing.repos[0].revisions[0].files[0].blob, null);
    assert.equal(listing.repos[0].size, CONFIG.length);
  });
});

describe('presets', () => {
  it('PRESETS use the hub repos SPEC §1 names', () => {
    const spec = readFileSync(path.join(DATA_DIR, "SPEC.md"), 'utf8');
    const section = spec.slice(spec.indexOf('## 1.'), spec.indexOf('## 2.'));
    for (const [name, files] of Object.entries(PRESETS)) {
      assert.ok(section.includes(`\`${files.checkpoint.repo}\``), `${name}: ${files.checkpoint.repo} not in SPEC §1`);
      assert.equal(files.checkpoint.file, 'pytorch_model.bin');
      assert.ok(section.includes(`repo\n\`${files.tokenizer.repo}\``) || section.includes(`\`${files.tokenizer.repo}\``));
      assert.ok(section.includes(`\`${files.tokenizer.file}\``) && section.includes(`\`${files.vqgan.repo}\``) && section.includes(`\`${files.vqgan.file}\``));
    }
    assert.equal(PRESETS['350M'].checkpoint.repo, 'shonenkov-AI/RuDOLPH-350M-v2');
  });

  it('a preset fetches checkpoint, tokenizer and VQGAN', async () => {
    const files = PRESETS['350M'];
    const content = { model: Buffer.from('ckpt'), tokenizer: Buffer.from('bpe'), vqgan: Buffer.alloc(4096, 3) };
    hub.setRepo(files.checkpoint.repo, { files: { [files.checkpoint.file]: content.model } });
    hub.setRepo(files.tokenizer.repo, { files: { [files.tokenizer.file]: content.tokenizer } });
    hub.setRepo(files.vqgan.repo, { files: { [files.vqgan.file]: content.vqgan } });
    const got = await fetchModelFiles('350M', { cacheDir, endpoint: hub.endpoint });
    assert.ok(readFileSync(got.weightsFile).equals(content.model));
    assert.ok(readFileSync(got.tokenizer as string).equals(content.tokenizer));
    assert.ok(readFileSync(got.vqganFile!).equals(content.vqgan));
    await expectCode(fetchModelFiles('no/such--thing', { cacheDir, endpoint: hub.endpoint }), 'INPUT');
  });
});

/** A URL where nothing listens: a port we bound and released. */
async function deadEndpoint(): Promise<string> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}
