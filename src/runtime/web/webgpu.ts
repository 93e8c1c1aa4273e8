/** What WebGPU this browser offers: an adapter (a GPU, or a software one) and whether it has `shader-f16`. */

export interface WebgpuSupport { available: boolean; shaderF16: boolean; reason?: string }

let probed: Promise<WebgpuSupport> | undefined;

/** Asks for an adapter once per page or worker. */
export function webgpuAvailable(): Promise<WebgpuSupport> {
  probed ??= (async () => {
    const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ features: ReadonlySet<string> } | null> } }).gpu;
    if (!gpu) return { available: false, shaderF16: false, reason: 'this browser has no WebGPU (navigator.gpu)' };
    try {
      const adapter = await gpu.requestAdapter();
      if (!adapter) return { available: false, shaderF16: false, reason: 'WebGPU has no adapter here' };
      return { available: true, shaderF16: adapter.features.has('shader-f16') };
    } catch (e) {
      return { available: false, shaderF16: false, reason: `WebGPU adapter request failed: ${(e as Error).message}` };
    }
  })();
  return probed;
}
