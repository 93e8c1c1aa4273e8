/**
 * Golden cases of the task API (`api_*`) and of the sampling filter, run through the task
 * functions with the stand-in tokenizer the official harness used (text = space-separated ids).
 */
import { filterTopKTopP } from '../../src/generation/sampling.js';
import type { RgbImage } from '../../src/image/index.js';
import { makeConfig, type SpecialTokens } from '../../src/model/config.js';
import { RudolphModel } from '../../src/model/rudolph-model.js';
import { generateCaptions } from '../../src/tasks/caption.js';
import { classify } from '../../src/tasks/classify.js';
import type { TaskContext } from '../../src/tasks/context.js';
import { generateText } from '../../src/tasks/generate-text.js';
import { generateImageTokens } from '../../src/tasks/image-tokens.js';
import { rankImages, rankTexts } from '../../src/tasks/rank.js';
import { ceToPpl, rerankScores } from '../../src/tasks/scoring.js';
import { IdListTokenizer } from '../../src/tokenizer/text-encoding.js';
import type { Vqgan } from '../../src/vqgan/index.js';
import { goldenRudolph } from './model-cases.js';
import { goldenVqgan } from './vqgan-cases.js';
import { type CaseHandler, type CaseResult, countMismatches, FLOAT_TOL, type GoldenCase, type GoldenContext, judge, maxAbsDiff } from './types.js';

const contexts = new Map<string, Promise<TaskContext>>();

/** The model with the case's spc_tokens, the stand-in tokenizer and the paired VQGAN. */
function taskContext(ctx: GoldenContext, name: string): Promise<TaskContext> {
  let hit = contexts.get(name);
  if (!hit) {
    hit = (async () => {
      const entry = ctx.manifest.models[name];
      const base = await goldenRudolph(ctx, name);
      const cfg = makeConfig(base.cfg.params, entry.spc_tokens as Partial<SpecialTokens> | undefined);
      const model = await RudolphModel.fromWeights(cfg, base.weights, ctx.session);
      const vqgan = entry.paired_vqgan ? await goldenVqgan(ctx, entry.paired_vqgan) : undefined;
      return { model, cfg, tokenizer: new IdListTokenizer(cfg.textVocab), vqgan, batchSize: 2 };
    })();
    contexts.set(name, hit);
  }
  return hit;
}

async function goldenImage(c: GoldenCase, ctx: GoldenContext): Promise<RgbImage> {
  const t = await ctx.tensor(c, c.inputs!.image_u8_hwc);
  const [height, width] = t.shape;
  return { width, height, data: t.data as Uint8Array };
}

async function floats(c: GoldenCase, ctx: GoldenContext, key: string): Promise<Float32Array> {
  return (await ctx.tensor(c, c.outputs![key])).data as Float32Array;
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return Infinity;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : e;
  }
  return m;
}

/**
 * Perplexities within 1e-4 relative; the score formula checked on the golden perplexities
 * (scores divide by quantile − min, which can be tiny, so perplexity rounding of 1e-7 may move a
 * score by 1e-3: comparing our scores directly would test the conditioning, not the code); and
 * the ranking by our scores must equal the golden ranking.
 */
async function compareRank(c: GoldenCase, ctx: GoldenContext, got: { pplText: number[]; pplImage: number[]; scores: number[] }, textWeight: number): Promise<CaseResult> {
  const pplTxt = await floats(c, ctx, 'ppl_txt'), pplImg = await floats(c, ctx, 'ppl_img'), scores = await floats(c, ctx, 'scores');
  const pplErr = Math.max(relErr(got.pplText, pplTxt), relErr(got.pplImage, pplImg));
  const formulaErr = relErr(rerankScores(pplTxt, pplImg, textWeight), scores);
  const order = (v: ArrayLike<number>) => Array.from(v, (_, i) => i).sort((a, b) => v[a] - v[b]).join();
  if (order(got.scores) !== order(scores)) return { status: 'FAIL', info: `ranking ${order(got.scores)} != ${order(scores)}` };
  const r = judge(Math.max(pplErr, formulaErr), FLOAT_TOL, 'ppl/score-formula max rel');
  r.info += `; ranking identical; direct score max rel ${relErr(got.scores, scores).toExponential(2)}`;
  return r;
}

