/** Golden cases of the transformer: masks, forward_*, loss_*, incremental_*. */
import { loadStateDict } from '../../src/io/checkpoint.js';
import { configFromJson, type RudolphConfig } from '../../src/model/config.js';
import { LossEvaluator } from '../../src/model/loss.js';
import { fullMask, layerMaskKinds, MASK_KINDS } from '../../src/model/masks.js';
import { RudolphModel } from '../../src/model/rudolph-model.js';
import { type RudolphWeights, weightsFromStateDict } from '../../src/model/weights.js';
import { readText } from '../../src/runtime/current.js';
import { type CaseHandler, countMismatches, FLOAT_TOL, type GoldenContext, isTensorRef, judge, maxAbsDiff } from './types.js';

export interface LoadedRudolph { cfg: RudolphConfig; weights: RudolphWeights; model: RudolphModel; debug: RudolphModel }
const loaded = new Map<string, Promise<LoadedRudolph>>();

/** The golden model folder's official torch checkpoint as a RudolphModel, cached (read through the runtime: a file on Node, a URL in the page). */
export function goldenRudolph(ctx: GoldenContext, name: string): Promise<LoadedRudolph> {
  let hit = loaded.get(name);
  if (!hit) {
    hit = (async () => {
      const cfg = configFromJson(JSON.parse(await readText(ctx.file(name, 'config.json'))), `${name}/config.json`);
      const weights = weightsFromStateDict(cfg, await loadStateDict(ctx.file(name, 'pytorch_model.bin'), { toFloat32: true }), `${name}/pytorch_model.bin`);
      const model = await RudolphModel.fromWeights(cfg, weights, ctx.session);
      const debug = await RudolphModel.fromWeights(cfg, weights, { ...ctx.session, debugOutputs: true });
      return { cfg, weights, model, debug };
    })();
    loaded.set(name, hit);
  }
  return hit;
}

function ids32(t: { data: ArrayLike<number> | BigInt64Array }): number[] {
  return Array.from(t.data as ArrayLike<number>, Number);
}

/** Rows [:, :T] of a [B, T0] id tensor. */
function prefix(ids: number[], batch: number, T: number): number[] {
  const T0 = ids.length / batch;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) out.push(...ids.slice(b * T0, b * T0 + T));
  return out;
}

const masks: CaseHandler = async (c, ctx) => {
  const { cfg } = await goldenRudolph(ctx, c.model!);
  let bad = 0;
  for (const kind of MASK_KINDS) {
    const ref = c.outputs?.[kind];
    if (!isTensorRef(ref)) continue;
    const t = await ctx.tensor(c, ref);
    bad += countMismatches(fullMask(kind, cfg, t.shape[0]), t.data as Uint8Array);
  }
  const kinds = c.layer_mask_kinds as string[] | undefined;
  if (kinds && kinds.join() !== layerMaskKinds(cfg.numLayers).join()) return { status: 'FAIL', info: `layer kinds ${layerMaskKinds(cfg.numLayers).join()} != ${kinds.join()}` };
  return { status: bad === 0 ? 'PASS' : 'FAIL', info: `${bad} mask entries differ` };
};

const forward: CaseHandler = async (c, ctx) => {
  const { cfg, debug } = await goldenRudolph(ctx, c.model!);
  const idsT = await ctx.tensor(c, c.inputs!.input_ids);
  const [B] = idsT.shape;
  const outputs = c.outputs!;
  const extra = ['embeddings', 'transformer_output'].filter((k) => k in outputs);
  const hiddenNames = 'hidden_states' in outputs ? Array.from({ length: cfg.numLayers }, (_, i) => `hidden_${i}`) : [];
  const got = await debug.forward(ids32(idsT), B, { extra: [...extra, ...hiddenNames] });
  const errs: string[] = [];
  let worst = maxAbsDiff(got.logits!, (await ctx.tensor(c, outputs.logits)).data as Float32Array);
  for (const name of extra) {
    const e = maxAbsDiff(got.extra[name], (await ctx.tensor(c, outputs[name])).data as Float32Array);
    if (e > FLOAT_TOL) errs.push(`${name} ${e.toExponential(2)}`);
    worst = Math.max(worst, e);
  }
  if (hiddenNames.length) {
    const ref = (await ctx.tensor(c, outputs.hidden_states)).data as Float32Array;
    const per = ref.length / cfg.numLayers;
    hiddenNames.forEach((name, i) => {
      const e = maxAbsDiff(got.extra[name], ref.subarray(i * per, (i + 1) * per));
      if (e > FLOAT_TOL) errs.push(`layer ${i} hidden ${e.toExponential(2)}`);
      worst = Math.max(worst, e);
    });
  }
  const r = judge(worst, FLOAT_TOL);
  if (errs.length) r.info += ` — first mismatch: ${errs[0]}`;
  return r;
};

const lossEvaluators = new Map<string, LossEvaluator>();

const loss: CaseHandler = async (c, ctx) => {
  const { cfg, model } = await goldenRudolph(ctx, c.model!);
  const idsT = await ctx.tensor(c, c.inputs!.input_ids);
  const [B] = idsT.shape;
  const T = c.inputs!.length as number;
  const [wl, wi, wr] = c.inputs!.weights as number[];
  const ids = prefix(ids32(idsT), B, T);
  const logits = await model.forward(ids, B);
  let ev = lossEvaluators.get(c.model!);
  if (!ev) { ev = new LossEvaluator(cfg); lossEvaluators.set(c.model!, ev); }
  const got = await ev.evaluate(logits.logits!, ids, B, { left: wl, image: wi, right: wr }, 'official');
  const names: Record<string, number | undefined> = { loss: got.loss, l_text_loss: got.left, image_loss: got.image, r_text_loss: got.right };
  let worst = 0;
  for (const [name, ref] of Object.entries(c.outputs!)) {
    const want = ((await ctx.tensor(c, ref)).data as Float32Array)[0];
    const have = names[name];
    if (have === undefined) return { status: 'FAIL', info: `${name} not computed` };
    worst = Math.max(worst, Math.abs(have - want) / Math.max(1, Math.abs(want)));
  }
  return judge(worst, FLOAT_TOL, 'max rel');
};

const incremental: CaseHandler = async (c, ctx) => {
  const { cfg, model } = await goldenRudolph(ctx, c.model!);
  const idsT = await ctx.tensor(c, c.inputs!.final_input_ids);
  const [B, T] = idsT.shape;
  const all = ids32(idsT);
  const lengths = c.inputs!.call_lengths as number[];
  const ref = (await ctx.tensor(c, c.outputs!.last_logits)).data as Float32Array;
  const cache = model.newCache(B);
  const W = cfg.logitsWidth;
  let prev = 0, worst = 0;
  for (let call = 0; call < lengths.length; call++) {
    const chunk: number[] = [];
    for (let b = 0; b < B; b++) chunk.push(...all.slice(b * T + prev, b * T + lengths[call]));
    const out = await model.step(cache, chunk);
    worst = Math.max(worst, maxAbsDiff(out.logits!, ref.subarray(call * B * W, (call + 1) * B * W)));
    prev = lengths[call];
  }
  return judge(worst, FLOAT_TOL);
};

export const modelCaseHandlers: Record<string, CaseHandler> = { masks, forward, loss, incremental };
