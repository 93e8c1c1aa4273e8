/**
 * Evaluation data sets on disk, read and checked up front: bad data is rejected with the file
 * (and line, record or JSON path) it is in, before any model work.
 * - classification: an image folder (`<dir>/<class>/*.png|jpg|jpeg|webp`) or the CIFAR-10 binary
 *   batch (`test_batch.bin` + `batches.meta.txt`, class names mapped to the Russian ones of the
 *   official notebook);
 * - QA: SQuAD JSON (`{"data": [{"paragraphs": [{"context", "qas": [{"id", "question",
 *   "answers": [{"text"}]}]}]}]}`), or JSON lines as Hugging Face `datasets` exports sberquad
 *   (`{"id", "context", "question", "answers": {"text": [...]}}` a line);
 * - captions: `<dir>/captions.jsonl`, `{"image": "file", "caption": "text"}` or
 *   `{"image": "file", "captions": ["text", ...]}` a line, image paths relative to the folder.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { RudolphError } from '../errors.js';
import type { RgbImage } from '../image/index.js';
import { readBoundedFile } from '../io/files.js';
import { readImage } from '../runtime/node/image-files.js';

/** Problems in an evaluation data set, each naming where it is. */
export class DataError extends RudolphError {
  constructor(readonly problems: string[]) {
    super('INPUT', problems.length === 1 ? problems[0] : `${problems.length} problems in the data:\n${problems.slice(0, 10).map((p) => `  ${p}`).join('\n')}${problems.length > 10 ? '\n  …' : ''}`);
    this.name = 'DataError';
  }
}

// ---- classification ------------------------------------------------------------------------------

/** The Russian CIFAR-10 class names of the official 350M notebook (`CIFAR10 ZS CLF`), by English name. */
export const CIFAR10_RUSSIAN: Readonly<Record<string, string>> = {
  airplane: 'самолет', automobile: 'машина', bird: 'птица', cat: 'кот', deer: 'олень',
  dog: 'собака', frog: 'лягушка', horse: 'лошадь', ship: 'корабль', truck: 'грузовик',
};

export interface LabelledImage {
  /** stable name of the item (resume key): the file relative to the data folder, or `test_batch.bin#17` */
  id: string;
  label: number;
  read: () => Promise<RgbImage>;
}

export interface ClassificationData {
  layout: 'image-folder' | 'cifar10-binary';
  /** class names the template is filled with (after any override) */
  classes: string[];
  items: LabelledImage[];
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);
const CIFAR_RECORD = 1 + 32 * 32 * 3;

/**
 * Bounds on the files a data set names (a path may be /dev/urandom, a FIFO or a runaway file):
 * a CIFAR-10 batch is 10 000 records (30.7 MB), so 20 batches' worth; sberQuAD's train split is
 * ~50 MB of JSON and a million-line JSONL file ~100 MB; meta files are a few lines.
 */
export const DATA_LIMITS = { cifarBatch: 20 * 10_000 * CIFAR_RECORD, text: 512 * 2 ** 20, meta: 64 * 1024 } as const;

async function statOrNull(p: string) {
  try { return await fsp.stat(p); } catch { return null; }
}

/** A data file read whole within `maxBytes` (regular files only); failures name the file. */
export async function readDataFile(file: string, maxBytes: number, missing?: string): Promise<Buffer> {
  try {
    return await readBoundedFile(file, maxBytes);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && missing) throw new DataError([`${file}: missing (${missing})`]);
    const why = code === 'EFBIG' ? `too large: ${(e as Error).message}` : code === 'ENOENT' ? 'no such file' : (code === 'EISDIR' || code === 'ENOTREG') ? (e as Error).message : (code ?? (e as Error).message);
    throw new DataError([`${file}: cannot read (${why})`]);
  }
}

