/**
 * rudolph eval classify|qa|caption: the published numbers, reproducible — accuracy / macro F1 /
 * per-class precision and recall / confusion matrix (table and heat map) of zero-shot
 * classification, exact match and F1 of generated answers, perplexity of reference captions.
 * Results are appended per batch to <out>/results.jsonl: an interrupted run (Ctrl-C, a crash)
 * continues when the same command runs again.
 */
import { promises as fsp } from 'node:fs';
import { Command } from 'commander';
import { AbortError, InputError } from '../../errors.js';
import { evalCaptions } from '../../eval/caption.js';
import { evalClassify, evalFiles, OFFICIAL_CLASSIFY_TEMPLATE } from '../../eval/classify.js';
import { readCaptionData, readClassificationData, readQaData } from '../../eval/datasets.js';
import { confusionHeatmap } from '../../eval/heatmap.js';
import { formatReport } from '../../eval/metrics.js';
import { evalQa, QA_SAMPLING } from '../../eval/qa.js';
import type { EvalProgress } from '../../eval/runner.js';
import type { Rudolph } from '../../rudolph.js';
import { writePng } from '../../runtime/node/image-files.js';
import { addModelSourceOptions, addOutputOptions, addRuntimeOptions, float, int, loadModel, type ModelCliOptions } from '../common.js';
import { formatDuration } from '../hub-format.js';
import { EXIT, printJson, ProgressDisplay } from '../output.js';

interface EvalCliOptions extends ModelCliOptions { data: string; out?: string; limit?: number; restart?: boolean }

function common(cmd: Command, kind: string): Command {
  cmd
    .requiredOption('--data <path>', 'the data set (see the command\'s description)')
    .option('--limit <n>', 'only the first N items', int('--limit', 1))
    .option('--out <dir>', `folder for results.jsonl (resumable), report.json${kind === 'classify' ? ', confusion.png' : ''} (default: eval-${kind})`)
    .option('--restart', 'discard the results of an earlier run in --out instead of continuing it');
  return addOutputOptions(addRuntimeOptions(addModelSourceOptions(cmd)));
}

