/** Every fuzz target by name; adding one = one file in this folder + one line here. */
import type { FuzzTarget } from '../target.js';

const TARGETS: Readonly<Record<string, () => Promise<{ target: FuzzTarget }>>> = {
  'torch-zip': () => import('./torch-zip.js'),
  pickle: () => import('./pickle.js'),
  safetensors: () => import('./safetensors.js'),
  'bpe-model': () => import('./bpe-model.js'),
  'rudolph-config': () => import('./rudolph-config.js'),
  'vqgan-config': () => import('./vqgan-config.js'),
  image: () => import('./image.js'),
  manifest: () => import('./manifest.js'),
};

export const TARGET_NAMES = Object.keys(TARGETS);

/** A target by name, or any module exporting `target` given by its file: URL (the harness's own tests use this). */
export async function loadTarget(name: string): Promise<FuzzTarget> {
  if (name.startsWith('file:')) return ((await import(name)) as { target: FuzzTarget }).target;
  const load = TARGETS[name];
  if (!load) throw new Error(`unknown fuzz target "${name}" (known: ${TARGET_NAMES.join(', ')})`);
  return (await load()).target;
}
