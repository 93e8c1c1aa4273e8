/**
 * Rudolph: the library's front door. `Rudolph.fromPretrained(presetOrDirOrRepo)` resolves and
 * fetches what it needs (model, tokenizer, VQGAN) through the runtime's loader and exposes every
 * task as a method taking an options object and returning plain data.
 */
import { RudolphError } from './errors.js';
import type { RgbImage } from './image/index.js';
import type { TextStreamEvent, TextToken } from './generation/streaming.js';
import type { FromPretrainedOptions, LoadedModel, LoadProgress, ModelLoader, RudolphInfo } from './load-options.js';
import type { RudolphConfig } from './model/config.js';
import type { RudolphModel } from './model/rudolph-model.js';
import { type CaptionCandidates, generateCaptions, type GenerateCaptionsOptions } from './tasks/caption.js';
import type { TaskContext } from './tasks/context.js';
import { resolveImagePrompt } from './tasks/image-prompt.js';
import { type Borders, generateImageTokens, type GenerateImageTokensOptions, type ImagePrompt, type ImageTokensResult } from './tasks/image-tokens.js';
import { TASK_METHODS, type TaskMethod, type TaskOptions, type TaskResult, TASKS } from './tasks/registry.js';
import type { TextTokenizer } from './tokenizer/text-encoding.js';
import { eventStream } from './util/event-stream.js';
import type { Vqgan } from './vqgan/vqgan-model.js';

export type { FromPretrainedOptions, LoadProgress, RudolphInfo, TextStreamEvent, TextToken };

/** The tasks that stream text (their spec says `streams`). */
export type StreamingTask = 'caption' | 'generateText';

let loader: ModelLoader | undefined;

/** Registers how `fromPretrained` finds and opens models on this platform (the runtime's entry point does). */
export function useModelLoader(l: ModelLoader): void {
  loader = l;
}

/** One method per registered task (tasks/registry.ts): `rudolph.dream(options)`, `rudolph.caption(options)`, … */
type TaskMethods = { [M in TaskMethod]: (options: TaskOptions<M>) => Promise<TaskResult<M>> };

// the task methods are added to the prototype below, from the registry
export interface Rudolph extends TaskMethods {}

export class Rudolph {
  private readonly ctx: TaskContext & { vqgan?: Vqgan };
  private readonly details: RudolphInfo;

  /** A facade over a loaded model (what `fromPretrained` builds; runtimes and tests may build one directly). */
  constructor(loaded: LoadedModel) {
    this.ctx = { model: loaded.model, cfg: loaded.cfg, tokenizer: loaded.tokenizer, vqgan: loaded.vqgan, upscaler: loaded.upscaler, batchSize: loaded.batchSize };
    this.details = loaded.info;
  }

  get config(): RudolphConfig { return this.ctx.cfg; }
  get tokenizer(): TextTokenizer { return this.ctx.tokenizer; }
  get model(): RudolphModel { return this.ctx.model; }
  get vqgan(): Vqgan | undefined { return this.ctx.vqgan; }
  info(): RudolphInfo { return structuredClone(this.details); }

  /** A preset name, a model folder or a hub repo id; see `FromPretrainedOptions`. */
  static async fromPretrained(source: string, opts: FromPretrainedOptions = {}): Promise<Rudolph> {
    if (!loader) throw new RudolphError('RUNTIME', 'no model loader registered: import the library through its entry point (rudolph-ts in Node)');
    return new Rudolph(await loader(source, opts));
  }

  /** Text → n² image token ids per candidate (no reranking, no decoding); image prompts as ids + cells. */
  generateImageTokens(o: GenerateImageTokensOptions): Promise<ImageTokensResult> { return generateImageTokens(this.ctx, o); }
  /** Distinct sampled captions and their counts, before reranking (official `generate_captions`). */
  generateCaptions(o: GenerateCaptionsOptions): Promise<CaptionCandidates> { return generateCaptions(this.ctx, o); }

  /** An image prompt's known cells: the image's token ids and the cells kept by `borders`. */
  imagePrompt(image: RgbImage, borders: Borders, cropFirst = false): Promise<ImagePrompt> {
    return resolveImagePrompt(this.ctx, { image, borders, cropFirst });
  }

  /** Runs a registered task by method name (the CLI and the server call tasks this way). */
  run<M extends TaskMethod>(method: M, options: TaskOptions<M>): Promise<TaskResult<M>> {
    const task = TASKS[method] as unknown as { run: (ctx: TaskContext, o: TaskOptions<M>) => Promise<TaskResult<M>> };
    return task.run(this.ctx, options);
  }

  /** Whether a task has a batched form (`runMany` runs its requests as one batch on the model). */
  canBatch(method: TaskMethod): boolean {
    return (TASKS[method] as { runMany?: unknown }).runMany !== undefined;
  }

  /**
   * Runs several requests of one task: as one batch on the model where the task has a batched
   * form, else one after another. Each request gets its own result (equal to running it alone)
   * and settles on its own: one that is invalid or cancelled fails without stopping the others.
   */
  runMany<M extends TaskMethod>(method: M, list: readonly TaskOptions<M>[]): Promise<TaskResult<M>>[] {
    const task = TASKS[method] as unknown as { runMany?: (ctx: TaskContext, l: readonly TaskOptions<M>[]) => Promise<TaskResult<M>>[] };
    if (task.runMany) return task.runMany(this.ctx, list);
    let chain: Promise<unknown> = Promise.resolve();
    return list.map((o) => {
      const out = chain.then(() => this.run(method, o));
      chain = out.catch(() => {});
      return out;
    });
  }

  /**
   * A text task as an async iterator: `{ type: 'token', candidate, token, text, delta, done }` for
   * every token sampled, as it is sampled, then `{ type: 'result', result }` — the reranked
   * result, the same as the task's method gives for the same options. Leaving the loop early
   * cancels the task.
   */
  stream<M extends StreamingTask>(method: M, options: Omit<TaskOptions<M>, 'onToken'>): AsyncIterableIterator<TextStreamEvent<TaskResult<M>>> {
    return eventStream<{ type: 'token' } & TextToken, TaskResult<M>>(
      (emit, signal) => this.run(method, { ...options, signal, onToken: (t: TextToken) => emit({ type: 'token', ...t }) } as TaskOptions<M>),
      options.signal,
    );
  }

  /** `caption` streamed: sampled tokens as they come, the reranked captions last (see `stream`). */
  captionStream(options: Omit<TaskOptions<'caption'>, 'onToken'>): AsyncIterableIterator<TextStreamEvent<TaskResult<'caption'>>> {
    return this.stream('caption', options);
  }

  /** `generateText` streamed: sampled tokens as they come, the ranked texts last (see `stream`). */
  generateTextStream(options: Omit<TaskOptions<'generateText'>, 'onToken'>): AsyncIterableIterator<TextStreamEvent<TaskResult<'generateText'>>> {
    return this.stream('generateText', options);
  }

  async release(): Promise<void> {
    await this.ctx.model.release();
    await this.ctx.vqgan?.release();
    await this.ctx.upscaler?.release();
  }

}

for (const method of TASK_METHODS) {
  Object.defineProperty(Rudolph.prototype, method, {
    value(this: Rudolph, options: TaskOptions<typeof method>) { return this.run(method, options); },
    writable: true,
    configurable: true,
  });
}
