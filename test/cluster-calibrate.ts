/**
 * The machine's parallel capacity for the cluster test's own work: loads the small model through
 * the library (one onnxruntime thread, fp32 like the workers), says "ready", waits for "go" on
 * stdin, runs the same classify `count` times and prints the milliseconds it took. Two of these
 * at once against one alone is what two workers can gain at best on this machine right now.
 * Usage: tsx test/cluster-calibrate.ts <model dir> <tokenizer> <vqgan dir> <cache dir> <png base64 file> <count>
 */
import { readFile } from 'node:fs/promises';
import '../src/runtime/node/index.js';
import { Rudolph } from '../src/rudolph.js';
import { readImage } from '../src/runtime/node/image-files.js';

const [model, tokenizer, vqgan, cacheDir, pngFile, countArg] = process.argv.slice(2);
const r = await Rudolph.fromPretrained(model, { tokenizer, vqgan, cacheDir, threads: 1, precision: 'fp32' });
const image = await readImage(Buffer.from(await readFile(pngFile, 'utf8'), 'base64'));
const classes = Array.from({ length: 256 }, (_, i) => `к${i}`);
await r.classify({ image, classes, template: 'w {}' });
process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  const t0 = performance.now();
  for (let i = 0; i < Number(countArg); i++) await r.classify({ image, classes, template: `${i} {}` });
  process.stdout.write(`${performance.now() - t0}\n`);
  await r.release();
  process.exit(0);
});
