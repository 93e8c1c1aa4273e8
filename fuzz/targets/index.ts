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

export async function loadTarget(name: string): Promise<FuzzTarget> {
  const load = TARGETS[name];
  if (!load) throw new Error(`unknown fuzz target "${name}" (known: ${TARGET_NAMES.join(', ')})`);
  return (await load()).target;
}
