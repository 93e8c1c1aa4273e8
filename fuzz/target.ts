/**
 * What a fuzz target is: one untrusted reader, fed seeded inputs. Each target is one file in
 * fuzz/targets/ exporting `target`, listed in fuzz/targets/index.ts.
 *
 * An input is bytes (so that any input can be saved and replayed): a file's content, a config
 * text, or, for an HTTP endpoint target, a request body. `run` feeds it to the code under test
 * and resolves when that code accepted it, or throws what it threw. The harness judges: a
 * RudolphError (any code) is a clean refusal; anything else thrown, more than 2 s, or more than
 * 256 MB of peak memory growth is a finding.
 *
 * Adding an HTTP endpoint later is one more file: `httpTarget` (lib/http.ts) starts the app
 * in-process on 127.0.0.1, the file's `input` builds a JSON or multipart body (generated or
 * mutated from valid requests), and each is posted and its answer turned into the same outcomes: 2xx resolves,
 * a 4xx with a stable error code throws `new RudolphError(code, …)`, a 5xx or a dropped
 * connection throws a plain Error.
 */
import type { FuzzRng } from './lib/rng.js';

export interface FuzzContext {
  /** A private scratch folder for this worker (files the readers need to open). */
  tmpDir: string;
}

export interface FuzzTarget {
  name: string;
  /** What is fed to what, one line. */
  description: string;
  /** Once per worker, before any input: build seeds, start servers, load what runs share. */
  setup(ctx: FuzzContext): Promise<void>;
  /** Input `i`, from its own seeded stream: generated from scratch or a mutation of a seed. */
  input(rng: FuzzRng, i: number): Uint8Array | Promise<Uint8Array>;
  /** Feeds one input to the code under test: resolves on a valid result, throws its error. */
  run(input: Uint8Array): Promise<void>;
  teardown?(): Promise<void>;
}
