/**
 * `serve --adapter`: a server started with a LoRA adapter answers as the facade loaded with the
 * same adapter, and not as the base model (the adapter reaches the inference thread).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeConfig } from '../src/model/config.js';
import { initLoraWeights, loraSetup } from '../src/model/lora.js';
import { Rudolph } from '../src/rudolph.js';
import type { ResultJson } from '../src/tasks/spec.js';
import type { TaskResult } from '../src/tasks/registry.js';
import { exportAdapter } from '../src/train/export.js';
import { Rng } from '../src/util/random.js';
import { SMALL_PARAMS, SMALL_TOKENIZER, TINY_VQGAN_DIR, tempDir } from './fixtures.js';
import { postJson, startSmallServer, type TestServer } from './server-fixture.js';

type TextOutput = ResultJson<TaskResult<'generateText'>>;

describe('serve with a LoRA adapter', () => {
  let server: TestServer;
  let work: { dir: string; cleanup: () => Promise<void> };
  let adapter: string;

  before(async () => {
    work = await tempDir('rudolph-serve-adapter-');
    // a trained-looking adapter (B ≠ 0) on every linear layer, in PEFT's files
    const cfg = makeConfig(SMALL_PARAMS);
    const setup = loraSetup(cfg, { rank: 4, alpha: 8, targets: ['all-linear', 'to_logits.1'] });
    const tensors = initLoraWeights(cfg, setup.modules, 3);
    const rng = new Rng(5);
    for (const [name, t] of tensors) if (name.endsWith('lora_B.weight')) rng.fillUniform(t, -0.5, 0.5);
    adapter = path.join(work.dir, 'adapter');
    await exportAdapter(cfg, setup, tensors, adapter, null);
    server = await startSmallServer({ batchSize: 1, adapters: [adapter] });
  });

  after(async () => {
    await server?.close();
    await work?.cleanup();
  });

  it('answers as the facade with the same adapter, not as the base model', async () => {
    const input = { template: 'лес', count: 4, seed: 5, earlyStop: 12 };
    const res = await postJson<TextOutput>(`${server.url}/v1/text`, input);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const texts = res.body.texts.map((t) => t.text);
    const load = (adapters?: string[]) => Rudolph.fromPretrained(server.modelDir, { tokenizer: SMALL_TOKENIZER, vqgan: TINY_VQGAN_DIR, cacheDir: server.cacheDir, batchSize: 1, adapters });
    for (const [adapters, same] of [[[adapter], true], [undefined, false]] as const) {
      const direct = await load(adapters ? [...adapters] : undefined);
      try {
        const want = (await direct.generateText(input)).texts.map((t) => t.text);
        if (same) assert.deepEqual(texts, want);
        else assert.notDeepEqual(texts, want, 'the adapter changes the answers');
      } finally {
        await direct.release();
      }
    }
    // by name, like the model: no server paths
    const info = await (await fetch(`${server.url}/v1/info`)).json() as { model?: { adapters?: string[] } };
    assert.deepEqual(info.model?.adapters, [path.basename(adapter)]);
  });
});
