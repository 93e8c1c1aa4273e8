/** rudolph serve: the HTTP service and web page. */
import { Command } from 'commander';
import { startServer } from '../../server/serve.js';
import { addModelSourceOptions, addRuntimeOptions, addUpscalerOption, int, type ModelSourceCliOptions, type RuntimeCliOptions } from '../common.js';

export function serveCommand(): Command {
  const cmd = new Command('serve')
    .description('HTTP API (JSON, OpenAPI at /openapi.json) and a web page at / for every task')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free one)', int('--port'), 8080)
    .option('--max-queue <n>', 'jobs waiting beyond the running one before 429', int('--max-queue'), 16);
  return addRuntimeOptions(addUpscalerOption(addModelSourceOptions(cmd)))
    .addHelpText('after', `
Примеры:
  $ rudolph serve                          # http://127.0.0.1:8080, страница и API
  $ rudolph serve --model ./моя-модель --port 9000 --max-queue 4
  $ curl -s localhost:8080/v1/classify -H 'content-type: application/json' \\
      -d '{"image": "<base64 PNG>", "classes": ["кошка", "собака"]}'`)
    .action(async (o: ModelSourceCliOptions & RuntimeCliOptions & { host: string; port: number; maxQueue: number }) => {
      const server = await startServer({ ...o, log: (line) => process.stderr.write(`${line}\n`) });
      process.stderr.write(`rudolph: serving on ${server.url} (Ctrl-C to stop)\n`);
      // the process lives until SIGTERM/SIGINT, which the server handles (graceful shutdown, exit 0)
      await new Promise<never>(() => {});
    });
}
