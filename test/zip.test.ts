/**
 * The zip reader over ByteSources (io/zip.ts): stored and deflated entries, zip64 records, the
 * limits that keep a forged archive from costing memory, and truncated files — each refused with a
 * CheckpointError naming the file.
 */
import assert from 'node:assert/strict';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import yazl from 'yazl';
import { CheckpointError } from '../src/errors.js';
import { ZipArchive } from '../src/io/zip.js';
import { openFileBytes } from '../src/runtime/node/byte-source.js';
import { tempDir } from './fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
before(async () => { tmp = await tempDir('rudolph-zip-'); });
after(async () => { await tmp.cleanup(); });

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * seed + (i >> 7)) & 255;
  return b;
}

async function writeZip(file: string, entries: [string, Buffer, boolean][], zip64 = false): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const [name, data, compress] of entries) zip.addBuffer(data, name, { compress, forceZip64Format: zip64 });
  zip.end({ forceZip64Format: zip64, comment: '' });
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(file)).on('close', () => resolve()).on('error', reject);
  });
}

async function open(file: string): Promise<ZipArchive> {
  return ZipArchive.open(await openFileBytes(file));
}

describe('zip reader', () => {
  const stored = bytes(70_000, 3);
  const text = Buffer.from('abc'.repeat(50_000));

  for (const zip64 of [false, true]) {
    it(`reads stored and deflated entries${zip64 ? ' (zip64 records)' : ''}`, async () => {
      const file = path.join(tmp.dir, `a${zip64 ? '64' : ''}.zip`);
      await writeZip(file, [['arch/data/0', stored, false], ['arch/data.pkl', text, true], ['arch/empty', Buffer.alloc(0), false]], zip64);
      const zip = await open(file);
      assert.deepEqual([...zip.entries.keys()], ['arch/data/0', 'arch/data.pkl', 'arch/empty']);
      const e0 = zip.entries.get('arch/data/0')!;
      assert.equal(e0.method, 0);
      const got = await zip.read(e0);
      assert.deepEqual(Buffer.from(got), stored);
      assert.equal(got.byteOffset, 0, 'a stored entry comes in its own buffer (aligned typed views)');
      const pkl = zip.entries.get('arch/data.pkl')!;
      assert.equal(pkl.method, 8);
      assert.ok(pkl.compressedSize < text.length / 10);
      assert.deepEqual(Buffer.from(await zip.read(pkl)), text);
      assert.deepEqual(Buffer.from(await zip.read(zip.entries.get('arch/empty')!)), Buffer.alloc(0));
      await zip.source.close();
    });
  }

  it('reads a prefix of a long entry, and refuses one longer than its limit', async () => {
    const file = path.join(tmp.dir, 'b.zip');
    await writeZip(file, [['s', stored, false], ['d', text, true]]);
    const zip = await open(file);
    assert.deepEqual(Buffer.from(await zip.read(zip.entries.get('s')!, 1000, true)), stored.subarray(0, 1000));
    assert.deepEqual(Buffer.from(await zip.read(zip.entries.get('d')!, 10, true)), text.subarray(0, 10));
    await assert.rejects(zip.read(zip.entries.get('d')!, 10), (e: unknown) => e instanceof CheckpointError && /b\.zip: d claims 150000 bytes, more than the 10 it may hold/.test(e.message));
    await zip.source.close();
  });

  it('refuses truncated archives and entries claiming more than deflate can produce', async () => {
    const file = path.join(tmp.dir, 'c.zip');
    await writeZip(file, [['s', stored, false], ['d', text, true]]);
    const whole = await fsp.readFile(file);
    const cut = path.join(tmp.dir, 'cut.zip');
    await fsp.writeFile(cut, whole.subarray(0, whole.length - 30));
    await assert.rejects(open(cut), (e: unknown) => e instanceof CheckpointError && /cut\.zip: .*end-of-central-directory/.test(e.message));
    await fsp.writeFile(cut, whole.subarray(0, 100));
    await assert.rejects(open(cut), (e: unknown) => e instanceof CheckpointError && /cut\.zip/.test(e.message));
    // forge the deflated entry's uncompressed size in the central directory (offset 24 of its record)
    const forged = Buffer.from(whole);
    const cd = forged.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    forged.writeUInt32LE(0xfff00000, cd + 24);
    const bomb = path.join(tmp.dir, 'bomb.zip');
    await fsp.writeFile(bomb, forged);
    await assert.rejects(open(bomb), (e: unknown) => e instanceof CheckpointError && /bomb\.zip: d claims to inflate \d+ bytes into 4293918720, more than deflate can/.test(e.message));
  });
});