/** A UTF-8 text data file (a BOM, as Windows editors write, dropped). */
async function readDataText(file: string, maxBytes: number, missing?: string): Promise<string> {
  const text = (await readDataFile(file, maxBytes, missing)).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

async function readFolder(dir: string) {
  try {
    return (await fsp.readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError([`${dir}: ${code === 'ENOTDIR' ? 'not a folder (expected class folders, CIFAR-10\'s test_batch.bin or a .bin file)' : `cannot list (${code ?? (e as Error).message})`}`]);
  }
}

/**
 * An image folder or CIFAR-10 binary data: `data` is the folder (holding class folders, or
 * `test_batch.bin` + `batches.meta.txt`) or the `.bin` file itself. `classes` overrides the names
 * (same count, same order: folder names sorted, or the meta file's order).
 */
export async function readClassificationData(data: string, opts: { classes?: string[] } = {}): Promise<ClassificationData> {
  const st = await statOrNull(data);
  if (!st) throw new DataError([`${data}: no such file or folder`]);
  let bin: string | null = null;
  if (st.isFile()) {
    if (!data.endsWith('.bin')) throw new DataError([`${data}: expected a folder (class folders, or CIFAR-10's test_batch.bin) or a CIFAR-10 .bin file`]);
    bin = data;
  } else if (await statOrNull(path.join(data, 'test_batch.bin'))) {
    bin = path.join(data, 'test_batch.bin');
  }
  const found = bin ? await readCifarBinary(bin) : await readImageFolder(data);
  if (opts.classes) {
    if (opts.classes.length !== found.classes.length) {
      throw new DataError([`--classes gives ${opts.classes.length} names, the data has ${found.classes.length} classes (${found.classes.join(', ')})`]);
    }
    found.classes = [...opts.classes];
  }
  return found;
}

async function readImageFolder(dir: string): Promise<ClassificationData> {
  const entries = await readFolder(dir);
  const problems: string[] = [];
  const loose = entries.filter((e) => e.isFile()).map((e) => e.name);
  if (loose.length) problems.push(`${path.join(dir, loose[0])}: files belong in class folders (<data>/<class>/<image>), not in the data folder itself${loose.length > 1 ? ` (${loose.length} such files)` : ''}`);
  const classes = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (classes.length === 0) problems.push(`${dir}: no class folders (expected <data>/<class>/*.png|jpg|jpeg|webp, or CIFAR-10's test_batch.bin)`);
  const items: LabelledImage[] = [];
  for (const [label, cls] of classes.entries()) {
    const files = (await readFolder(path.join(dir, cls))).map((e) => e.name).sort();
    let count = 0;
    for (const name of files) {
      const file = path.join(dir, cls, name);
      if (!IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase())) {
        problems.push(`${file}: not an image file (${[...IMAGE_EXTENSIONS].join(', ')})`);
        continue;
      }
      items.push({ id: `${cls}/${name}`, label, read: () => readImage(file) });
      count++;
    }
    if (count === 0 && files.length === 0) problems.push(`${path.join(dir, cls)}: class folder without images`);
  }
  if (problems.length) throw new DataError(problems);
  return { layout: 'image-folder', classes, items };
}

async function readCifarBinary(file: string): Promise<ClassificationData> {
  const metaFile = path.join(path.dirname(file), 'batches.meta.txt');
  const meta = await readDataText(metaFile, DATA_LIMITS.meta, 'CIFAR-10 binary data comes with batches.meta.txt, one class name a line');
  const english = meta.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (english.length < 2) throw new DataError([`${metaFile}: expected one class name a line, found ${english.length}`]);
  const bytes = await readDataFile(file, DATA_LIMITS.cifarBatch);
  const name = path.basename(file);
  if (bytes.length === 0 || bytes.length % CIFAR_RECORD !== 0) {
    const whole = Math.floor(bytes.length / CIFAR_RECORD);
    throw new DataError([`${file}: ${bytes.length} bytes is not a whole number of ${CIFAR_RECORD}-byte records (label + 32×32×3 pixels): record ${whole} is cut`]);
  }
  const count = bytes.length / CIFAR_RECORD;
  const problems: string[] = [];
  for (let i = 0; i < count; i++) {
    const label = bytes[i * CIFAR_RECORD];
    if (label >= english.length) problems.push(`${file}: record ${i} has label ${label}, ${path.basename(metaFile)} lists ${english.length} classes`);
  }
  if (problems.length) throw new DataError(problems);
  const items: LabelledImage[] = Array.from({ length: count }, (_, i) => ({
    id: `${name}#${i}`,
    label: bytes[i * CIFAR_RECORD],
    read: async () => cifarImage(bytes, i),
  }));
  return { layout: 'cifar10-binary', classes: english.map((n) => CIFAR10_RUSSIAN[n] ?? n), items };
}

/** Record i's pixels: three 32×32 planes (R, G, B), row-major, interleaved into RGB. */
function cifarImage(bytes: Uint8Array, i: number): RgbImage {
  const plane = 32 * 32;
  const base = i * CIFAR_RECORD + 1;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    data[p * 3] = bytes[base + p];
    data[p * 3 + 1] = bytes[base + plane + p];
    data[p * 3 + 2] = bytes[base + 2 * plane + p];
  }
  return { width: 32, height: 32, data };
}

// ---- question answering ------------------------------------------------------------------------------

export interface QaItem { id: string; context: string; question: string; answers: string[] }

/** 1-based line of a character offset. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function jsonError(file: string, text: string, e: unknown, lineBase = 0): string {
  const msg = (e as Error).message;
  const at = /position (\d+)/.exec(msg);
  const line = at ? lineBase + lineOf(text, Number(at[1])) : lineBase || undefined;
  return `${file}${line ? `:${line}` : ''}: not valid JSON (${msg})`;
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/** SQuAD JSON, or one sberquad record a line (Hugging Face export). */
export async function readQaData(file: string): Promise<QaItem[]> {
  const text = await readDataText(file, DATA_LIMITS.text);
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') && /^\{\s*"(data|version)"/.test(trimmed)) return readSquadJson(file, text);
  return readQaLines(file, text);
}

