/**
 * Text → image token ids (official `generate_codebooks` and `generate_codebooks_cfg`), with
 * optional image prompts (known border cells) and classifier-free-guidance mixing.
 */
import { InputError } from '../errors.js';
import { autoregress } from '../generation/autoregress.js';
import { drawIndex, filteredLogits, resolveSampling, type SamplingOptions, softmax } from '../generation/sampling.js';
import { checkCount, chunks } from '../util/arrays.js';
import { ProgressReporter, type RunControl } from '../util/progress.js';
import { resolveSeed, Rng } from '../util/random.js';
import type { TaskContext } from './context.js';
import { encodeSegment, formatTemplate, requireText, TextFit, type Truncation } from './inputs.js';
import { applyDefaults } from './spec.js';

/** Official image sampling defaults: top-k 768, top-p 0.99, temperature 1. */
export const IMAGE_SAMPLING: SamplingOptions = { topK: 768, topP: 0.99, temperature: 1.0 };

/** Border cells (in tokens, 8 px each) of a prompt image to keep. */
export interface Borders { up?: number; down?: number; left?: number; right?: number }

/** Known image cells: token ids of the prompt image and the cell indices to keep. */
export interface ImagePrompt {
  /** n·n ids of the prompt image (or of its top strip with `cropFirst`: up·n ids) */
  ids: ArrayLike<number>;
  /** cell indices (row-major) taken from `ids` instead of sampled */
  cells: number[];
}

/** The cells a set of borders keeps (rows from the top/bottom, columns from the left/right). */
export function borderCells(n: number, b: Borders): number[] {
  const up = b.up ?? 0, down = b.down ?? 0, left = b.left ?? 0, right = b.right ?? 0;
  for (const [k, v] of Object.entries({ up, down, left, right })) {
    if (!Number.isInteger(v) || v < 0 || v > n) throw new InputError(`image prompt: border ${k} must be an integer in [0, ${n}], got ${v}`);
  }
  const cells: number[] = [];
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      if (row < up || row >= n - down || col < left || col >= n - right) cells.push(row * n + col);
    }
  }
  return cells;
}

/** The official defaults of `generate_codebooks_cfg`. */
export const GUIDANCE_DEFAULTS = { weight: 0.2, template: '', lateSoftmax: false };

export interface GuidanceOptions {
  /** weight of the unconditional prompt's probabilities */
  weight?: number;
  /** the unconditional prompt, formatted with {text} (official default '') */
  template?: string;
  /** mix filtered logits and softmax after (official `late_softmax`) */
  lateSoftmax?: boolean;
}

export interface GenerateImageTokensOptions extends RunControl, Partial<SamplingOptions> {
  text: string;
  /** number of images (candidates) */
  count?: number;
  seed?: number;
  imagePrompt?: ImagePrompt;
  guidance?: GuidanceOptions;
  batchSize?: number;
  /** cut a text that does not fit (reported in `truncated`) instead of refusing it (default true) */
  truncate?: boolean;
}

export interface ImageTokensResult {
  /** count × n² ids */
  codebooks: Int32Array[];
  seed: number;
  truncated?: Truncation[];
}

