/**
 * The task commands, derived from the task registry: one command per task, its input fields as
 * arguments and options (types, bounds, defaults and help from the field specs), image fields as
 * files, results printed by the task's own formatter or as JSON, output images saved as PNG.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { InputError } from '../../errors.js';
import type { TextToken } from '../../generation/streaming.js';
import { composeGrid, type RgbImage } from '../../image/index.js';
import { ensureWritableFolder } from '../../io/files.js';
import { openUpscaler } from '../../pretrained/upscaler-files.js';
import type { Rudolph } from '../../rudolph.js';
import { readImage, writePng } from '../../runtime/node/image-files.js';
import type { StandaloneContext } from '../../tasks/context.js';
import type { Truncation } from '../../tasks/inputs.js';
import { TASK_METHODS, TASKS, type TaskMethod } from '../../tasks/registry.js';
import { type Field, type JsonSchema, resultToJson } from '../../tasks/spec.js';
import {
  addModelSourceOptions, addOutputOptions, addRuntimeOptions, addStandaloneUpscalerOptions, addUpscalerOption, float, int, loadModel,
  type ModelCliOptions, taskProgress,
} from '../common.js';
import { printJson, ProgressDisplay } from '../output.js';
import { CandidateLines } from '../stream-output.js';

type Fields = Readonly<Record<string, Field>>;

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A field's value from its command-line text (lists are comma-separated). */
function parser(f: Field, flag: string): ((v: string) => unknown) | undefined {
  switch (f.type) {
    case 'integer': {
      const parse = int(flag, f.minimum ?? Number.MIN_SAFE_INTEGER, f.maximum);
      if (!f.enum) return parse;
      const allowed = f.enum;
      return (v) => {
        const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
        if (!allowed.includes(n)) throw new InputError(`${flag} must be one of ${allowed.join(', ')}, got "${v}"`);
        return parse(v);
      };
    }
    case 'number': return float(flag, { min: f.minimum, exclusiveMin: f.exclusiveMinimum, max: f.maximum });
    case 'integers': return (v) => v.split(',').map((x) => int(flag, f.minimum ?? 0)(x.trim()));
    case 'strings': return (v) => {
      const items = v.split(',').map((x) => x.trim()).filter(Boolean);
      if (items.length === 0) throw new InputError(`${flag}: give at least one value (comma-separated)`);
      return items;
    };
    default: return undefined;
  }
}

function describe(f: Field): string {
  return 'default' in f && f.default !== undefined && f.default !== '' && f.type !== 'boolean' ? `${f.description} (default: ${JSON.stringify(f.default)})` : f.description;
}

interface OptionField { path: string[]; attribute: string; field: Field; invert?: boolean }

const PLACEHOLDER: Record<Field['type'], string> = {
  boolean: '', image: ' <file>', images: ' <files...>', string: ' <text>', integer: ' <n>', number: ' <x>',
  integers: ' <n,n,...>', strings: ' <a,b,...>', object: '',
};

/** Adds an option per non-positional field (nested objects as --parent-child), returns where each value goes. */
function addFieldOptions(cmd: Command, fields: Fields, required: readonly string[], prefix: string[] = []): OptionField[] {
  const out: OptionField[] = [];
  for (const [key, f] of Object.entries(fields)) {
    if (f.cli?.positional) continue;
    const path = [...prefix, key];
    if (f.type === 'object') {
      out.push(...addFieldOptions(cmd, f.fields, [], path));
      continue;
    }
    const long = `--${path.map(kebab).join('-')}`;
    const value = PLACEHOLDER[f.type];
    const booleanOff = f.type === 'boolean' && f.default === true;
    const name = booleanOff ? f.cli?.off ?? long.replace('--', '--no-') : long;
    const flags = `${f.cli?.short ? `${f.cli.short}, ` : ''}${name}${value}`;
    const option = new Option(flags, describe(f));
    const parse = parser(f, long);
    if (parse) option.argParser(parse);
    if (required.includes(key) && prefix.length === 0) option.makeOptionMandatory();
    cmd.addOption(option);
    // a custom off flag (--strict-length) is true when given: it sets the field to false
    out.push({ path, attribute: option.attributeName(), field: f, invert: booleanOff && f.cli?.off !== undefined });
  }
  return out;
}

