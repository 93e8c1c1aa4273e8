/**
 * Fine-tuning data: a JSONL manifest, one sample a line — `{"image": "path", "left": "text",
 * "right": "text"}`, each field optional, paths relative to the manifest. Images are preprocessed
 * and VQGAN-encoded once and cached by content; texts are laid out with the model's tokenizer and
 * special tokens. Bad lines are reported with their line number and rejected (default) or skipped.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { RudolphError } from '../errors.js';
import { ImageError, preprocessImage } from '../image/index.js';
import { readBoundedFile, writeFileAtomic } from '../io/files.js';
import { type RudolphConfig, specialId, type SpecialTokenName } from '../model/config.js';
import { readImage, readImageFile } from '../runtime/node/image-files.js';
import { encodeText, prepareText, segmentTokenCount, type TextTokenizer, wasCut } from '../tokenizer/text-encoding.js';
import { chunks } from '../util/arrays.js';
import { Rng } from '../util/random.js';
import type { ImageTokenizer } from '../vqgan/vqgan-model.js';
import { TrainingError } from './errors.js';

export interface ManifestLine { line: number; image?: string; left?: string; right?: string }

export interface BadLine { file: string; line: number; reason: string }

export class ManifestError extends RudolphError {
  constructor(readonly problems: BadLine[]) {
    super('TRAINING', `${problems.length} bad line(s) in the training data:\n${problems.slice(0, 10).map((p) => `  ${p.file}:${p.line}: ${p.reason}`).join('\n')}${problems.length > 10 ? '\n  …' : ''}`);
    this.name = 'ManifestError';
  }
}

export type BadLinePolicy = 'reject' | 'skip';

/** A million-line manifest is ~100 MB; a bound keeps a device path or a runaway file from being read whole. */
const MAX_MANIFEST_BYTES = 512 * 2 ** 20;

/** Parses a manifest; returns the good lines and the bad ones (with reasons). */
export async function readManifest(file: string): Promise<{ lines: ManifestLine[]; bad: BadLine[] }> {
  let text: string;
  try {
    text = (await readBoundedFile(file, MAX_MANIFEST_BYTES)).toString('utf8');
  } catch (e) {
    throw new TrainingError(`${file}: cannot read the data manifest: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a UTF-8 BOM, as Windows editors write
  const dir = path.dirname(file);
  const lines: ManifestLine[] = [];
  const bad: BadLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      bad.push({ file, line, reason: `not valid JSON (${(e as Error).message})` });
      return;
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) { bad.push({ file, line, reason: 'expected a JSON object' }); return; }
    const rec = obj as Record<string, unknown>;
    const unknown = Object.keys(rec).filter((k) => !['image', 'left', 'right'].includes(k));
    if (unknown.length) { bad.push({ file, line, reason: `unknown field(s) ${unknown.join(', ')} (use image, left, right)` }); return; }
    for (const k of ['image', 'left', 'right'] as const) {
      if (rec[k] !== undefined && typeof rec[k] !== 'string') { bad.push({ file, line, reason: `"${k}" must be a string` }); return; }
    }
    const out: ManifestLine = { line };
    if (typeof rec.image === 'string' && rec.image !== '') out.image = path.resolve(dir, rec.image);
    if (typeof rec.left === 'string' && prepareText(rec.left) !== '') out.left = rec.left;
    if (typeof rec.right === 'string' && prepareText(rec.right) !== '') out.right = rec.right;
    if (!out.image && !out.left && !out.right) { bad.push({ file, line, reason: 'empty sample: give an image, a left text or a right text' }); return; }
    if (out.right && !out.image) { bad.push({ file, line, reason: 'a right text needs an image before it (the layout is [left | image | right])' }); return; }
    lines.push(out);
  });
  return { lines, bad };
}

/** One training sequence: ids of a whole layout prefix (l, l+n² or l+n²+r tokens). */
export interface Sample { line: number; ids: Int32Array }

export interface DatasetOptions {
  cfg: RudolphConfig;
  tokenizer: TextTokenizer;
  vqgan?: ImageTokenizer;
  /** folder for cached image token ids (default: none) */
  cacheDir?: string;
  /** what encodes images, for the cache key (e.g. the VQGAN checkpoint's path and size) */
  vqganId?: string;
  onBadLine?: BadLinePolicy;
  /** called for every bad line that is skipped, and for texts cut to fit their segment */
  onWarning?: (bad: BadLine) => void;
  batchSize?: number;
}

/** The special tokens of a sample, by what it holds. */
function specials(line: ManifestLine): { left: SpecialTokenName; right: SpecialTokenName } {
  if (!line.image) return { left: '<LT_T2T>', right: '<RT_I2T>' };
  return { left: line.left ? '<LT_T2I>' : '<LT_I2T>', right: '<RT_I2T>' };
}

/** Loads a manifest into training sequences. */
export async function loadDataset(file: string, o: DatasetOptions): Promise<{ samples: Sample[]; skipped: BadLine[] }> {
  const { cfg } = o;
  const { lines, bad } = await readManifest(file);
  const problems = [...bad];
  const images = new Map<number, Int32Array>();
  const withImage = lines.filter((l) => l.image);
  if (withImage.length && !o.vqgan) throw new TrainingError(`${file}: ${withImage.length} sample(s) have images but no VQGAN was given`);
  const toEncode: { line: ManifestLine; key: string; pixels: ReturnType<typeof preprocessImage> }[] = [];
  for (const line of withImage) {
    try {
      const bytes = await readImageFile(line.image!);
      const key = createHash('sha256').update(bytes).update(`|${8 * cfg.n}|${o.vqganId ?? ''}`).digest('hex');
      const cached = o.cacheDir ? await readCachedIds(o.cacheDir, key, cfg.imageLength, cfg.imageVocab) : null;
      if (cached) { images.set(line.line, cached); continue; }
      toEncode.push({ line, key, pixels: preprocessImage(await readImage(bytes, { name: line.image }), 8 * cfg.n) });
    } catch (e) {
      // an ImageError names the file itself
      problems.push({ file, line: line.line, reason: e instanceof ImageError ? `image ${e.message}` : `image ${line.image}: ${(e as Error).message}` });
    }
  }
  for (const part of chunks(toEncode, o.batchSize ?? 8)) {
    const ids = await o.vqgan!.encode(part.map((p) => p.pixels));
    for (const [j, p] of part.entries()) {
      const one = ids.slice(j * cfg.imageLength, (j + 1) * cfg.imageLength);
      images.set(p.line.line, one);
      if (o.cacheDir) await writeCachedIds(o.cacheDir, p.key, one);
    }
  }
  const badLines = new Set(problems.map((p) => p.line));
  if (problems.length && (o.onBadLine ?? 'reject') === 'reject') throw new ManifestError(problems.sort((a, b) => a.line - b.line));
  for (const p of problems) o.onWarning?.({ ...p, reason: `${p.reason} (skipped)` });
  const samples: Sample[] = [];
  // as the official code, a text longer than its segment is cut (and loses its eos): said, not silent
  const encode = (line: ManifestLine, field: 'left' | 'right', length: number, special: SpecialTokenName): Int32Array => {
    const spc = specialId(cfg, special);
    const text = prepareText(line[field] ?? '');
    const encoded = encodeText(o.tokenizer, text, length, spc);
    if (wasCut(encoded)) o.onWarning?.({ file, line: line.line, reason: `${field} text is ${segmentTokenCount(o.tokenizer, text, spc)} tokens, cut to the model's ${length}` });
    return encoded;
  };
  for (const line of lines) {
    if (badLines.has(line.line)) continue;
    const s = specials(line);
    const parts: Int32Array[] = [encode(line, 'left', cfg.l, s.left)];
    if (line.image) {
      parts.push(images.get(line.line)!);
      if (line.right) parts.push(encode(line, 'right', cfg.r, s.right));
    }
    const ids = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) { ids.set(p, off); off += p.length; }
    samples.push({ line: line.line, ids });
  }
  return { samples, skipped: problems };
}

