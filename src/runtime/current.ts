/**
 * The runtime in use, registered once by the entry point (`import 'rudolph-ts'` registers the
 * Node runtime). Module-level like onnxruntime's own `env`: a process (or a tab, or a worker)
 * runs on one platform.
 */
import { RudolphError } from '../errors.js';
import type { ByteSource, Runtime } from './types.js';

let current: Runtime | undefined;

export function useRuntime(r: Runtime): void {
  current = r;
}

export function runtime(): Runtime {
  if (!current) throw new RudolphError('RUNTIME', 'no runtime registered: import the library through its entry point (rudolph-ts in Node)');
  return current;
}

/**
 * The whole content of a file, through the runtime's byte source; a file over `maxBytes` is
 * refused before anything is read (an Error with code EFBIG, for the caller to wrap).
 */
export async function readAllBytes(location: string, maxBytes = Infinity): Promise<Uint8Array> {
  const source = await runtime().openBytes(location);
  try {
    if (source.size > maxBytes) {
      throw Object.assign(new Error(`${source.size} bytes, more than the ${maxBytes} accepted here`), { code: 'EFBIG' });
    }
    return await source.read(0, source.size);
  } finally {
    await source.close();
  }
}

/** A file's content as UTF-8 text (a BOM is dropped), at most `maxBytes` (see readAllBytes). */
export async function readText(location: string, maxBytes = Infinity): Promise<string> {
  return new TextDecoder('utf-8').decode(await readAllBytes(location, maxBytes));
}

export type { ByteSource };
