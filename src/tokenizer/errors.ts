import { RudolphError } from '../errors.js';

/** Unreadable or malformed tokenizer model, or a tokenizer call the model cannot serve. */
export class TokenizerError extends RudolphError {
  /** The model file (or buffer name) the problem was found in, when there is one. */
  readonly file: string | undefined;
  /** 1-based line and column and 0-based byte offset of the offending token, when known. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly offset: number | undefined;

  constructor(
    message: string,
    where: { file?: string; line?: number; column?: number; offset?: number } = {},
    options?: { cause?: unknown },
  ) {
    super('TOKENIZER', message, options);
    this.name = 'TokenizerError';
    this.file = where.file;
    this.line = where.line;
    this.column = where.column;
    this.offset = where.offset;
  }
}

/**
 * A token id outside `[0, vocabSize)` given to decode / idToSubword. The message is the
 * exact text YouTokenToMe raises (`id must be in the range [0, vocab_size - 1]. ...`).
 */
export class TokenIdError extends TokenizerError {
  readonly id: number;
  readonly vocabSize: number;

  constructor(id: number, vocabSize: number) {
    super(`id must be in the range [0, vocab_size - 1]. Current value: vocab_size = ${vocabSize}; id=${id};`);
    this.name = 'TokenIdError';
    this.id = id;
    this.vocabSize = vocabSize;
  }
}
