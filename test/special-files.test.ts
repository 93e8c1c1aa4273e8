/**
 * Paths a user gives may name devices that never end (/dev/zero, /dev/urandom), FIFOs (opening
 * one waits for a writer) or folders. Every reader of a user-named file refuses them at once
 * with its typed error, before reading anything (found by the fuzzer's manifest target).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointError, ConfigError, RudolphError } from '../src/errors.js';
import { ImageError } from '../src/image/index.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { readConfigFile } from '../src/pretrained/model-dir.js';
import { readImage } from '../src/runtime/node/index.js';
import { TokenizerError } from '../src/tokenizer/errors.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { ManifestError, loadDataset, readManifest } from '../src/train/data.js';
import { TrainingError } from '../src/train/errors.js';
import { readVqganConfigFile } from '../src/vqgan/config.js';
import { makeConfig } from '../src/model/config.js';
import { SMALL_PARAMS, tempDir } from './fixtures.js';

const posix = process.platform !== 'win32';

async function refusedQuickly<T extends RudolphError>(p: Promise<unknown>, type: new (...args: never[]) => T, pattern: RegExp): Promise<void> {
  const t0 = performance.now();
  await assert.rejects(p, (e: unknown) => e instanceof type && pattern.test((e as Error).message));
  assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
}

describe('devices, FIFOs and folders where a file is expected', { skip: !posix && 'POSIX devices and FIFOs only' }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let fifo: string;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await mkdir(path.join(dir, 'folder'));
  });
  after(async () => { await cleanup(); });

  it('images', async () => {
    await refusedQuickly(readImage('/dev/urandom'), ImageError, /\/dev\/urandom: is a device, not a regular file/);
    await refusedQuickly(readImage('/dev/zero'), ImageError, /is a device/);
    await refusedQuickly(readImage(fifo), ImageError, /is a FIFO, not a regular file/);
    await refusedQuickly(readImage(path.join(dir, 'folder')), ImageError, /is a directory, not a regular file/);
  });

  it('tokenizer models, configs and checkpoints', async () => {
    await refusedQuickly(YttmTokenizer.fromFile('/dev/zero'), TokenizerError, /cannot read tokenizer model \/dev\/zero: is a device/);
    await refusedQuickly(YttmTokenizer.fromFile(fifo), TokenizerError, /is a FIFO/);
    await refusedQuickly(readConfigFile('/dev/zero'), ConfigError, /\/dev\/zero: cannot read the model config: is a device/);
    await refusedQuickly(readVqganConfigFile(fifo), ConfigError, /is a FIFO/);
    await refusedQuickly(openCheckpoint('/dev/zero'), CheckpointError, /\/dev\/zero: cannot open: is a device, not a regular file/);
    await refusedQuickly(openCheckpoint(fifo), CheckpointError, /not a regular file/);
  });

  it('fine-tuning manifests and the images they name', async () => {
    await refusedQuickly(readManifest('/dev/zero'), TrainingError, /cannot read the data manifest: is a device/);
    const manifest = path.join(dir, 'train.jsonl');
    await writeFile(manifest, ['/dev/zero', '/dev/urandom', fifo, 'folder'].map((image) => JSON.stringify({ image, right: 'x' })).join('\n'));
    const cfg = makeConfig(SMALL_PARAMS);
    const tokenizer = { encode: () => [], decode: () => '', vocabSize: 512 };
    const codec = { encode: async () => new Int32Array(0), decodeToImages: async () => [] };
    const t0 = performance.now();
    await assert.rejects(loadDataset(manifest, { cfg, tokenizer, vqgan: codec }), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.deepEqual(e.problems.map((p) => p.line), [1, 2, 3, 4]);
      assert.match(e.problems[0].reason, /\/dev\/zero: is a device, not a regular file/);
      assert.match(e.problems[2].reason, /is a FIFO/);
      return true;
    });
    assert.ok(performance.now() - t0 < 2000);
    assert.ok(existsSync(fifo));
  });
});
