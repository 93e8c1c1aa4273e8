/** rudolph finetune: fine-tuning from a JSONL manifest, with checkpoints, resume and export. */
import { Command, Option } from 'commander';
import { InputError } from '../../errors.js';
import { DEFAULT_LORA_TARGETS, LORA_DEFAULTS, type LoraOptions } from '../../model/lora.js';
import { finetune } from '../../train/run.js';
import { addModelSourceOptions, addOutputOptions, float, int } from '../common.js';
import { formatDuration } from '../hub-format.js';
import { EXIT, printJson, ProgressDisplay } from '../output.js';

interface FinetuneCliOptions {
  data: string; val?: string; model: string; vqgan?: string; tokenizer?: string; cacheDir?: string; out: string;
  epochs?: number; steps?: number; batchSize: number; gradAccum: number; lr: number; weightDecay: number; clip?: number;
  lossWeights: string; freeze?: string[]; trainOnly?: string[]; schedule: 'constant' | 'linear' | 'cosine'; warmup: number;
  seed: number; resume?: boolean; overwrite?: boolean; strictLength?: boolean; checkpointEvery: number; dropout: boolean; skipBadLines?: boolean; threads?: number; offline?: boolean;
  revision?: string; token?: string; adapter?: string[];
  lora?: boolean; loraRank?: number; loraAlpha?: number; loraDropout?: number; loraTargets?: string[]; merge?: boolean; activationMemory?: number;
  json?: boolean; quiet?: boolean;
}

function loraOptions(o: FinetuneCliOptions): LoraOptions | undefined {
  const given = (['loraRank', 'loraAlpha', 'loraDropout', 'loraTargets', 'merge'] as const).filter((k) => o[k] !== undefined);
  if (!o.lora) {
    if (given.length) throw new InputError(`--${given[0].replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --lora`);
    return undefined;
  }
  return { rank: o.loraRank, alpha: o.loraAlpha, dropout: o.loraDropout, targets: o.loraTargets };
}

function lossWeights(v: string): { left: number; image: number; right: number } {
  const parts = v.split(',').map((x) => Number(x.trim()));
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x) || x < 0) || parts.every((x) => x === 0)) {
    throw new InputError(`--loss-weights must be three non-negative numbers "left,image,right" (not all 0), got "${v}"`);
  }
  return { left: parts[0], image: parts[1], right: parts[2] };
}

