/**
 * Preparing task inputs: text segments with special tokens as the official code lays them out,
 * template formatting, and images (or their ids) as image token ids.
 */
import { InputError } from '../errors.js';
import { preprocessImage, type RgbImage } from '../image/index.js';
import { specialId, type SpecialTokenName } from '../model/config.js';
import type { RudolphModel } from '../model/rudolph-model.js';
import { encodeText, prepareText, segmentTokenCount, wasCut } from '../tokenizer/text-encoding.js';
import { chunks } from '../util/arrays.js';
import type { TaskContext } from './context.js';

/** A text cut to fit its segment: which field, its beginning, the tokens it needed and the tokens kept. */
export interface Truncation {
  field: string;
  text: string;
  tokens: number;
  kept: number;
}

/**
 * How a task treats a text that does not fit its segment. The convention of text-to-image tools
 * (and the official code, which cuts silently): cut it and report it (`truncated` in the result,
 * a warning on the CLI); with `truncate: false` (CLI --strict-length) refuse it instead.
 */
export class TextFit {
  readonly cuts: Truncation[] = [];
  constructor(readonly truncate: boolean) {}
  /** `{ truncated }` for a result, present only when something was cut */
  report(...more: (Truncation[] | undefined)[]): { truncated?: Truncation[] } {
    const all = [...this.cuts, ...more.flatMap((m) => m ?? [])];
    return all.length ? { truncated: all } : {};
  }
}

/** Texts the model generated itself are cut silently, as the official code does (they may lose their eos). */
export const GENERATED = 'generated';

const excerpt = (text: string) => (text.length > 60 ? `${text.slice(0, 57)}...` : text);

/** A text segment as the official `encode_text` lays it out, after Python `lower().strip()`; see `TextFit`. */
export function encodeSegment(ctx: TaskContext, text: string, length: number, special: SpecialTokenName, fit: TextFit | typeof GENERATED, field = 'text'): Int32Array {
  const spc = specialId(ctx.cfg, special);
  const prepared = prepareText(text);
  const encoded = encodeText(ctx.tokenizer, prepared, length, spc);
  if (fit === GENERATED || !wasCut(encoded)) return encoded;
  const needed = segmentTokenCount(ctx.tokenizer, prepared, spc);
  if (!fit.truncate) {
    throw new InputError(`${field} ${JSON.stringify(excerpt(text))} is too long: ${needed} tokens with bos/eos${spc === null ? '' : '/special'}, the model's segment holds ${length} (allow cutting it: truncate: true, or drop --strict-length)`);
  }
  fit.cuts.push({ field, text: excerpt(text), tokens: needed, kept: length });
  return encoded;
}

/** Number of leading tokens of an encoded template before its eos (the official `template_size`). */
export function templateSize(encoded: Int32Array): number {
  let nonzero = 0;
  for (const v of encoded) if (v !== 0) nonzero++;
  return nonzero - 1;
}

/**
 * Python `str.format` for the templates the API takes: `{}` / `{0}` take the positional value,
 * `{name}` a named one, `{{` and `}}` are literal braces. Any other field is an InputError.
 */
export function formatTemplate(template: string, what: string, positional?: string, named: Record<string, string> = {}): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    if (ch === '{' && template[i + 1] === '{') { out += '{'; i++; continue; }
    if (ch === '}' && template[i + 1] === '}') { out += '}'; i++; continue; }
    if (ch === '}') throw new InputError(`${what}: single '}' in template ${JSON.stringify(template)}`);
    if (ch !== '{') { out += ch; continue; }
    const end = template.indexOf('}', i);
    if (end < 0) throw new InputError(`${what}: unclosed '{' in template ${JSON.stringify(template)}`);
    const field = template.slice(i + 1, end);
    if ((field === '' || field === '0') && positional !== undefined) out += positional;
    else if (Object.prototype.hasOwnProperty.call(named, field)) out += named[field];
    else {
      const known = [...(positional !== undefined ? ['{}'] : []), ...Object.keys(named).map((k) => `{${k}}`)];
      throw new InputError(`${what}: unknown template field {${field}} in ${JSON.stringify(template)} (use ${known.join(' or ') || 'no fields'})`);
    }
    i = end;
  }
  return out;
}

export function requireText(text: unknown, what: string): string {
  if (typeof text !== 'string') throw new InputError(`${what} must be a string`);
  if (prepareText(text) === '') throw new InputError(`${what} is empty`);
  return text;
}

/** An image (or its ids) as n·n image token ids. */
export type ImageInput = RgbImage | { ids: ArrayLike<number> };

function isIds(x: ImageInput): x is { ids: ArrayLike<number> } {
  return (x as { ids?: unknown }).ids !== undefined;
}

/** Token ids of images: encoded by the VQGAN after the official preprocessing, or checked ids. */
export async function imageTokens(ctx: TaskContext, images: ImageInput[], what: string): Promise<Int32Array[]> {
  const m = ctx.cfg.imageLength;
  const out: Int32Array[] = new Array(images.length);
  const toEncode: { index: number; image: RgbImage }[] = [];
  images.forEach((img, i) => {
    if (isIds(img)) {
      if (img.ids.length !== m) throw new InputError(`${what} ${i}: expected ${m} image token ids, got ${img.ids.length}`);
      const ids = Int32Array.from(img.ids);
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= ctx.cfg.imageVocab) throw new InputError(`${what} ${i}: image token ${id} is outside [0, ${ctx.cfg.imageVocab})`);
      }
      out[i] = ids;
    } else {
      toEncode.push({ index: i, image: preprocessImage(img, 8 * ctx.cfg.n) });
    }
  });
  if (toEncode.length) {
    if (!ctx.vqgan) throw new InputError(`${what}: images need a VQGAN to be encoded; give image token ids or load a VQGAN`);
    for (const part of chunks(toEncode, ctx.batchSize)) {
      const ids = await ctx.vqgan.encode(part.map((p) => p.image));
      part.forEach((p, j) => { out[p.index] = ids.slice(j * m, (j + 1) * m); });
    }
  }
  return out;
}