/** Loads the model, runs one evaluation with progress (ETA) on stderr, Ctrl-C stopping it between batches. */
async function withEval<R>(o: EvalCliOptions, kind: string, run: (r: Rudolph, out: string, ctl: { signal: AbortSignal; onProgress: (p: EvalProgress) => void; batch?: number }) => Promise<R>): Promise<R | undefined> {
  const out = o.out ?? `eval-${kind}`;
  try {
    await fsp.mkdir(out, { recursive: true });
  } catch (e) {
    throw new InputError(`--out ${out}: cannot create the folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const display = new ProgressDisplay(o.quiet || false);
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  let last: EvalProgress | undefined;
  const onProgress = (p: EvalProgress) => {
    last = p;
    const rate = p.itemsPerSecond ? `${p.itemsPerSecond.toFixed(2)} items/s · ETA ${formatDuration(p.etaSeconds ?? NaN)}` : '';
    display.update(`eval ${kind}`, p.done, p.total, [p.resumed ? `${p.resumed} resumed` : '', rate].filter(Boolean).join(' · '));
  };
  try {
    const r = await loadModel(o, display, controller.signal);
    try {
      return await run(r, out, { signal: controller.signal, onProgress, batch: o.batchSize });
    } finally {
      await r.release();
    }
  } catch (e) {
    if (e instanceof AbortError && last) {
      display.stop();
      process.stderr.write(`rudolph: interrupted after ${last.done} of ${last.total} items; the same command continues from there (${evalFiles(out).results})\n`);
      process.exitCode = EXIT.aborted;
      return undefined;
    }
    throw e;
  } finally {
    display.stop();
    process.off('SIGINT', onSigint);
  }
}

async function writeReport(out: string, report: object): Promise<void> {
  await fsp.writeFile(evalFiles(out).report, `${JSON.stringify(report, null, 1)}\n`);
}

const f3 = (x: number) => x.toFixed(3);

function classifyCommand(): Command {
  const cmd = new Command('classify')
    .description('zero-shot classification of a labelled image set: <data>/<class>/*.png|jpg|jpeg|webp, or CIFAR-10 binary (test_batch.bin + batches.meta.txt, Russian class names built in)')
    .option('--template <text>', 'right text per class, {} is the class name', OFFICIAL_CLASSIFY_TEMPLATE)
    .option('--left-template <text>', 'left text per class, {} is the class name', '')
    .option('--classes <a,b,...>', 'class names for the template, in the data\'s order (folder names sorted, or batches.meta.txt\'s)', (v) => v.split(',').map((x) => x.trim()).filter(Boolean));
  return common(cmd, 'classify')
    .addHelpText('after', `
Примеры:
  $ rudolph eval classify --data cifar-10-batches-bin --limit 1001          # официальные 0.61 / 0.57 (350M)
  $ rudolph eval classify --data ./фото --template "на фотографии {}" --json`)
    .action(async (o: EvalCliOptions & { template: string; leftTemplate: string; classes?: string[] }) => {
      const data = await readClassificationData(o.data, { classes: o.classes });
      const report = await withEval(o, 'classify', async (r, out, ctl) => {
        const rep = await evalClassify(r, data, { ...ctl, template: o.template, leftTemplate: o.leftTemplate, limit: o.limit, resultsFile: evalFiles(out).results, restart: o.restart });
        await writeReport(out, rep);
        await writePng(evalFiles(out).confusion, confusionHeatmap(rep.confusion));
        return rep;
      });
      if (!report) return;
      if (o.json) return printJson(report);
      console.log(formatReport(report, report.classes));
      console.log(`\naccuracy ${f3(report.accuracy)} · macro F1 ${f3(report.macro.f1)} · ${report.count} images (${data.layout})`);
      const files = evalFiles(o.out ?? 'eval-classify');
      console.log(`results: ${files.results} · report: ${files.report} · heat map: ${files.confusion}`);
      for (const t of report.truncated) process.stderr.write(`rudolph: warning: "${t}" was cut to fit the right text\n`);
    });
}

function qaCommand(): Command {
  const cmd = new Command('qa')
    .description('question answering on SQuAD-layout JSON (sberquad): answers generated with the official QA template, exact match and F1 as the official f1_score.py')
    .option('--seed <n>', 'sampling seed (question i uses stream i)', int('--seed'), 0)
    .option('--top-k <n>', 'sampling top-k', int('--top-k'), QA_SAMPLING.topK)
    .option('--top-p <p>', 'sampling top-p', float('--top-p', { exclusiveMin: 0, max: 1 }), QA_SAMPLING.topP)
    .option('--temperature <t>', 'sampling temperature', float('--temperature', { exclusiveMin: 0 }), QA_SAMPLING.temperature)
    .option('--all-answers', 'score against the best of every gold answer (SQuAD) instead of the first (the official notebook)');
  return common(cmd, 'qa')
    .addHelpText('after', `
Примеры:
  $ rudolph eval qa --data sberquad-validation.json --model 2.7B        # официальные F1 0.432 (2.7B FBC2)
  $ rudolph eval qa --data sberquad.jsonl --limit 200 --json`)
    .action(async (o: EvalCliOptions & { seed: number; topK: number; topP: number; temperature: number; allAnswers?: boolean }) => {
      const data = await readQaData(o.data);
      const report = await withEval(o, 'qa', async (r, out, ctl) => {
        const rep = await evalQa(r, data, {
          ...ctl, seed: o.seed, sampling: { topK: o.topK, topP: o.topP, temperature: o.temperature }, allAnswers: o.allAnswers,
          limit: o.limit, resultsFile: evalFiles(out).results, restart: o.restart,
        });
        await writeReport(out, rep);
        return rep;
      });
      if (!report) return;
      if (o.json) return printJson(report);
      console.log(`F1 ${f3(report.f1)} · exact match ${f3(report.exactMatch)} · ${report.count} questions (seed ${report.seed})`);
      console.log(`answers: ${evalFiles(o.out ?? 'eval-qa').results}`);
      if (report.truncated) process.stderr.write(`rudolph: warning: ${report.truncated} of ${report.count} questions were cut with their context to fit the left text (lines marked "truncated" in the results)\n`);
    });
}

function captionCommand(): Command {
  const cmd = new Command('caption')
    .description('perplexity of reference captions given their images: <data>/captions.jsonl, {"image": "file", "caption": "text"} (or "captions": [...]) a line')
    .option('--template <text>', 'right text per caption, {} is the caption', '{}');
  return common(cmd, 'caption')
    .addHelpText('after', `
Примеры:
  $ rudolph eval caption --data ./подписи --model ./дообученная-модель
  $ rudolph eval caption --data ./подписи --template "на картинке {}" --json`)
    .action(async (o: EvalCliOptions & { template: string }) => {
      const data = await readCaptionData(o.data);
      const report = await withEval(o, 'caption', async (r, out, ctl) => {
        const rep = await evalCaptions(r, data, { ...ctl, template: o.template, limit: o.limit, resultsFile: evalFiles(out).results, restart: o.restart });
        await writeReport(out, rep);
        return rep;
      });
      if (!report) return;
      if (o.json) return printJson(report);
      console.log(`mean perplexity ${report.meanPpl.toFixed(3)} (median ${report.medianPpl.toFixed(3)}, ${report.captions} captions of ${report.images} images)`);
      if (report.truncated) process.stderr.write(`rudolph: warning: ${report.truncated} caption(s) were cut to fit the right text\n`);
    });
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate a model on a data set: classify (accuracy, F1, confusion matrix), qa (EM, F1), caption (perplexity); resumable')
    .addCommand(classifyCommand())
    .addCommand(qaCommand())
    .addCommand(captionCommand());
}
