/**
 * Golden cases of Real-ESRGAN (`upscale_forward`, `upscale_predict`; manifest format:
 * test/data/golden-upscale/PROVENANCE.md). Each model is its `.pth` (the container the official
 * `load_weights` reads) and the manifest's `rrdbnet_args`. Tolerances are the case's own:
 * floats |diff| ≤ max_abs; uint8 images |diff| ≤ max_abs with at most max_mismatch_fraction of
 * the values differing; the mirror-padded input, patch count and batch sizes exactly.
 */
import path from 'node:path';
import type { RgbImage } from '../../src/image/index.js';
import type { HostTensor } from '../../src/tensor.js';
import { rrdbNetConfigFromArgs, RrdbNet, Upscaler, type FloatTensor, type RrdbNetConfig } from '../../src/upscale/index.js';
import { isTensorRef, maxAbsDiff, type CaseHandler, type CaseResult, type GoldenCase, type GoldenContext } from './types.js';

interface Tolerance { max_abs: number; max_mismatch_fraction?: number }

function modelFiles(ctx: GoldenContext, model: string): { file: string; cfg: RrdbNetConfig } {
  const m = ctx.manifest.models[model];
  if (!m) throw new Error(`model ${model} not in the manifest`);
  const weights = Object.keys(m.files ?? {}).filter((f) => /\.(pth|safetensors)$/i.test(f));
  if (weights.length !== 1) throw new Error(`${model}: expected one .pth / .safetensors file, found ${weights.join(', ') || 'none'}`);
  return { file: path.join(ctx.dir, model, weights[0]), cfg: rrdbNetConfigFromArgs(m.rrdbnet_args as Record<string, unknown>) };
}

const nets = new Map<string, Promise<RrdbNet>>();
const upscalers = new Map<string, Promise<Upscaler>>();

/** The network with its intermediates exposed, opened once per model. */
function goldenNet(ctx: GoldenContext, model: string): Promise<RrdbNet> {
  let hit = nets.get(model);
  if (!hit) {
    const { file, cfg } = modelFiles(ctx, model);
    hit = RrdbNet.fromCheckpoint(file, cfg, { intermediates: true, threads: 2 });
    nets.set(model, hit);
  }
  return hit;
}

/** The Upscaler as a user opens it, once per model. */
function goldenUpscaler(ctx: GoldenContext, model: string): Promise<Upscaler> {
  let hit = upscalers.get(model);
  if (!hit) {
    const { file, cfg } = modelFiles(ctx, model);
    const { scale, ...config } = cfg;
    hit = Upscaler.fromCheckpoint(file, { scale, config, threads: 2 });
    upscalers.set(model, hit);
  }
  return hit;
}

