/** rudolph serve: the HTTP service and web page. */
import { Command, Option } from 'commander';
import { startServer } from '../../server/serve.js';
import { int } from '../common.js';
import { PRECISION_HELP, PRECISIONS, type LinearPrecision } from '../../model/graph-context.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('HTTP API (JSON, OpenAPI at /openapi.json) and a web page at / for every task')
    .option('-m, --model <dir|preset|repo>', 'model folder, preset or hub repo id', '350M')
    .option('--vqgan <dir|file>', 'VQGAN checkpoint file or folder')
    .option('--tokenizer <file>', 'bpe.model file')
    .option('--cache-dir <dir>', 'hub cache folder')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free one)', int('--port'), 8080)
    .option('--max-queue <n>', 'jobs waiting beyond the running one before 429', int('--max-queue'), 16)
    .option('--threads <n>', 'onnxruntime threads', int('--threads', 1))
    .option('--batch-size <n>', 'rows per model call', int('--batch-size', 1))
    .addOption(new Option('--device <d>', 'execution provider (cuda needs the CUDA binaries: see README)').choices(['cpu', 'cuda']).default('cpu'))
    .addOption(new Option('--precision <p>', PRECISION_HELP).choices([...PRECISIONS]).default('int8'))
    .option('--offline', 'never use the network (same as HF_HUB_OFFLINE=1)')
    .addHelpText('after', `
Примеры:
  $ rudolph serve                          # http://127.0.0.1:8080, страница и API
  $ rudolph serve --model ./моя-модель --port 9000 --max-queue 4
  $ curl -s localhost:8080/v1/classify -H 'content-type: application/json' \\
      -d '{"image": "<base64 PNG>", "classes": ["кошка", "собака"]}'`)
    .action(async (o: { model: string; vqgan?: string; tokenizer?: string; cacheDir?: string; host: string; port: number; maxQueue: number; threads?: number; batchSize?: number; device: 'cpu' | 'cuda'; precision: LinearPrecision; offline?: boolean }) => {
      const server = await startServer({ ...o, log: (line) => process.stderr.write(`${line}\n`) });
      process.stderr.write(`rudolph: serving on ${server.url} (Ctrl-C to stop)\n`);
      // the process lives until SIGTERM/SIGINT, which the server handles (graceful shutdown, exit 0)
      await new Promise<never>(() => {});
    });
}
