/** rudolph download / cache ls|rm|verify / info */
import os from 'node:os';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { listCache, removeFromCache, resolveHubSettings, verifyCache } from '../../hub/index.js';
import { DEFAULT_PRESET, PRESET_NAMES, presetList, PRESETS } from '../../presets.js';
import { fetchModelFiles } from '../../pretrained/model-files.js';
import { addModelSourceOptions, addOutputOptions, addRuntimeOptions, loadModel, loadProgress, type ModelCliOptions } from '../common.js';
import { formatCacheListing, formatRemoveResult, formatVerifyReport } from '../hub-format.js';
import { printJson, ProgressDisplay } from '../output.js';

export function hubCommands(): Command[] {
  const download = new Command('download')
    .description('download what a model needs (checkpoint, config, tokenizer, VQGAN) into the hub cache')
    .argument('[model]', `preset (${presetList()}) or hub repo id`, DEFAULT_PRESET)
    .option('--revision <rev>', 'branch, tag or commit of the model repo')
    .option('--cache-dir <dir>', 'hub cache folder')
    .option('--offline', 'only check the cache: name what is missing')
    .option('--token <token>', 'Hugging Face access token for private or gated repos (default: HF_TOKEN)')
    .option('--json', 'machine-readable JSON on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .addHelpText('after', '\nПримеры:\n  $ rudolph download            # RUDOLPH-350M-v2, токенизатор и VQGAN (~1.7 ГБ)\n  $ rudolph download 1.3B --cache-dir /data/hf\n  $ rudolph download моя-организация/моя-модель --revision v1')
    .action(async (model: string, o: { revision?: string; cacheDir?: string; token?: string; offline?: boolean; json?: boolean; quiet?: boolean }) => {
      const display = new ProgressDisplay(o.quiet || false);
      const controller = new AbortController();
      const onSigint = () => controller.abort(new Error('interrupted (Ctrl-C)'));
      process.once('SIGINT', onSigint);
      try {
        const files = await fetchModelFiles(model, { revision: o.revision, cacheDir: o.cacheDir, token: o.token, offline: o.offline, signal: controller.signal, onProgress: loadProgress(display) });
        display.stop();
        const out = { weights: files.weightsFile, tokenizer: files.tokenizer, vqgan: files.vqganFile, cacheDir: files.cacheDir };
        if (o.json) printJson(out);
        else for (const [k, v] of Object.entries(out)) console.log(`${k}\t${String(v)}`);
      } finally {
        display.stop();
        process.off('SIGINT', onSigint);
      }
    });

  const cache = new Command('cache').description('inspect and manage the hub cache');
  cache.command('ls').description('list cached repos, revisions and files').option('--cache-dir <dir>', 'hub cache folder').option('--json', 'JSON output')
    .action(async (o: { cacheDir?: string; json?: boolean }) => {
      const listing = await listCache(o.cacheDir);
      if (o.json) printJson(listing); else console.log(formatCacheListing(listing));
    });
  cache.command('rm').description('remove a repo (or one revision of it) from the cache').argument('<repo>', 'repo id').argument('[revision]', 'commit or ref')
    .option('--cache-dir <dir>', 'hub cache folder').option('--json', 'JSON output')
    .action(async (repo: string, revision: string | undefined, o: { cacheDir?: string; json?: boolean }) => {
      const res = await removeFromCache(o.cacheDir, repo, revision);
      if (o.json) printJson(res); else console.log(formatRemoveResult(res));
    });
  cache.command('verify').description('re-hash cached files and report corrupt ones').option('--cache-dir <dir>', 'hub cache folder').option('--json', 'JSON output')
    .action(async (o: { cacheDir?: string; json?: boolean }) => {
      const report = await verifyCache(o.cacheDir);
      if (o.json) printJson(report); else console.log(formatVerifyReport(report));
      if (!report.ok) process.exitCode = 1;
    });

  const info = addOutputOptions(addRuntimeOptions(addModelSourceOptions(new Command('info').description('model, presets, cache, runtime and threads'))))
    .option('--no-load', 'do not load the model: only presets, cache and runtime')
    .addHelpText('after', '\nПримеры:\n  $ rudolph info --no-load\n  $ rudolph info --model ./моя-модель --json')
    .action(async (o: ModelCliOptions & { load: boolean }) => {
      const base = {
        presets: Object.fromEntries(PRESET_NAMES.map((p) => [p, PRESETS[p].params])),
        cacheDir: resolveHubSettings({ cacheDir: o.cacheDir }).cacheDir,
        runtime: { node: process.version, onnxruntime: ort.env.versions.node, cpus: os.cpus().length },
      };
      let model: unknown = null;
      if (o.load) {
        const display = new ProgressDisplay(o.quiet || o.json);
        const r = await loadModel(o, display);
        model = r.info();
        display.stop();
        await r.release();
      }
      if (o.json) printJson({ ...base, model });
      else {
        console.log(`presets: ${presetList()}`);
        console.log(`cache: ${base.cacheDir}`);
        console.log(`runtime: node ${base.runtime.node}, onnxruntime-node ${base.runtime.onnxruntime}, ${base.runtime.cpus} CPUs`);
        if (model) console.log(JSON.stringify(model, null, 1));
      }
    });

  return [download, cache, info];
}
