/** rudolph merge: LoRA adapters merged into a model, written as a model folder. */
import { Command } from 'commander';
import { InputError } from '../../errors.js';
import { mergeAdapters } from '../../train/merge.js';
import { addModelSourceOptions, addOutputOptions, int, type ModelSourceCliOptions, type OutputCliOptions } from '../common.js';
import { printJson } from '../output.js';

export function mergeCommand(): Command {
  const cmd = new Command('merge')
    .description('merge LoRA adapters (PEFT format) into a model and write the merged model folder (safetensors + pytorch_model.bin)')
    .requiredOption('--out <dir>', 'folder to write: config.json, model.safetensors, pytorch_model.bin, bpe.model')
    .option('--no-torch', 'skip pytorch_model.bin')
    .option('--threads <n>', 'onnxruntime threads', int('--threads', 1));
  return addOutputOptions(addModelSourceOptions(cmd))
    .addHelpText('after', `
Примеры:
  $ rudolph merge --model 350M --adapter прогон2/adapter --out моя-модель
  $ rudolph caption фото.jpg --model моя-модель`)
    .action(async (o: ModelSourceCliOptions & OutputCliOptions & { out: string; torch: boolean; threads?: number }) => {
      if (!o.adapter?.length) throw new InputError('merge: give the adapter(s) with --adapter DIR|repo');
      const res = await mergeAdapters({
        model: o.model, adapters: o.adapter, out: o.out, torch: o.torch, threads: o.threads,
        tokenizer: o.tokenizer, cacheDir: o.cacheDir, offline: o.offline, revision: o.revision, token: o.token,
      });
      if (o.json) printJson(res);
      else console.log(`merged model: ${res.dir}`);
    });
}