/**
 * A cache entry is `<sha256 of the ids>` (32 bytes) then the ids (int32 LE). An entry that does
 * not verify (torn write, disk error, an older format, tampering) or holds an id outside the
 * codebook is treated as absent: the image is encoded again and the entry rewritten.
 */
const CHECKSUM_BYTES = 32;

async function readCachedIds(dir: string, key: string, length: number, vocab: number): Promise<Int32Array | null> {
  let buf: Buffer;
  try {
    buf = await readBoundedFile(path.join(dir, `${key}.ids`), CHECKSUM_BYTES + length * 4);
  } catch {
    return null;
  }
  if (buf.length !== CHECKSUM_BYTES + length * 4) return null;
  const body = buf.subarray(CHECKSUM_BYTES);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(0, CHECKSUM_BYTES))) return null;
  const ids = new Int32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.length));
  return ids.every((id) => id >= 0 && id < vocab) ? ids : null;
}

async function writeCachedIds(dir: string, key: string, ids: Int32Array): Promise<void> {
  const body = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  await writeFileAtomic(path.join(dir, `${key}.ids`), Buffer.concat([createHash('sha256').update(body).digest(), body]));
}

/**
 * Micro-batches of one epoch: samples shuffled with a seeded generator (stream = epoch), grouped
 * by sequence length (the loss needs whole layout prefixes of one length per batch).
 */
export function epochBatches(samples: readonly Sample[], batchSize: number, seed: number, epoch: number): Sample[][] {
  const order = samples.map((_, i) => i);
  const rng = new Rng(seed, epoch);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const byLength = new Map<number, Sample[]>();
  const batches: Sample[][] = [];
  for (const i of order) {
    const s = samples[i];
    const group = byLength.get(s.ids.length) ?? [];
    group.push(s);
    if (group.length === batchSize) { batches.push(group); byLength.set(s.ids.length, []); } else byLength.set(s.ids.length, group);
  }
  for (const group of byLength.values()) if (group.length) batches.push(group);
  return batches;
}

/** Row-major ids of a micro-batch. */
export function batchIds(batch: readonly Sample[]): { ids: Int32Array; batch: number } {
  const T = batch[0].ids.length;
  const ids = new Int32Array(batch.length * T);
  batch.forEach((s, i) => ids.set(s.ids, i * T));
  return { ids, batch: batch.length };
}