function readSquadJson(file: string, text: string): QaItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DataError([jsonError(file, text, e)]);
  }
  const data = (doc as { data?: unknown }).data;
  if (!Array.isArray(data)) throw new DataError([`${file}: expected {"data": [...]} (SQuAD layout)`]);
  const items: QaItem[] = [];
  const problems: string[] = [];
  data.forEach((article, a) => {
    const paragraphs = (article as { paragraphs?: unknown })?.paragraphs;
    if (!Array.isArray(paragraphs)) { problems.push(`${file}: data[${a}]: expected "paragraphs": [...]`); return; }
    paragraphs.forEach((para, p) => {
      const where = `data[${a}].paragraphs[${p}]`;
      const { context, qas } = (para ?? {}) as { context?: unknown; qas?: unknown };
      if (!isText(context)) { problems.push(`${file}: ${where}: "context" must be a non-empty string`); return; }
      if (!Array.isArray(qas)) { problems.push(`${file}: ${where}: expected "qas": [...]`); return; }
      qas.forEach((qa, q) => {
        const at = `${where}.qas[${q}]`;
        const { id, question, answers } = (qa ?? {}) as { id?: unknown; question?: unknown; answers?: unknown };
        const texts = Array.isArray(answers) ? answers.map((x) => (x as { text?: unknown })?.text) : [];
        const problem = !isText(question) ? '"question" must be a non-empty string'
          : texts.length === 0 || !texts.every(isText) ? '"answers" must be a non-empty list of {"text": "..."}'
            : null;
        if (problem) { problems.push(`${file}: ${at}${id !== undefined ? ` (id ${String(id)})` : ''}: ${problem}`); return; }
        items.push({ id: id === undefined ? at : String(id), context: context as string, question: question as string, answers: texts as string[] });
      });
    });
  });
  return checked(file, items, problems);
}

function readQaLines(file: string, text: string): QaItem[] {
  const items: QaItem[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let rec: unknown;
    try {
      rec = JSON.parse(raw);
    } catch (e) {
      problems.push(`${file}:${line}: not valid JSON (${(e as Error).message}); expected SQuAD JSON or one {"context", "question", "answers"} a line`);
      return;
    }
    const { id, context, question, answers } = (rec ?? {}) as { id?: unknown; context?: unknown; question?: unknown; answers?: unknown };
    const texts = (answers as { text?: unknown } | undefined)?.text ?? (Array.isArray(answers) ? answers.map((x) => (x as { text?: unknown })?.text ?? x) : undefined);
    if (!isText(context)) problems.push(`${file}:${line}: "context" must be a non-empty string`);
    else if (!isText(question)) problems.push(`${file}:${line}: "question" must be a non-empty string`);
    else if (!Array.isArray(texts) || texts.length === 0 || !texts.every(isText)) problems.push(`${file}:${line}: "answers" must hold a non-empty list of texts ({"text": [...]})`);
    else items.push({ id: id === undefined ? `line ${line}` : String(id), context, question, answers: texts as string[] });
  });
  return checked(file, items, problems);
}

function checked<T extends { id: string }>(file: string, items: T[], problems: string[]): T[] {
  const seen = new Set<string>();
  for (const it of items) {
    if (seen.has(it.id)) problems.push(`${file}: id ${it.id} appears twice (ids name the results that a resumed run skips)`);
    seen.add(it.id);
  }
  if (problems.length) throw new DataError(problems);
  if (items.length === 0) throw new DataError([`${file}: no items`]);
  return items;
}

// ---- captions ------------------------------------------------------------------------------------

export interface CaptionItem { id: string; captions: string[]; read: () => Promise<RgbImage> }

export const CAPTIONS_FILE = 'captions.jsonl';

/** `<dir>/captions.jsonl` (or that file named directly): images with their reference captions. */
export async function readCaptionData(data: string): Promise<CaptionItem[]> {
  const st = await statOrNull(data);
  if (!st) throw new DataError([`${data}: no such file or folder`]);
  const file = st.isDirectory() ? path.join(data, CAPTIONS_FILE) : data;
  const dir = path.dirname(file);
  const text = await readDataText(file, DATA_LIMITS.text, `a caption data folder holds ${CAPTIONS_FILE}: {"image": "file", "caption": "text"} a line`);
  const items: CaptionItem[] = [];
  const problems: string[] = [];
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = i + 1;
    if (raw.trim() === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(raw);
    } catch (e) {
      problems.push(`${file}:${line}: not valid JSON (${(e as Error).message})`);
      continue;
    }
    const { image, caption, captions } = (rec ?? {}) as { image?: unknown; caption?: unknown; captions?: unknown };
    const list = captions ?? (caption === undefined ? undefined : [caption]);
    if (!isText(image)) { problems.push(`${file}:${line}: "image" must be a file name`); continue; }
    if (!Array.isArray(list) || list.length === 0 || !list.every(isText)) { problems.push(`${file}:${line}: needs "caption": "text" or "captions": ["text", ...]`); continue; }
    const imageFile = path.resolve(dir, image);
    if (!(await statOrNull(imageFile))?.isFile()) { problems.push(`${file}:${line}: no image file ${image}`); continue; }
    items.push({ id: image, captions: list as string[], read: () => readImage(imageFile) });
  }
  return checked(file, items, problems);
}
