/** The kernel bench's page: the web runtime registered, `benchKernels` offered to the Node driver. */
import '../src/web.js';
import { configureWebRuntime } from '../src/runtime/web/index.js';
import { benchKernels } from './kernel-core.js';

(globalThis as unknown as { rudolphTest: unknown }).rudolphTest = {
  kernels: async (threads: number) => {
    configureWebRuntime({ threads });
    return benchKernels(threads);
  },
};
(globalThis as unknown as { rudolphReady: boolean }).rudolphReady = true;
