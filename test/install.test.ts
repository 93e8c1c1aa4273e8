import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT } from './helpers.js';

const run = promisify(execFile);

describe('installation', () => {
  it('npm runs in this project without warnings about its configuration', async () => {
    const { stdout, stderr } = await run('npm', ['pkg', 'get', 'name'], { cwd: REPO_ROOT });
    assert.equal(stdout.trim(), '"rudolph-ts"');
    assert.doesNotMatch(stderr, /warn/i, stderr);
  });

  it("onnxruntime-node's CUDA download is declined through allowScripts, and the script honours the documented override", async () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
    // the README's opt-out for npm without allowScripts (npm < 11.16) and the GPU opt-in go through this variable
    const script = readFileSync(path.join(REPO_ROOT, 'node_modules', 'onnxruntime-node', 'script', 'install-utils.js'), 'utf8');
    assert.match(script, /process\.env\.ONNXRUNTIME_NODE_INSTALL/);
    const { stdout } = await run(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'onnxruntime-node', 'script', 'install.js')], {
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    assert.equal(stdout, '');
  });
});
