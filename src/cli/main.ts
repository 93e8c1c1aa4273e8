#!/usr/bin/env node
/** The `rudolph` command line. */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import '../runtime/node/index.js';
import { evalCommand } from './commands/eval.js';
import { finetuneCommand } from './commands/finetune.js';
import { hubCommands } from './commands/hub.js';
import { mergeCommand } from './commands/merge.js';
import { serveCommand } from './commands/serve.js';
import { taskCommands } from './commands/tasks.js';
import { workerCommand } from './commands/worker.js';
import { errorMessage, EXIT, exitCodeOf } from './output.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command('rudolph')
    .description('RUDOLPH: русская модель текст ↔ изображение ↔ текст (Sber AI) on onnxruntime')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  for (const cmd of [...taskCommands(), ...hubCommands(), serveCommand(), workerCommand(), finetuneCommand(), mergeCommand(), evalCommand()]) {
    program.addCommand(cmd.exitOverride());
    for (const sub of cmd.commands) sub.exitOverride();
  }
  program.addHelpText('after', `
Примеры:
  $ rudolph dream "рыжий кот на подоконнике" -n 2 --out картинки
  $ rudolph caption фото.jpg
  $ rudolph classify фото.jpg --classes "кошка,собака"
  $ rudolph text "вопрос: что такое радуга? ответ:"
  $ rudolph upscale картинка.png --scale 4
  $ rudolph eval classify --data cifar-10-batches-bin --limit 1001
  $ rudolph serve --port 8080
  $ rudolph download 350M
Модель по умолчанию: 350M (shonenkov-AI/RuDOLPH-350M-v2), скачивается при первом запуске.`);
  return program;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit through here with code 0
      return e.exitCode === 0 ? EXIT.ok : EXIT.badInput;
    }
    process.stderr.write(`${errorMessage(e)}\n`);
    return exitCodeOf(e);
  }
}

process.exitCode = await main(process.argv);