/** Reads the image files a field names. */
async function imageValue(f: Field, value: unknown): Promise<unknown> {
  if (f.type === 'image') return readImage(value as string);
  if (f.type === 'images') {
    const images: RgbImage[] = [];
    for (const file of value as string[]) images.push(await readImage(file));
    return images;
  }
  return value;
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let at = target;
  for (const key of path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
  at[path[path.length - 1]] = value;
}

function hasImages(schema: JsonSchema): boolean {
  return JSON.stringify(schema).includes('"png"');
}

/** Creates (and tries writing in) the output folder before any model work, so a bad --out fails at once. */
async function outputFolder(dir: string): Promise<void> {
  try {
    await ensureWritableFolder(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new InputError(`--out ${dir}: cannot create the output folder: a file of that name is in the way (name a folder, or a .png file)`);
    throw new InputError(`--out ${dir}: cannot write PNG files there (${code ?? (e as Error).message})`);
  }
}

/** Where the images of a result go: `--out` is a folder, or (ending in .png) the first image's file. */
class OutputFiles {
  readonly written: { file: string; image: RgbImage }[] = [];
  readonly folder: string;
  private readonly file: string | null;
  constructor(out: string, private readonly name: (index: number) => string) {
    this.file = /\.png$/i.test(out) ? out : null;
    this.folder = this.file ? path.dirname(out) : out;
  }

  /** The next image's file (taken before any await: images of a result are written concurrently). */
  async write(image: RgbImage): Promise<string> {
    const i = this.written.length;
    const file = this.file ? (i === 0 ? this.file : this.file.replace(/\.png$/i, `-${i}.png`)) : path.join(this.folder, this.name(i));
    this.written.push({ file, image });
    await writePng(file, image);
    return file;
  }

  /** Every image side by side in one PNG beside the first (`--grid`). */
  async writeGrid(): Promise<string | null> {
    if (this.written.length === 0) return null;
    const first = this.written[0].file;
    const file = first.replace(/(-0)?\.png$/i, '-grid.png');
    await writePng(file, composeGrid(this.written.map((w) => w.image)));
    return file;
  }
}

type TaskRun = (input: Record<string, unknown>) => Promise<unknown>;

/** Opens what the task runs on (the model, or for a standalone task only its part), runs `fn`, releases; Ctrl-C aborts. */
async function withRunner<T>(method: TaskMethod, o: ModelCliOptions & { stream?: boolean }, fn: (run: TaskRun, display: ProgressDisplay) => Promise<T>): Promise<T> {
  const task = TASKS[method];
  const display = new ProgressDisplay(o.quiet || false);
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  // streamed text is the progress: no bar redrawn across it
  const onProgress = o.stream ? undefined : taskProgress(display);
  const control = { signal: controller.signal, onProgress };
  let run: TaskRun;
  let release: () => Promise<void>;
  try {
    if (task.standalone === 'upscaler') {
      const upscaler = openUpscaler({
        folder: o.upscaler, cacheDir: o.cacheDir, token: o.token, offline: o.offline, threads: o.threads,
        executionProviders: o.device === 'cuda' ? ['cuda'] : undefined,
      });
      // a standalone task reads only what its spec names from the context
      const standaloneRun = task.run as unknown as (ctx: StandaloneContext, options: unknown) => Promise<unknown>;
      run = (input) => standaloneRun({ upscaler }, { ...input, ...control });
      release = () => upscaler.release();
    } else {
      const r = await loadModel(o, display, controller.signal);
      run = (input) => r.run(method, { ...input, ...control } as never);
      release = () => r.release();
    }
  } catch (e) {
    process.off('SIGINT', onSigint);
    throw e;
  }
  try {
    return await fn(run, display);
  } finally {
    display.stop();
    process.off('SIGINT', onSigint);
    await release();
  }
}

function taskCommand(method: TaskMethod): Command {
  const task = TASKS[method];
  const fields = task.fields as Fields;
  const cmd = new Command(task.name).description(task.summary);
  const positional = Object.entries(fields).filter(([, f]) => f.cli?.positional);
  for (const [key, f] of positional) {
    const name = f.type === 'image' || f.type === 'images' ? `${kebab(key)}${f.type === 'images' ? '...' : ''}` : `${kebab(key)}${f.cli?.positional === 'variadic' ? '...' : ''}`;
    cmd.argument(`<${name}>`, f.type === 'image' || f.type === 'images' ? `${f.description} (PNG/JPEG/WebP file${f.type === 'images' ? 's' : ''})` : f.description);
  }
  const options = addFieldOptions(cmd, fields, task.required);
  const writesImages = hasImages(task.output);
  if (writesImages) {
    cmd.option('--out <dir|file.png>', 'folder for the PNG files, or the first file\'s name (further ones get -1, -2, … before .png)', '.');
    cmd.option('--grid', 'also write the result\'s images side by side in one PNG (…-grid.png)');
  }
  if (task.streams) cmd.option('--stream', 'print the sampled texts as they are generated (one line each, in order), then the ranked result; with --json: one JSON event a line');
  if (task.standalone === 'upscaler') addStandaloneUpscalerOptions(cmd);
  else addOutputOptions(addRuntimeOptions(addUpscalerOption(addModelSourceOptions(cmd))));
  cmd.addHelpText('after', `\nПримеры:\n${task.examples.map((e) => `  $ ${e}`).join('\n')}`);

  cmd.action(async (...args: unknown[]) => {
    const o = args[positional.length] as ModelCliOptions & Record<string, unknown> & { out?: string; grid?: boolean; stream?: boolean };
    // inputs first (files read, folders made): bad input fails before the model loads
    const input: Record<string, unknown> = {};
    const imageFiles: string[] = [];
    for (const [i, [key, f]] of positional.entries()) {
      if (f.type === 'images') imageFiles.push(...(args[i] as string[]));
      if (f.type === 'image') imageFiles.push(args[i] as string);
      input[key] = await imageValue(f, args[i]);
    }
    for (const { path, attribute, field, invert } of options) {
      if (o[attribute] === undefined) continue;
      setPath(input, path, invert ? !o[attribute] : await imageValue(field, o[attribute]));
    }
    (task.check as (o: unknown) => void)(input);
    if (o.stream) {
      const lines = new CandidateLines((text) => process.stdout.write(text));
      input.onToken = o.json
        ? (t: TextToken) => process.stdout.write(`${JSON.stringify({ type: 'token', ...t })}\n`)
        : (t: TextToken) => lines.token(t);
    }
    let seed: number | undefined;
    const fileName = task.fileName as ((input: unknown, index: number, files: readonly string[]) => string) | undefined;
    const outputs = new OutputFiles(o.out ?? '.', (i) => fileName?.(input, i, imageFiles) ?? `${task.name}-${seed ?? 'out'}-${i}.png`);
    if (writesImages) await outputFolder(outputs.folder);
    await withRunner(method, o, async (run, display) => {
      const result = await run(input);
      display.stop();
      for (const t of (result as { truncated?: Truncation[] }).truncated ?? []) {
        process.stderr.write(`rudolph: warning: ${t.field} was cut to ${t.kept} tokens (it needs ${t.tokens}): "${t.text}" — --strict-length refuses such texts instead\n`);
      }
      seed = (result as { seed?: number }).seed;
      const json = await resultToJson(result, async (image) => ({ file: await outputs.write(image) }));
      const grid = o.grid ? await outputs.writeGrid() : null;
      if (o.json && o.stream) {
        process.stdout.write(`${JSON.stringify({ type: 'result', result: json })}\n`);
        return;
      }
      if (o.json) {
        printJson(grid ? { ...(json as Record<string, unknown>), grid } : json);
        return;
      }
      // after the streamed candidates, a blank line, then the ranked result
      if (o.stream) console.log('');
      const lines = (task.format as (r: unknown, i: unknown, f: readonly string[]) => string[])(result, input, imageFiles);
      lines.forEach((line, i) => console.log(outputs.written[i] ? `${outputs.written[i].file}\t${line}` : line));
      if (grid) console.log(`${grid}\tgrid`);
    });
  });
  return cmd;
}

export function taskCommands(): Command[] {
  return TASK_METHODS.map(taskCommand);
}
