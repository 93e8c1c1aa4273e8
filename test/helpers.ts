import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (the folder holding package.json). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The shared facts folder that lies beside the repository (`../shared` from the root). */
export const SHARED_DIR = process.env.RUDOLPH_SHARED_DIR ?? path.resolve(REPO_ROOT, '..', 'shared');
export const GOLDEN_DIR = process.env.RUDOLPH_GOLDEN_DIR ?? path.join(SHARED_DIR, 'golden');
export const TOKENIZER_DIR = path.join(SHARED_DIR, 'tokenizer');
