/**
 * Golden `grad_loss` cases: gradients of the official weighted loss and one AdamW step.
 *
 * What the generator did (established from the data, not stated in the manifest): the w=(1,7,1)
 * loss and gradients on the checkpoint weights; one AdamW step from those gradients
 * (`adamw_step1/*`); then the w=(2,0,1) loss and gradients on the UPDATED weights. The case
 * replays exactly that sequence with one Trainer per weighting over the same parameters.
 */
import path from 'node:path';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadRudolphDir } from '../../src/model/load.js';
import type { LossWeights } from '../../src/model/loss.js';
import { Trainer } from '../../src/train/trainer.js';
import { FLOAT_TOL, isTensorRef, type CaseHandler } from './types.js';

/** |got - ref|max / max|ref|, with a floor for tensors that are (almost) all zeros. */
function relToMaxAbs(got: Float32Array, ref: Float32Array): number {
  if (got.length !== ref.length) return Infinity;
  let maxRef = 0, maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    const d = Math.abs(got[i] - ref[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
  }
  return maxDiff / Math.max(maxRef, 1e-6);
}

const gradLoss: CaseHandler = async (c, ctx) => {
  const idsRef = c.inputs?.input_ids;
  const weightings = c.inputs?.weights as number[][] | undefined;
  const file = (c.outputs as { file?: string } | undefined)?.file;
  if (!isTensorRef(idsRef) || !weightings || weightings.length !== 2 || !file) return { status: 'FAIL', info: 'case lacks input_ids, two weightings or the grads file' };
  const idsT = await ctx.tensor(c, idsRef);
  const [B] = idsT.shape;
  const ids = Array.from(idsT.data as ArrayLike<number>, Number);
  const { cfg, weights } = await loadRudolphDir(path.join(ctx.dir, c.model!));
  const ref = await SafetensorsFile.open(path.join(ctx.dir, file));
  const read = async (key: string) => (await ref.read(key)).data as Float32Array;
  const asWeights = ([left, image, right]: number[]): LossWeights => ({ left, image, right });
  const tag = (w: number[]) => `w${w.join('')}`;
  const common = { lr: 1e-3, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: 0.01, lossMode: 'official' as const, dropout: false, threads: 2 };
  const worst = { loss: 0, grad: 0, adamw: 0 };
  let worstName = '';
  const trainers: Trainer[] = [];
  try {
    const checkGradients = async (trainer: Trainer, w: number[]) => {
      const got = await trainer.accumulate({ ids, batch: B });
      const want = (await read(`${tag(w)}/loss`))[0];
      worst.loss = Math.max(worst.loss, Math.abs(got.loss - want) / Math.max(1, Math.abs(want)));
      for (const [name, g] of trainer.pendingGradients()!) {
        const e = relToMaxAbs(g, await read(`${tag(w)}/grad/${name}`));
        if (e > worst.grad) { worst.grad = e; worstName = `${tag(w)}/grad/${name}`; }
      }
    };
    const first = await Trainer.create(cfg, weights, { ...common, lossWeights: asWeights(weightings[0]) });
    trainers.push(first);
    await checkGradients(first, weightings[0]);
    first.apply();
    for (const name of first.trainable) {
      worst.adamw = Math.max(worst.adamw, relToMaxAbs(weights.get(name)!, await read(`adamw_step1/${name}`)));
    }
    const second = await Trainer.create(cfg, weights, { ...common, lossWeights: asWeights(weightings[1]) });
    trainers.push(second);
    await checkGradients(second, weightings[1]);
  } finally {
    for (const t of trainers) await t.release();
    await ref.close();
  }
  const ok = worst.loss <= FLOAT_TOL && worst.grad <= FLOAT_TOL && worst.adamw <= FLOAT_TOL;
  return {
    status: ok ? 'PASS' : 'FAIL',
    info: `loss rel ${worst.loss.toExponential(2)}, grads rel-to-max ${worst.grad.toExponential(2)} (${worstName}), adamw step rel-to-max ${worst.adamw.toExponential(2)} (tol ${FLOAT_TOL})`,
  };
};

export const gradCaseHandlers: Record<string, CaseHandler> = { grad_loss: gradLoss };