function tolerance(c: GoldenCase, name: string): Tolerance {
  const t = (c.tolerance as Record<string, Tolerance> | undefined)?.[name];
  if (!t || typeof t.max_abs !== 'number') throw new Error(`${c.id}: no tolerance for ${name}`);
  return t;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Collects per-output checks into one PASS/FAIL line. */
class Verdict {
  private problems: string[] = [];
  private notes: string[] = [];
  private worstFloat = -1;

  float(name: string, got: FloatTensor | undefined, want: HostTensor, tol: Tolerance): void {
    if (!got) { this.problems.push(`${name}: not produced`); return; }
    if (!sameShape(got.shape, want.shape)) { this.problems.push(`${name}: shape [${got.shape}] != [${want.shape}]`); return; }
    const err = maxAbsDiff(got.data, want.data as Float32Array);
    this.worstFloat = Math.max(this.worstFloat, tol.max_abs > 0 ? err / tol.max_abs : err === 0 ? 0 : Infinity);
    if (!(err <= tol.max_abs)) this.problems.push(`${name}: max abs ${err.toExponential(2)} > ${tol.max_abs}`);
  }

  bytes(name: string, got: RgbImage, want: HostTensor, tol: Tolerance): void {
    const shape = [got.height, got.width, 3];
    if (!sameShape(shape, want.shape)) { this.problems.push(`${name}: shape [${shape}] != [${want.shape}]`); return; }
    const ref = want.data as Uint8Array;
    let differ = 0, worst = 0;
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(got.data[i] - ref[i]);
      if (d > 0) { differ++; worst = Math.max(worst, d); }
    }
    const allowed = Math.floor((tol.max_mismatch_fraction ?? 0) * ref.length);
    this.notes.push(`${name} ${differ}/${ref.length} differ (max ${worst})`);
    if (worst > tol.max_abs || differ > allowed) this.problems.push(`${name}: ${differ} values differ (allowed ${allowed}), max ${worst} (allowed ${tol.max_abs})`);
  }

  exact(what: string, got: unknown, want: unknown): void {
    if (JSON.stringify(got) !== JSON.stringify(want)) this.problems.push(`${what}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  }

  result(checked: string[]): CaseResult {
    const floats = this.worstFloat >= 0 ? [`worst float error ${(this.worstFloat * 100).toFixed(1)}% of its tolerance`] : [];
    const info = [`checked ${checked.join(', ')}`, ...floats, ...this.notes].join('; ');
    return this.problems.length === 0
      ? { status: 'PASS', info }
      : { status: 'FAIL', info: `${info} — ${this.problems[0]}${this.problems.length > 1 ? ` (+${this.problems.length - 1} more)` : ''}` };
  }
}

const upscaleForward: CaseHandler = async (c, ctx) => {
  const net = await goldenNet(ctx, c.model!);
  const x = await ctx.tensor(c, c.inputs?.x);
  const r = await net.forwardWithIntermediates({ data: x.data as Float32Array, shape: x.shape });
  const got: Record<string, FloatTensor | undefined> = { output: r.output, ...r.intermediates };
  const v = new Verdict();
  const names = Object.keys(c.outputs ?? {});
  for (const name of names) v.float(name, got[name], await ctx.tensor(c, c.outputs![name]), tolerance(c, name));
  return v.result(names);
};

const upscalePredict: CaseHandler = async (c, ctx) => {
  const upscaler = await goldenUpscaler(ctx, c.model!);
  const t = await ctx.tensor(c, c.inputs?.image_u8_hwc);
  const [height, width, channels] = t.shape;
  if (channels !== 3 || t.dtype !== 'uint8') throw new Error(`image_u8_hwc: expected uint8 [H, W, 3], got ${t.dtype} [${t.shape}]`);
  const image: RgbImage = { width, height, data: t.data as Uint8Array };
  const p = c.params as { patches_size: number; padding: number; pad_size: number; batch_size: number };
  const r = await upscaler.predict({
    image, patchSize: p.patches_size, padding: p.padding, padSize: p.pad_size, batchSize: p.batch_size,
    // the quirk case documents the official stitching with 2·padding ≥ patchSize
    officialStitch: typeof c.quirk === 'string',
  }, { keepFloat: true });
  const v = new Verdict();
  const outputs = c.outputs ?? {};
  const names = Object.keys(outputs);
  for (const name of names) {
    const want = await ctx.tensor(c, outputs[name]);
    if (name === 'sr_image') v.bytes(name, r.image, want, tolerance(c, name));
    else if (name === 'padded_input') v.bytes(name, r.padded, want, tolerance(c, name));
    else if (name === 'sr_float') v.float(name, { data: r.float!, shape: [r.image.height, r.image.width, 3] }, want, tolerance(c, name));
    else v.exact(`output ${name}`, 'handled', 'unknown output');
  }
  if (typeof c.n_patches === 'number') v.exact('patch count', r.batches.reduce((a, b) => a + b, 0), c.n_patches);
  if (Array.isArray(c.model_call_batch_sizes)) v.exact('batch sizes', r.batches, c.model_call_batch_sizes);
  return v.result([...names.filter((n) => isTensorRef(outputs[n])), 'patch count', 'batch sizes']);
};

export const upscaleCaseHandlers: Record<string, CaseHandler> = {
  upscale_forward: upscaleForward,
  upscale_predict: upscalePredict,
};
