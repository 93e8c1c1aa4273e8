/**
 * Serves the small random model in a process of its own (for the shutdown test): prints
 * {"url": ...} on stdout once listening, logs to stderr, and relies on startServer's own
 * SIGTERM/SIGINT handling to shut down and exit.
 * Env: RUDOLPH_TEST_BATCH (batch size), RUDOLPH_TEST_MAX_QUEUE.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { startServer } from '../src/server/serve.js';
import { SMALL_TOKENIZER, tempDir, TINY_VQGAN_DIR, writeSmallModel } from './fixtures.js';

const { dir } = await tempDir('rudolph-server-child-');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
await writeSmallModel(dir);
const server = await startServer({
  model: dir, tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: path.join(dir, 'cache'), port: 0,
  batchSize: Number(process.env.RUDOLPH_TEST_BATCH ?? 8),
  maxQueue: Number(process.env.RUDOLPH_TEST_MAX_QUEUE ?? 16),
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
