/**
 * The golden parity suite: reads manifest.json from RUDOLPH_GOLDEN_DIR (default test/data/golden)
 * and runs every case whose kind it implements, for every model listed. Prints
 * `PASS|FAIL|SKIP <model>/<case id> <info>` per case and ends with `N passed, N failed, N skipped`; no case at all is a failure.
 * A case kind the suite does not know is a FAIL: it must never pass silently.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import type { HostTensor } from '../../src/tensor.js';
import { GOLDEN_DIR } from '../helpers.js';
import '../setup.js';
import { apiCaseHandlers } from './api-cases.js';
import { gradCaseHandlers } from './grad-cases.js';
import { modelCaseHandlers } from './model-cases.js';
import { type CaseHandler, type CaseResult, type GoldenCase, type GoldenContext, isTensorRef, type Manifest } from './types.js';
import { upscaleCaseHandlers } from './upscale-cases.js';
import { vqganCaseHandlers } from './vqgan-cases.js';

/** Case id → kind: the id's prefix before the first underscore-separated variant. */
export function caseKind(id: string): string {
  if (id === 'masks') return 'masks';
  if (id === 'sampling_filter') return 'sampling_filter';
  if (id === 'grad_loss') return 'grad_loss';
  const prefix = id.split('_')[0];
  return prefix;
}

const handlers: Record<string, CaseHandler> = {
  ...modelCaseHandlers,
  ...apiCaseHandlers,
  ...vqganCaseHandlers,
  ...gradCaseHandlers,
  ...upscaleCaseHandlers,
};

async function main(): Promise<number> {
  const dir = GOLDEN_DIR;
  const manifest = JSON.parse(await fsp.readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const goldenCache = new Map<string, Promise<Map<string, HostTensor>>>();
  const ctx: GoldenContext = {
    dir,
    manifest,
    golden(model) {
      let hit = goldenCache.get(model);
      if (!hit) {
        const file = path.join(dir, manifest.models[model].golden);
        hit = (async () => {
          const st = await SafetensorsFile.open(file);
          const out = new Map<string, HostTensor>();
          for (const key of st.keys()) out.set(key, await st.read(key));
          await st.close();
          return out;
        })();
        goldenCache.set(model, hit);
      }
      return hit;
    },
    async tensor(c, ref) {
      if (!isTensorRef(ref)) throw new Error(`${c.id}: not a tensor reference: ${JSON.stringify(ref)}`);
      const model = c.model ?? 'misc';
      const t = (await ctx.golden(model)).get(ref.tensor);
      if (!t) throw new Error(`${c.id}: tensor ${ref.tensor} not in ${manifest.models[model].golden}`);
      return t;
    },
  };

  const only = process.argv[2];
  let passed = 0, failed = 0, skipped = 0;
  for (const c of manifest.cases) {
    const label = `${c.model ?? 'misc'}/${c.id}`;
    if (only && !label.includes(only)) continue;
    // a case may name its kind (the Real-ESRGAN set does); else the id says it
    const kind = typeof c.kind === 'string' ? c.kind : caseKind(c.id);
    const handler = handlers[kind];
    let result: CaseResult;
    if (!handler) {
      result = { status: 'FAIL', info: `unknown case kind "${kind}": the suite has no handler for it` };
    } else {
      try {
        result = await handler(c, ctx);
      } catch (e) {
        result = { status: 'FAIL', info: `error: ${(e as Error).message}` };
      }
    }
    if (result.status === 'PASS') passed++;
    else if (result.status === 'FAIL') failed++;
    else skipped++;
    console.log(`${result.status} ${label} ${result.info}`);
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (passed + failed + skipped === 0) {
    console.error(`no golden case ran from ${path.join(dir, 'manifest.json')}${only ? ` matching "${only}"` : ''}: nothing was checked`);
    return 1;
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
