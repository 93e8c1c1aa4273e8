/**
 * Every error the library throws on bad input is a RudolphError with a stable `code`,
 * so callers (CLI, HTTP service) can map it to an exit code or status without parsing text.
 */
export type ErrorCode =
  | 'CHECKPOINT'   // unreadable, truncated, unsafe or unsupported checkpoint file
  | 'WEIGHTS'      // a tensor is missing, misshapen or of the wrong dtype
  | 'CONFIG'       // invalid or unknown model configuration / preset
  | 'TOKENIZER'    // unreadable bpe.model or invalid token ids
  | 'INPUT'        // bad task input: ids out of range, too long, empty prompt...
  | 'IMAGE'        // unreadable or unsupported image
  | 'DOWNLOAD'     // network / hub failure
  | 'OFFLINE'      // something needed is not cached and the network is off
  | 'INTEGRITY'    // size or hash mismatch
  | 'ABORTED'      // cancelled through an AbortSignal
  | 'TRAINING'     // fine-tuning data or state problem
  | 'LIMIT'        // a request over a configured size limit (decoded pixels, body bytes)
  | 'RUNTIME';     // onnxruntime failure we could not attribute to input

export class RudolphError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RudolphError';
    this.code = code;
  }
}

export class CheckpointError extends RudolphError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHECKPOINT', message, options);
    this.name = 'CheckpointError';
  }
}

export class WeightsError extends RudolphError {
  constructor(message: string) {
    super('WEIGHTS', message);
    this.name = 'WeightsError';
  }
}

export class ConfigError extends RudolphError {
  constructor(message: string) {
    super('CONFIG', message);
    this.name = 'ConfigError';
  }
}

export class InputError extends RudolphError {
  constructor(message: string) {
    super('INPUT', message);
    this.name = 'InputError';
  }
}

/** A request over a configured size limit; the message names the limit and how to change it. */
export class LimitError extends RudolphError {
  constructor(message: string) {
    super('LIMIT', message);
    this.name = 'LimitError';
  }
}

export class AbortError extends RudolphError {
  constructor(message = 'the operation was aborted') {
    super('ABORTED', message);
    this.name = 'AbortError';
  }
}

/** Throws AbortError if the signal has fired; call between steps of long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(reasonText(signal.reason));
}

function reasonText(reason: unknown): string {
  if (reason instanceof Error) return `aborted: ${reason.message}`;
  if (typeof reason === 'string') return `aborted: ${reason}`;
  return 'the operation was aborted';
}
