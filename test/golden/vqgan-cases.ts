/**
 * Golden cases of the VQGAN (`vqgan_encode*`, `vqgan_decode*`): the model is loaded from its
 * golden folder's checkpoint (the official Lightning `.ckpt` preferred) and YAML config, both
 * found through the manifest's file list; ids must match exactly, every float output
 * (intermediates included) within FLOAT_TOL.
 */
import type { RgbImage } from '../../src/image/index.js';
import { loadStateDict } from '../../src/io/checkpoint.js';
import type { HostTensor } from '../../src/tensor.js';
import { readVqganConfigFile, SBER_VQGAN_CONFIG } from '../../src/vqgan/config.js';
import { type FloatTensor, Vqgan } from '../../src/vqgan/vqgan-model.js';
import { type CaseHandler, type CaseResult, countMismatches, FLOAT_TOL, type GoldenContext, isTensorRef, maxAbsDiff } from './types.js';

/** Checkpoint formats in order of preference: the official Lightning/torch file first. */
const CHECKPOINT_PREFERENCE = [/\.ckpt$/i, /\.(bin|pt|pth)$/i, /\.safetensors$/i];

/** The checkpoint and YAML config of a VQGAN model folder, by the manifest's file list. */
export async function vqganModelFiles(ctx: GoldenContext, model: string): Promise<{ checkpoint: string; config?: string }> {
  const names = Object.keys(ctx.manifest.models[model]?.files ?? {}).filter((f) => f !== 'golden.safetensors' && f !== 'grads.safetensors');
  const checkpoint = CHECKPOINT_PREFERENCE.map((re) => names.find((f) => re.test(f))).find((f) => f !== undefined);
  if (!checkpoint) throw new Error(`${model}: no VQGAN checkpoint among ${names.join(', ')}`);
  const configs = names.filter((f) => /\.ya?ml$/i.test(f));
  if (configs.length > 1) throw new Error(`${model}: several YAML configs (${configs.join(', ')})`);
  return { checkpoint: ctx.file(model, checkpoint), config: configs[0] && ctx.file(model, configs[0]) };
}

const loaded = new Map<string, Promise<Vqgan>>();

/** The golden folder's VQGAN, loaded once per model. */
export function goldenVqgan(ctx: GoldenContext, model: string): Promise<Vqgan> {
  let hit = loaded.get(model);
  if (!hit) {
    hit = (async () => {
      const files = await vqganModelFiles(ctx, model);
      const cfg = files.config ? await readVqganConfigFile(files.config) : { ...SBER_VQGAN_CONFIG };
      return Vqgan.fromWeights(cfg, await loadStateDict(files.checkpoint, { toFloat32: true }), ctx.session, files.checkpoint);
    })();
    loaded.set(model, hit);
  }
  return hit;
}

/** Pipeline order: the first output that differs is where the error entered. */
const ENCODE_ORDER = ['encoder_out', 'quant_conv_out', 'proj_logits', 'indices'];
const DECODE_ORDER = ['z', 'post_quant_conv_out', 'decoder_out', 'image'];

function imagesOf(t: HostTensor): RgbImage[] {
  const [B, H, W, C] = t.shape;
  if (C !== 3 || t.dtype !== 'uint8') throw new Error(`expected uint8 [B, H, W, 3] images, got ${t.dtype} [${t.shape}]`);
  const data = t.data as Uint8Array;
  const per = H * W * 3;
  return Array.from({ length: B }, (_, b) => ({ width: W, height: H, data: data.subarray(b * per, (b + 1) * per) }));
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

const vqgan: CaseHandler = async (c, ctx) => {
  const model = await goldenVqgan(ctx, c.model!);
  const inputs = c.inputs ?? {};
  const outputs = c.outputs ?? {};
  const got = new Map<string, FloatTensor | { ids: Int32Array; shape: number[] }>();
  let order: string[];
  if (isTensorRef(inputs.image_u8_hwc)) {
    const r = await model.encodeWithIntermediates(imagesOf(await ctx.tensor(c, inputs.image_u8_hwc)));
    got.set('indices', { ids: r.ids, shape: [r.batch, r.rows * r.cols] });
    for (const [k, v] of Object.entries(r.intermediates)) got.set(k, v);
    order = ENCODE_ORDER;
  } else if (isTensorRef(inputs.indices)) {
    const t = await ctx.tensor(c, inputs.indices);
    const r = await model.decodeWithIntermediates(t.data as Int32Array, t.shape[0]);
    got.set('image', { data: r.image.data, shape: [r.image.batch, model.cfg.outCh, r.image.height, r.image.width] });
    for (const [k, v] of Object.entries(r.intermediates)) got.set(k, v);
    order = DECODE_ORDER;
  } else {
    return { status: 'FAIL', info: `inputs ${Object.keys(inputs).join(', ')}: neither image_u8_hwc nor indices` };
  }

  const names = Object.keys(outputs).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  let worst = 0;
  const problems: string[] = [];
  for (const name of names) {
    const ref = outputs[name];
    if (!isTensorRef(ref)) continue;
    const mine = got.get(name);
    if (!mine) { problems.push(`${name}: not produced`); continue; }
    const want = await ctx.tensor(c, ref);
    if (!sameShape(mine.shape, want.shape)) { problems.push(`${name}: shape [${mine.shape}] != [${want.shape}]`); continue; }
    if ('ids' in mine) {
      const bad = countMismatches(mine.ids, want.data as Int32Array);
      if (bad > 0) problems.push(`${name}: ${bad} of ${mine.ids.length} ids differ`);
    } else {
      const err = maxAbsDiff(mine.data, want.data as Float32Array);
      worst = Math.max(worst, err);
      if (!(err <= FLOAT_TOL)) problems.push(`${name}: max abs ${err.toExponential(2)}`);
    }
  }
  const info = `max abs ${worst.toExponential(2)} (tol ${FLOAT_TOL}) over ${names.join(', ')}`;
  const result: CaseResult = problems.length === 0
    ? { status: 'PASS', info }
    : { status: 'FAIL', info: `${info} — first mismatch: ${problems[0]}${problems.length > 1 ? ` (+${problems.length - 1} more)` : ''}` };
  return result;
};

export const vqganCaseHandlers: Record<string, CaseHandler> = { vqgan };