export function finetuneCommand(): Command {
  const cmd = new Command('finetune')
    .description('fine-tune a model on a JSONL manifest ({"image": "path", "left": "text", "right": "text"} per line)')
    .requiredOption('--data <file>', 'training manifest (JSONL)')
    .option('--val <file>', 'validation manifest (JSONL): its loss is logged')
    .requiredOption('--out <dir>', 'run folder: loss.jsonl, checkpoint/, model/ (the export)')
    .option('--epochs <n>', 'epochs (default 1 unless --steps)', int('--epochs', 1))
    .option('--steps <n>', 'optimizer steps', int('--steps', 1))
    .option('--batch-size <n>', 'samples per micro-batch', int('--batch-size', 1), 1)
    .option('--grad-accum <n>', 'micro-batches per optimizer step', int('--grad-accum', 1), 1)
    .option('--lr <lr>', 'learning rate', float('--lr', { exclusiveMin: 0 }), 1e-4)
    .option('--weight-decay <wd>', 'AdamW weight decay', float('--weight-decay', { min: 0 }), 0.01)
    .option('--clip <norm>', 'clip the global gradient norm', float('--clip', { exclusiveMin: 0 }))
    .option('--loss-weights <lt,img,rt>', 'loss weights of left text, image, right text', '1,7,1')
    .option('--freeze <pattern...>', 'freeze parameters matching these patterns (e.g. "*embeddings*")')
    .option('--train-only <pattern...>', 'train only parameters matching these patterns (e.g. "transformer.layers.2[0-3].*")')
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(['constant', 'linear', 'cosine']).default('constant'))
    .option('--warmup <steps>', 'warm-up steps', int('--warmup'), 0)
    .option('--seed <n>', 'seed of data order and dropout', int('--seed'), 0)
    .option('--no-dropout', 'train without dropout')
    .option('--checkpoint-every <steps>', 'steps between checkpoints', int('--checkpoint-every', 1), 50)
    .option('--resume', 'continue from <out>/checkpoint exactly as if never stopped')
    .option('--overwrite', 'start afresh in an --out that holds an earlier run (removes its checkpoint, model and log)')
    .option('--strict-length', 'refuse samples whose text is longer than its segment (default: cut them, counted in a warning)')
    .option('--skip-bad-lines', 'skip bad manifest lines (reported) instead of stopping')
    .option('--lora', 'train LoRA adapters over the frozen model (written to <out>/adapter in the PEFT format) instead of its weights')
    .option('--lora-rank <r>', `LoRA rank (default ${LORA_DEFAULTS.rank})`, int('--lora-rank', 1))
    .option('--lora-alpha <α>', `LoRA alpha: the update is scaled by α/r (default ${LORA_DEFAULTS.alpha})`, float('--lora-alpha', { exclusiveMin: 0 }))
    .option('--lora-dropout <p>', `dropout on the adapters' input (default ${LORA_DEFAULTS.dropout})`, float('--lora-dropout', { min: 0, max: 0.99 }))
    .option('--lora-targets <name...>', `adapted layers: names (${DEFAULT_LORA_TARGETS.join(', ')}, dense_h_to_4h, dense_4h_to_h, all-linear) or patterns (default ${DEFAULT_LORA_TARGETS.join(' ')})`)
    .option('--merge', 'with --lora: also write the merged model to <out>/model')
    .option('--activation-memory <GiB>', 'activations kept per micro-batch (default 1.5): more is faster, less fits bigger models', float('--activation-memory', { min: 0 }))
    .option('--threads <n>', 'onnxruntime threads', int('--threads', 1));
  return addOutputOptions(addModelSourceOptions(cmd))
    .addHelpText('after', `
Примеры:
  $ rudolph finetune --data подписи.jsonl --model 350M --out прогон1 --epochs 3 --lr 2e-5 --batch-size 2 --clip 1 --loss-weights 0.01,1,7
  $ rudolph finetune --data train.jsonl --val val.jsonl --model ./модель --out прогон1 --steps 500 --train-only "transformer.layers.2[0-3].*"
  $ rudolph finetune --data train.jsonl --model ./модель --out прогон1 --steps 500 --resume
  $ rudolph finetune --data подписи.jsonl --model 350M --out прогон2 --lora --lora-rank 8 --lr 1e-3 --epochs 3
  $ rudolph finetune --data подписи.jsonl --model 1.3B --out прогон3 --lora --lora-targets all-linear --merge
Строка манифеста: {"image": "картинки/1.jpg", "right": "на картинке кошка"} (пути относительно манифеста).`)
    .action(async (o: FinetuneCliOptions) => {
      const display = new ProgressDisplay(o.quiet || false);
      const controller = new AbortController();
      // SIGTERM (docker stop, systemd, Kubernetes) as Ctrl-C: the step ends, a checkpoint is saved
      let stoppedBy: NodeJS.Signals | null = null;
      const onSignal = (signal: NodeJS.Signals) => {
        if (stoppedBy) return;
        stoppedBy = signal;
        display.note(`${signal === 'SIGINT' ? 'Ctrl-C' : signal}: finishing the current step, saving a checkpoint…`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const res = await finetune({
          data: o.data, val: o.val, model: o.model, vqgan: o.vqgan, tokenizer: o.tokenizer, cacheDir: o.cacheDir, offline: o.offline, out: o.out,
          epochs: o.epochs, steps: o.steps, batchSize: o.batchSize, gradAccum: o.gradAccum, lr: o.lr, weightDecay: o.weightDecay, clip: o.clip,
          lossWeights: lossWeights(o.lossWeights), freeze: o.freeze, trainOnly: o.trainOnly, schedule: o.schedule, warmupSteps: o.warmup,
          seed: o.seed, dropout: o.dropout, resume: o.resume, overwrite: o.overwrite, truncate: !o.strictLength, checkpointEvery: o.checkpointEvery, onBadLine: o.skipBadLines ? 'skip' : 'reject',
          revision: o.revision, token: o.token, adapters: o.adapter, lora: loraOptions(o), merge: o.merge, activationMemory: o.activationMemory !== undefined ? o.activationMemory * 2 ** 30 : undefined,
          threads: o.threads, signal: controller.signal,
          onWarning: (m) => display.note(`warning: ${m}`),
          onProgress: (p) => display.update('finetune', p.step, p.totalSteps, `loss ${p.loss.toFixed(4)} · ${p.samplesPerSecond.toFixed(2)} samples/s · ETA ${formatDuration(p.etaSeconds)}`),
        });
        display.stop();
        if (res.interrupted) process.exitCode = stoppedBy === 'SIGTERM' ? EXIT.terminated : EXIT.aborted;
        if (o.json) printJson(res);
        else {
          console.log(`${res.interrupted ? 'interrupted at' : 'trained'} step ${res.steps}: loss ${res.firstLoss.toFixed(4)} → ${res.lastLoss.toFixed(4)}${res.valLoss !== undefined ? `, validation ${res.valLoss.toFixed(4)}` : ''}`);
          if (res.interrupted) console.log(`checkpoint saved in ${o.out}/checkpoint: continue with --resume`);
          if (res.adapter) console.log(`adapter: ${res.adapter} (use it with --adapter ${res.adapter})`);
          if (res.model) console.log(`model: ${res.model}`);
        }
      } finally {
        display.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