const handlers: Record<string, CaseHandler> = {
  async api_ce_to_ppl(c, ctx) {
    const ce = await ctx.tensor(c, c.inputs!.ce);
    return judge(relErr(ceToPpl(ce.data as Float32Array, ce.shape[0]), await floats(c, ctx, 'ppl')), FLOAT_TOL, 'max rel');
  },

  async api_self_reranking_by_text(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const codes = await ctx.tensor(c, c.inputs!.codebooks);
    const m = codes.shape[1];
    const images = Array.from({ length: codes.shape[0] }, (_, i) => ({ ids: (codes.data as Int32Array).subarray(i * m, (i + 1) * m) }));
    return compareRank(c, ctx, await rankImages(tc, { text: c.inputs!.text as string, images }), 0.95);
  },

  async api_self_reranking_by_image(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const image = await goldenImage(c, ctx);
    const code = (await ctx.tensor(c, c.inputs!.image_codebook)).data as Int32Array;
    const encoded = await tc.vqgan!.encode([image]);
    if (countMismatches(encoded, code) !== 0) return { status: 'FAIL', info: 'VQGAN codebook of the image differs' };
    return compareRank(c, ctx, await rankTexts(tc, { image, texts: c.inputs!.texts as string[] }), 0.05);
  },

  async api_zs_clf(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const got = await classify(tc, { image: await goldenImage(c, ctx), classes: c.inputs!.classes as string[] });
    if (got.label !== c.outputs!.label) return { status: 'FAIL', info: `label ${got.label} != ${String(c.outputs!.label)}` };
    return judge(maxAbsDiff(got.scores, await floats(c, ctx, 'scores')), FLOAT_TOL);
  },

  async api_generate_codebooks_greedy(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const got = await generateImageTokens(tc, { text: c.inputs!.text as string, count: 2, topK: 1, topP: 0.99, temperature: 1, seed: 0 });
    const want = (await ctx.tensor(c, c.outputs!.codebooks)).data as Int32Array;
    const ids = new Int32Array(want.length);
    got.codebooks.forEach((cb, i) => ids.set(cb, i * cb.length));
    const bad = countMismatches(ids, want);
    if (bad) return { status: 'FAIL', info: `${bad} codebook ids differ` };
    const images = await (tc.vqgan as Vqgan).decode(ids, got.codebooks.length);
    return judge(maxAbsDiff(images.data, await floats(c, ctx, 'images')), FLOAT_TOL, 'ids exact, images max abs');
  },

  async api_generate_codebooks_image_prompts(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const prompt = (await ctx.tensor(c, c.inputs!.image_prompts)).data as Int32Array;
    const encoded = await tc.vqgan!.encode([await goldenImage(c, ctx)]);
    if (countMismatches(encoded, prompt) !== 0) return { status: 'FAIL', info: 'VQGAN codebook of the prompt image differs' };
    const got = await generateImageTokens(tc, {
      text: c.inputs!.text as string, count: 2, topK: 1, topP: 0.99, temperature: 1, seed: 0,
      imagePrompt: { ids: prompt, cells: c.inputs!.image_prompts_idx as number[] },
    });
    const want = (await ctx.tensor(c, c.outputs!.codebooks)).data as Int32Array;
    const ids = new Int32Array(want.length);
    got.codebooks.forEach((cb, i) => ids.set(cb, i * cb.length));
    const bad = countMismatches(ids, want);
    return { status: bad ? 'FAIL' : 'PASS', info: `${bad} codebook ids differ` };
  },

  async api_generate_captions_greedy(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const got = await generateCaptions(tc, { image: await goldenImage(c, ctx), template: c.inputs!.r_template as string, generations: 2, topK: 1, topP: 0.8, temperature: 0.9, seed: 0 });
    const want = { texts: c.outputs!.texts, counts: c.outputs!.counts };
    const same = JSON.stringify({ texts: got.texts, counts: got.counts }) === JSON.stringify(want);
    return { status: same ? 'PASS' : 'FAIL', info: same ? 'texts and counts identical' : `got ${JSON.stringify(got.texts)} ${JSON.stringify(got.counts)}` };
  },

  async api_generate_texts_greedy(c, ctx) {
    const tc = await taskContext(ctx, c.model!);
    const got = await generateText(tc, { template: c.inputs!.template as string, count: 2, topK: 1, topP: 0.8, temperature: 0.9, seed: 0, officialRange: true });
    const want = c.outputs!.result as { text: string; ppl_txt: number; count: number }[];
    if (got.texts.length !== want.length) return { status: 'FAIL', info: `${got.texts.length} texts, expected ${want.length}` };
    let err = 0;
    for (let i = 0; i < want.length; i++) {
      if (got.texts[i].text !== want[i].text || got.texts[i].count !== want[i].count) return { status: 'FAIL', info: `text ${i}: ${JSON.stringify(got.texts[i])}` };
      // the official result is rounded to 2 decimals
      err = Math.max(err, Math.abs(Math.round(got.texts[i].ppl * 100) / 100 - want[i].ppl_txt));
    }
    return judge(err, 0.0101, 'texts identical, ppl (2 decimals) abs');
  },
};

const sampling_filter: CaseHandler = async (c, ctx) => {
  const logits = await ctx.tensor(c, c.inputs!.logits);
  const [rows, n] = logits.shape;
  let worst = 0;
  for (const key of Object.keys(c.outputs!)) {
    const m = /^k(\d+)_p(\d)(\d*)$/.exec(key);
    if (!m) return { status: 'FAIL', info: `cannot read top-k/top-p from output key ${key}` };
    const topK = Number(m[1]), topP = Number(`${m[2]}.${m[3] || '0'}`);
    const want = await floats(c, ctx, key);
    for (let r = 0; r < rows; r++) {
      const row = filterTopKTopP(Float32Array.from((logits.data as Float32Array).subarray(r * n, (r + 1) * n)), topK, topP);
      const ref = want.subarray(r * n, (r + 1) * n);
      for (let i = 0; i < n; i++) {
        const a = row[i], b = ref[i];
        if (a === -Infinity || b === -Infinity) { if (a !== b) return { status: 'FAIL', info: `${key} row ${r}: entry ${i} kept/removed differently` }; continue; }
        worst = Math.max(worst, Math.abs(a - b));
      }
    }
  }
  return judge(worst, FLOAT_TOL);
};

export const apiCaseHandlers: Record<string, CaseHandler> = {
  api: (c, ctx) => {
    const h = handlers[c.id];
    return h ? h(c, ctx) : Promise.resolve<CaseResult>({ status: 'FAIL', info: `unknown api case ${c.id}: the suite has no handler for it` });
  },
  sampling_filter,
};
