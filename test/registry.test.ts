import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { withTaskTable } from '../scripts/readme-tasks.js';
import { taskCommands } from '../src/cli/commands/tasks.js';
import { Rudolph } from '../src/rudolph.js';
import { buildOpenApi } from '../src/server/openapi.js';
import { INPUT_SCHEMAS } from '../src/server/schemas.js';
import { TASK_METHODS, taskByName, taskCatalog, TASKS } from '../src/tasks/registry.js';
import type { Field, JsonSchema } from '../src/tasks/spec.js';
import { REPO_ROOT } from './helpers.js';

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** [dotted path, field] of every leaf field. */
function leaves(fields: Readonly<Record<string, Field>>, prefix = ''): [string, Field][] {
  return Object.entries(fields).flatMap(([k, f]): [string, Field][] => (f.type === 'object' ? leaves(f.fields, `${prefix}${k}.`) : [[`${prefix}${k}`, f]]));
}

describe('task registry: every surface derived from one table', () => {
  it('gives the facade one method per task, running the registered function', () => {
    for (const method of TASK_METHODS) assert.equal(typeof (Rudolph.prototype as unknown as Record<string, unknown>)[method], 'function', method);
    assert.deepEqual(TASK_METHODS.map((m) => taskByName(TASKS[m].name)?.method), TASK_METHODS);
  });

  it('HTTP request schemas carry the same fields, defaults and limits as the registry', () => {
    for (const method of TASK_METHODS) {
      const task = TASKS[method];
      const schema = INPUT_SCHEMAS[task.name];
      for (const [p, f] of leaves(task.fields as Readonly<Record<string, Field>>)) {
        let prop: JsonSchema | undefined = schema;
        for (const k of p.split('.')) prop = (prop?.properties as Record<string, JsonSchema> | undefined)?.[k];
        assert.ok(prop, `${task.name}: ${p} missing from the HTTP schema`);
        if ('default' in f && f.default !== undefined) assert.equal(prop.default, f.default, `${task.name}.${p} default`);
        if ('maximum' in f && f.maximum !== undefined) assert.equal(prop.maximum, f.maximum, `${task.name}.${p} maximum`);
      }
      assert.deepEqual(schema.required, [...task.required]);
    }
    const paths = Object.keys(buildOpenApi('test').paths as Record<string, unknown>);
    for (const m of TASK_METHODS) assert.ok(paths.includes(`/v1/${TASKS[m].name}`));
  });

  it('CLI commands offer every field as an argument or option, with the registry default in the help', () => {
    const commands = new Map(taskCommands().map((c) => [c.name(), c]));
    for (const method of TASK_METHODS) {
      const task = TASKS[method];
      const cmd = commands.get(task.name);
      assert.ok(cmd, `no command ${task.name}`);
      const args = cmd.registeredArguments.map((a) => a.name());
      for (const [p, f] of leaves(task.fields as Readonly<Record<string, Field>>)) {
        if (f.cli?.positional) { assert.ok(args.includes(kebab(p)), `${task.name}: argument ${p}`); continue; }
        const flag = `--${p.split('.').map(kebab).join('-')}`;
        const off = f.type === 'boolean' && f.default === true ? f.cli?.off ?? flag.replace('--', '--no-') : undefined;
        const option = cmd.options.find((o) => o.long === (off ?? flag));
        assert.ok(option, `${task.name}: option ${flag}`);
        if ('default' in f && typeof f.default === 'number') assert.ok(option.description.includes(`(default: ${f.default})`), `${task.name} ${flag}: ${option.description}`);
      }
    }
    // the disagreement the registry removed: text --count defaults to what the task and HTTP use
    const count = commands.get('text')!.options.find((o) => o.long === '--count')!;
    assert.match(count.description, new RegExp(`default: ${String((TASKS.generateText.fields.count as { default: number }).default)}`));
  });

  it('the catalog the page builds its forms from flattens nested fields', () => {
    const dream = taskCatalog().find((t) => t.name === 'dream')!;
    assert.ok(dream.fields.some((f) => f.path === 'guidance.weight' && f.default === 0.2));
    assert.ok(dream.fields.find((f) => f.path === 'text')!.required);
  });

  it('README holds the generated task table (npm run docs)', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    assert.equal(readme, withTaskTable(readme), 'README task table is stale: run npm run docs');
  });
});
