import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (the folder holding package.json). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The test data carried by the repository (copied from the project's shared facts; see test/data/PROVENANCE.md). */
export const DATA_DIR = path.join(REPO_ROOT, 'test', 'data');
/** The golden vectors of the official code; RUDOLPH_GOLDEN_DIR points the suites at another set. */
export const GOLDEN_DIR = path.resolve(process.env.RUDOLPH_GOLDEN_DIR ?? path.join(DATA_DIR, 'golden'));
/** The BPE models and their golden records. */
export const TOKENIZER_DIR = path.join(DATA_DIR, 'tokenizer');

/**
 * The built CLI (dist/cli/main.js), compiled first when it is missing or older than a source
 * file, so the CLI tests run the real `rudolph` binary whether or not `npm run build` ran.
 */
export async function builtCli(): Promise<string> {
  const { existsSync, statSync, readdirSync } = await import('node:fs');
  const cli = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');
  const newest = (dir: string): number => readdirSync(dir, { withFileTypes: true }).reduce((t, e) => {
    const p = path.join(dir, e.name);
    return Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }, 0);
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest(path.join(REPO_ROOT, 'src'))) {
    const { execFileSync } = await import('node:child_process');
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(REPO_ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  }
  return cli;
}