export async function generateImageTokens(ctx: TaskContext, o: GenerateImageTokensOptions): Promise<ImageTokensResult> {
  const { cfg } = ctx;
  requireText(o.text, 'text');
  const count = o.count ?? 1;
  checkCount(count, 'count');
  const sampling = resolveSampling(o, IMAGE_SAMPLING, 'image sampling');
  const seed = resolveSeed(o.seed);
  const m = cfg.imageLength, V = cfg.textVocab, W = cfg.imageVocab;
  const known = promptLookup(cfg.imageLength, cfg.imageVocab, o.imagePrompt);
  const fit = new TextFit(o.truncate ?? true);
  const cond = encodeSegment(ctx, o.text, cfg.l, '<LT_T2I>', fit);
  const guidance = o.guidance ? applyDefaults(GUIDANCE_DEFAULTS, o.guidance) : null;
  let uncond: Int32Array | null = null;
  if (guidance) {
    if (!(guidance.weight >= 0 && guidance.weight <= 1)) throw new InputError(`guidance weight must be in [0, 1], got ${guidance.weight}`);
    uncond = encodeSegment(ctx, formatTemplate(guidance.template, 'guidance template', undefined, { text: o.text }), cfg.l, '<LT_UNK>', fit, 'guidance.template');
  }
  const bs = Math.max(1, Math.floor((o.batchSize ?? ctx.batchSize) / (uncond ? 2 : 1)));
  const progress = new ProgressReporter(o, 'generateImageTokens', 'image tokens', count * m);
  const codebooks: Int32Array[] = [];
  for (const chunk of chunks(Array.from({ length: count }, (_, i) => i), bs)) {
    const B = chunk.length;
    const rngs = chunk.map((i) => new Rng(seed, i));
    const prefix = uncond ? [...chunk.map(() => cond), ...chunk.map(() => uncond!)] : chunk.map(() => cond);
    const rows = await autoregress(ctx, {
      prefix,
      steps: m,
      known: (j) => (known.has(j) ? new Array(prefix.length).fill(known.get(j)) : null),
      choose: (logits, width) => {
        const picks = new Array<number>(prefix.length);
        for (let b = 0; b < B; b++) {
          const row = (r: number) => logits.subarray(r * width + V, r * width + V + W);
          const id = drawIndex(uncond
            ? guidedProbabilities(row(b), row(B + b), sampling, guidance!.weight, guidance!.lateSoftmax)
            : softmax(filteredLogits(row(b), sampling)), rngs[b]);
          picks[b] = id;
          if (uncond) picks[B + b] = id;
        }
        return picks;
      },
      candidates: B,
    }, progress);
    codebooks.push(...rows.slice(0, B));
  }
  return { codebooks, seed, ...fit.report() };
}

/**
 * Classifier-free-guidance mixing of the official `generate_codebooks_cfg`: both rows are
 * temperature-scaled and top-k/top-p filtered, then their probabilities are mixed (1-w, w) — or,
 * with `lateSoftmax`, their filtered logits are mixed and softmaxed after (falling back to mixing
 * probabilities when the two filters keep no token in common).
 */
export function guidedProbabilities(cond: Float32Array, uncond: Float32Array, sampling: SamplingOptions, weight: number, lateSoftmax: boolean): Float64Array {
  const fc = filteredLogits(cond, sampling), fu = filteredLogits(uncond, sampling);
  if (lateSoftmax) {
    const mixed = new Float32Array(fc.length);
    let any = false;
    for (let i = 0; i < mixed.length; i++) {
      mixed[i] = fc[i] * (1 - weight) + fu[i] * weight;
      any ||= mixed[i] > -Infinity;
    }
    // no token survived both filters: the official code would softmax all −∞ into NaN and fail;
    // mix the probabilities instead for this step
    if (any) return softmax(mixed);
  }
  const pc = softmax(fc), pu = softmax(fu);
  const mixed = new Float64Array(pc.length);
  for (let i = 0; i < mixed.length; i++) mixed[i] = pc[i] * (1 - weight) + pu[i] * weight;
  return mixed;
}

function promptLookup(m: number, vocab: number, prompt?: ImagePrompt): Map<number, number> {
  const known = new Map<number, number>();
  if (!prompt) return known;
  for (const cell of prompt.cells) {
    if (!Number.isInteger(cell) || cell < 0 || cell >= m || cell >= prompt.ids.length) throw new InputError(`image prompt: cell ${cell} is outside the prompt's ${prompt.ids.length} ids`);
    const id = prompt.ids[cell];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new InputError(`image prompt: token ${id} at cell ${cell} is outside [0, ${vocab})`);
    known.set(cell, id);
  }
  return known;
}
