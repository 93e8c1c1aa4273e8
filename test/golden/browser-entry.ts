/**
 * The golden suite's page: the library on the web runtime (onnxruntime-web, WASM, fp32), the
 * handlers that need no Node (model, task API, VQGAN), every file read over HTTP by Range.
 */
import '../../src/web.js';
import { apiCaseHandlers } from './api-cases.js';
import { modelCaseHandlers } from './model-cases.js';
import { type GoldenPageApi, goldenContext, runCases } from './suite.js';
import type { CaseHandler, Manifest } from './types.js';
import { vqganCaseHandlers } from './vqgan-cases.js';

const handlers: Record<string, CaseHandler> = { ...modelCaseHandlers, ...apiCaseHandlers, ...vqganCaseHandlers };

const api: GoldenPageApi = {
  async runGolden(base, only, nodeKinds, device = 'wasm', cases) {
    const manifest = await (await fetch(new URL('manifest.json', base))).json() as Manifest;
    const session = { threads: 2, executionProviders: device === 'webgpu' ? ['webgpu' as const] : [] };
    const ctx = goldenContext(manifest, base, (...parts) => new URL(parts.join('/'), base).href, session);
    const elsewhere = Object.fromEntries(nodeKinds.filter((k) => !handlers[k]).map((k) => [k, `runs on Node only (${k} is not part of the browser build)`]));
    const lines: string[] = [];
    const summary = await runCases(ctx, handlers, { only, match: cases ? new RegExp(cases) : undefined, elsewhere, print: (line) => { lines.push(line); console.log(line); } });
    return { lines, summary };
  },
};
(globalThis as unknown as { rudolphTest: GoldenPageApi }).rudolphTest = api;
(globalThis as unknown as { rudolphReady: boolean }).rudolphReady = true;
