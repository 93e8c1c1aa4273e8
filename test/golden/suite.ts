/**
 * The golden suite's loop, the same in Node and in the browser page: each case of the manifest
 * goes to the handler of its kind and yields one `PASS|FAIL|SKIP <model>/<case id> <info>` line.
 * A kind nobody handles is a FAIL (it must never pass silently); a kind only the other runtime
 * handles (training on Node) is a SKIP that says so. No Node imports: the page runs this too.
 */
import { SafetensorsFile } from '../../src/io/safetensors.js';
import type { HostTensor } from '../../src/tensor.js';
import { type CaseHandler, type CaseResult, type GoldenContext, isTensorRef, type Manifest } from './types.js';

/** Case id → kind: the id's prefix before the first underscore-separated variant. */
export function caseKind(id: string): string {
  if (id === 'masks') return 'masks';
  if (id === 'sampling_filter') return 'sampling_filter';
  if (id === 'grad_loss') return 'grad_loss';
  const prefix = id.split('_')[0];
  return prefix;
}

/** A golden context over a folder named by `file(...)` locations (paths on Node, URLs in a browser). */
export function goldenContext(manifest: Manifest, dir: string, file: (...parts: string[]) => string, session: GoldenContext['session'] = { threads: 2 }): GoldenContext {
  const goldenCache = new Map<string, Promise<Map<string, HostTensor>>>();
  const ctx: GoldenContext = {
    dir,
    manifest,
    file,
    session,
    golden(model) {
      let hit = goldenCache.get(model);
      if (!hit) {
        hit = (async () => {
          const st = await SafetensorsFile.open(file(manifest.models[model].golden));
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
  return ctx;
}

export interface SuiteOptions {
  /** only cases whose `<model>/<id>` contains this */
  only?: string;
  /** and matches this */
  match?: RegExp;
  /** kinds handled elsewhere (the other runtime): SKIP with this reason instead of FAIL */
  elsewhere?: Readonly<Record<string, string>>;
  /** each line as it is decided */
  print: (line: string) => void;
}

export interface SuiteSummary { passed: number; failed: number; skipped: number }

/** What the golden page (browser-entry.ts) offers the Node side. */
export interface GoldenPageApi {
  runGolden(base: string, only: string | undefined, nodeKinds: string[], device?: 'webgpu' | 'wasm', cases?: string): Promise<{ lines: string[]; summary: SuiteSummary }>;
}

export async function runCases(ctx: GoldenContext, handlers: Readonly<Record<string, CaseHandler>>, opts: SuiteOptions): Promise<SuiteSummary> {
  const sum: SuiteSummary = { passed: 0, failed: 0, skipped: 0 };
  for (const c of ctx.manifest.cases) {
    const label = `${c.model ?? 'misc'}/${c.id}`;
    if (opts.only && !label.includes(opts.only)) continue;
    if (opts.match && !opts.match.test(label)) continue;
    // a case may name its kind (the Real-ESRGAN set does); else the id says it
    const kind = typeof c.kind === 'string' ? c.kind : caseKind(c.id);
    const handler = handlers[kind];
    let result: CaseResult;
    if (!handler) {
      const elsewhere = opts.elsewhere?.[kind];
      result = elsewhere
        ? { status: 'SKIP', info: elsewhere }
        : { status: 'FAIL', info: `unknown case kind "${kind}": the suite has no handler for it` };
    } else {
      try {
        result = await handler(c, ctx);
      } catch (e) {
        result = { status: 'FAIL', info: `error: ${(e as Error).message}` };
      }
    }
    if (result.status === 'PASS') sum.passed++;
    else if (result.status === 'FAIL') sum.failed++;
    else sum.skipped++;
    opts.print(`${result.status} ${label} ${result.info}`);
  }
  return sum;
}
