/** The browser bench's page: the web runtime registered, `benchDecode` offered to the Node driver. */
import '../src/web.js';
import { configureWebRuntime } from '../src/runtime/web/index.js';
import { benchDecode, type BrowserBenchApi } from './decode-core.js';

const api: BrowserBenchApi = {
  decode: async (opts) => {
    configureWebRuntime({ threads: opts.threads });
    return benchDecode({ ...opts, executionProviders: opts.executionProviders ?? ['wasm'] });
  },
  memory: async () => {
    const perf = performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> };
    return perf.measureUserAgentSpecificMemory ? (await perf.measureUserAgentSpecificMemory()).bytes : null;
  },
};
(globalThis as unknown as { rudolphTest: BrowserBenchApi }).rudolphTest = api;
(globalThis as unknown as { rudolphReady: boolean }).rudolphReady = true;
