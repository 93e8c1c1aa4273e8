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

/** The whole content of a file, through the runtime's byte source. */
export async function readAllBytes(location: string): Promise<Uint8Array> {
  const source = await runtime().openBytes(location);
  try {
    return await source.read(0, source.size);
  } finally {
    await source.close();
  }
}

/** A file's content as UTF-8 text (a BOM is dropped). */
export async function readText(location: string): Promise<string> {
  return new TextDecoder('utf-8').decode(await readAllBytes(location));
}

export type { ByteSource };
