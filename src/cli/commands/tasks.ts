/** The task commands: dream, caption, classify, text, rank-images, rank-texts. */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { readImage, writePng } from '../../runtime/node/image-files.js';
import type { Rudolph } from '../../rudolph.js';
import { addModelOptions, addSamplingOptions, float, int, loadModel, sampling, taskProgress, type ModelCliOptions, type SamplingCliOptions } from '../common.js';
import { printJson, ProgressDisplay } from '../output.js';

type Opts = ModelCliOptions & SamplingCliOptions;

/** Loads the model, runs `fn`, releases the model; Ctrl-C aborts the task. */
async function withModel<T>(o: Opts, fn: (r: Rudolph, display: ProgressDisplay, signal: AbortSignal) => Promise<T>): Promise<T> {
  const display = new ProgressDisplay(o.quiet || false);
  const controller = new AbortController();
  const onSigint = () => controller.abort(new Error('interrupted (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  const r = await loadModel(o, display, controller.signal);
  try {
    return await fn(r, display, controller.signal);
  } finally {
    display.stop();
    process.off('SIGINT', onSigint);
    await r.release();
  }
}

/** Creates (or checks) the output folder before any model work, so a bad --out fails at once. */
async function outputFolder(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new InputError(`--out ${dir}: cannot create the output folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

function task(name: string, description: string, examples: string): Command {
  const cmd = new Command(name).description(description);
  addSamplingOptions(addModelOptions(cmd));
  cmd.addHelpText('after', `\nПримеры:\n${examples}`);
  return cmd;
}

export function taskCommands(): Command[] {
  const dream = task('dream', 'text → images: generate candidates, rerank them by the text, save the best as PNG',
    '  $ rudolph dream "красивый закат над морем" -n 2 --candidates 8 --out картинки\n  $ rudolph dream "кошка в шляпе" --seed 42 --json')
    .argument('<text>', 'what the image shows')
    .option('-n, --images <n>', 'images to save', int('--images', 1), 1)
    .option('--candidates <n>', 'candidates to generate and rerank', int('--candidates', 1), 8)
    .option('--out <dir>', 'folder for the PNG files', '.')
    .option('--guidance <w>', 'classifier-free guidance weight (official 0.2); off when absent', float('--guidance'))
    .action(async (text: string, o: Opts & { images: number; candidates: number; out: string; guidance?: number }) => {
      await outputFolder(o.out);
      await withModel(o, async (r, display, signal) => {
        const res = await r.dream({
          text, images: o.images, candidates: o.candidates, ...sampling(o), signal, onProgress: taskProgress(display),
          ...(o.guidance !== undefined ? { guidance: { weight: o.guidance } } : {}),
        });
        const files: string[] = [];
        for (const [i, img] of res.images.entries()) {
          const file = path.join(o.out, `dream-${res.seed}-${i}.png`);
          await writePng(file, img.image);
          files.push(file);
        }
        display.stop();
        if (o.json) printJson({ seed: res.seed, images: res.images.map((img, i) => ({ file: files[i], score: img.score, pplText: img.pplText, pplImage: img.pplImage, candidate: img.candidate })) });
        else res.images.forEach((img, i) => console.log(`${files[i]}\tscore ${img.score.toFixed(4)}\tppl_txt ${img.pplText.toFixed(2)}\tppl_img ${img.pplImage.toFixed(2)}`));
      });
    });

  const caption = task('caption', 'image → captions reranked by the image',
    '  $ rudolph caption фото.jpg\n  $ rudolph caption фото.jpg --template "на фотографии" --generations 24 --json')
    .argument('<image>', 'PNG/JPEG/WebP file')
    .option('--template <text>', 'the text every caption continues', 'на картинке')
    .option('-n, --count <n>', 'captions to print', int('--count', 1), 5)
    .option('--generations <n>', 'captions to sample before reranking', int('--generations', 1), 48)
    .action(async (file: string, o: Opts & { template: string; count: number; generations: number }) => {
      const image = await readImage(file);
      await withModel(o, async (r, display, signal) => {
        const res = await r.caption({ image, template: o.template, count: o.count, generations: o.generations, ...sampling(o), signal, onProgress: taskProgress(display) });
        display.stop();
        if (o.json) printJson(res);
        else for (const c of res.captions) console.log(`${c.text}\tscore ${c.score.toFixed(4)}\tcount ${c.count}`);
      });
    });

  const classify = task('classify', 'zero-shot image classification by perplexity',
    '  $ rudolph classify фото.jpg --classes "кошка,собака,птица"\n  $ rudolph classify фото.jpg --classes "кошка,собака" --template "на картинке изображено: {}"')
    .argument('<image>', 'PNG/JPEG/WebP file')
    .requiredOption('--classes <list>', 'comma-separated class names')
    .option('--template <text>', 'right text per class, {} = the class', '{}')
    .action(async (file: string, o: Opts & { classes: string; template: string }) => {
      const classes = o.classes.split(',').map((c) => c.trim()).filter(Boolean);
      if (classes.length === 0) throw new InputError('--classes: give at least one class name');
      const image = await readImage(file);
      await withModel(o, async (r, display, signal) => {
        const res = await r.classify({ image, classes, template: o.template, signal, onProgress: taskProgress(display) });
        display.stop();
        if (o.json) printJson(res);
        else {
          console.log(res.class);
          classes.forEach((c, i) => console.log(`  ${c}\t${res.scores[i].toFixed(4)}`));
        }
      });
    });

  const text = task('text', 'text → text: continue a template, rank the results by perplexity',
    '  $ rudolph text "вопрос: что такое море? ответ:"\n  $ rudolph text "погода сегодня" --allowed "12,57,301" --count 8 --json')
    .argument('<template>', 'the beginning of the text')
    .option('-n, --count <n>', 'continuations to sample', int('--count', 1), 16)
    .option('--allowed <ids>', 'comma-separated token ids to sample from')
    .option('--early-stop <n>', 'max tokens incl. the template', int('--early-stop', 1))
    .action(async (template: string, o: Opts & { count: number; allowed?: string; earlyStop?: number }) => {
      if (template.trim() === '') throw new InputError('text: the template is empty');
      const allowedTokens = o.allowed?.split(',').map((v) => int('--allowed')(v.trim()));
      await withModel(o, async (r, display, signal) => {
        const res = await r.generateText({ template, count: o.count, allowedTokens, earlyStop: o.earlyStop, ...sampling(o), signal, onProgress: taskProgress(display) });
        display.stop();
        if (o.json) printJson(res);
        else for (const t of res.texts) console.log(`${t.text}\tppl ${t.ppl.toFixed(2)}\tcount ${t.count}`);
      });
    });

  const rankImages = task('rank-images', 'rank images for a text (lower score = better)',
    '  $ rudolph rank-images "рыжая кошка" a.png b.png c.png')
    .argument('<text>', 'the text')
    .argument('<images...>', 'image files')
    .action(async (textArg: string, files: string[], o: Opts) => {
      const images = await Promise.all(files.map((f) => readImage(f)));
      await withModel(o, async (r, display, signal) => {
        const res = await r.rankImages({ text: textArg, images, signal, onProgress: taskProgress(display) });
        display.stop();
        if (o.json) printJson({ ...res, files });
        else for (const i of res.order) console.log(`${files[i]}\tscore ${res.scores[i].toFixed(4)}\tppl_txt ${res.pplText[i].toFixed(2)}\tppl_img ${res.pplImage[i].toFixed(2)}`);
      });
    });

  const rankTexts = task('rank-texts', 'rank texts for an image (lower score = better)',
    '  $ rudolph rank-texts фото.jpg "кошка на диване" "собака в парке"')
    .argument('<image>', 'image file')
    .argument('<texts...>', 'candidate texts')
    .action(async (file: string, texts: string[], o: Opts) => {
      const image = await readImage(file);
      await withModel(o, async (r, display, signal) => {
        const res = await r.rankTexts({ image, texts, signal, onProgress: taskProgress(display) });
        display.stop();
        if (o.json) printJson({ ...res, texts });
        else for (const i of res.order) console.log(`${texts[i]}\tscore ${res.scores[i].toFixed(4)}`);
      });
    });

  return [dream, caption, classify, text, rankImages, rankTexts];
}
