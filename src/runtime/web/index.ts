/**
 * The web runtime: onnxruntime-web sessions (WASM, WebGPU), files over fetch with HTTP Range
 * (kept in the Cache API), images through createImageBitmap/OffscreenCanvas, models straight
 * from the hub's official files. Importing this module registers it (the `rudolph-ts/web` entry does).
 */
import * as ort from 'onnxruntime-web';
import { useModelLoader } from '../../rudolph.js';
import { useRuntime } from '../current.js';
import type { Runtime } from '../types.js';
import { openUrlBytes } from './byte-source.js';
import { decodeImageWeb, encodePngWeb } from './image-codec.js';
import { loadPretrainedWeb } from './loader.js';
import { createWebSession, webSessionOnGraph } from './sessions.js';

export { webgpuAvailable, type WebgpuSupport } from './webgpu.js';

export interface WebRuntimeSettings {
  /** where onnxruntime-web's .wasm/.mjs files are served (default: beside the bundle that imports it) */
  wasmPaths?: string;
  /** WASM threads (default: onnxruntime-web's choice; 1 when the page is not cross-origin isolated) */
  threads?: number;
}

/** Settings that onnxruntime-web reads when its first session starts. */
export function configureWebRuntime(s: WebRuntimeSettings): void {
  if (s.wasmPaths !== undefined) ort.env.wasm.wasmPaths = s.wasmPaths;
  if (s.threads !== undefined) ort.env.wasm.numThreads = s.threads;
}

export const webRuntime: Runtime = {
  name: 'web',
  onnxruntimeVersion: ort.env.versions.web ?? ort.env.versions.common ?? 'unknown',
  tensor: (type, data, dims) => new ort.Tensor(type, data, dims as number[]),
  createSession: createWebSession,
  sessionOnGraph: webSessionOnGraph,
  openBytes: (location) => openUrlBytes(new URL(location, globalThis.location?.href).href),
  decodeImage: decodeImageWeb,
  encodePng: encodePngWeb,
  // WASM: DynamicQuantizeMatMul on per-channel uint8 weights. onnxruntime's fast MatMulNBits
  // kernels are x64/ARM64 code, absent from its WASM build: one 1024×4096 int8 linear took 6.5 ms
  // there against 1.3 ms (`npm run bench -- kernels`), and the 350M decoded 1.34 against 4.48
  // tokens/s (`npm run bench -- browser`, 2026-12-01). WebGPU has a MatMulNBits shader: the default stays.
  int8Kernel: (eps) => (eps?.includes('webgpu') ? undefined : 'dq-int8'),
};

// onnxruntime-web's own warnings go to the console as errors; sessions log errors only (sessions.ts)
ort.env.logLevel = 'error';

useRuntime(webRuntime);
useModelLoader(loadPretrainedWeb);
