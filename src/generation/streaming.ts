/**
 * Streamed text: every token a text task samples, reported as it is chosen, with the candidate's
 * text so far decoded exactly as its final text will be (like transformers.js's TextStreamer,
 * per candidate). Reranking happens after the last token; streams report it as their end.
 */
import type { RudolphConfig } from '../model/config.js';
import { EOS_ID, type TextTokenizer } from '../tokenizer/text-encoding.js';
import { concat } from '../util/arrays.js';
import { decodeUntilEos } from './decode-text.js';

export interface TextToken {
  /** the sampled candidate (0-based, in sampling order: candidate i is sample stream i) */
  candidate: number;
  /** the token id just chosen */
  token: number;
  /** the candidate's text so far, decoded as its final text (authoritative: `delta` is a convenience) */
  text: string;
  /** what `text` gained with this token ('' when the token shows nothing, e.g. eos) */
  delta: string;
  /** the candidate's last token (eos, or the length limit) */
  done: boolean;
}

/** Options of the tasks that stream text (caption, generateText). */
export interface TokenControl {
  /** called for every token a candidate gets, as it is generated */
  onToken?: (t: TextToken) => void;
}

/** Follows the rows of one decoding batch and reports their tokens as `TextToken`s. */
export class TokenReporter {
  private readonly texts: string[];
  private readonly ended: boolean[];

  constructor(
    private readonly tokenizer: TextTokenizer, private readonly cfg: RudolphConfig, private readonly onToken: (t: TextToken) => void,
    /** candidate index of each row */ private readonly candidates: readonly number[],
    /** tokens every text starts with (the template) */ private readonly shown: Int32Array,
    private readonly steps: number,
  ) {
    this.texts = candidates.map(() => decodeUntilEos(tokenizer, cfg, shown));
    this.ended = candidates.map(() => false);
  }

  /** Reports step `step` of every row still going; `rows` are the tokens so far. */
  step(rows: readonly Int32Array[], step: number): void {
    rows.forEach((row, b) => {
      if (this.ended[b]) return;
      const token = row[step];
      const done = token === EOS_ID || step === this.steps - 1;
      const text = decodeUntilEos(this.tokenizer, this.cfg, concat(this.shown, row.subarray(0, step + 1)));
      const before = this.texts[b];
      this.texts[b] = text;
      this.ended[b] = done;
      this.onToken({ candidate: this.candidates[b], token, text, delta: text.startsWith(before) ? text.slice(before.length) : text, done });
    });
  }
}

/** What a text stream yields: tokens as they come, then the task's (reranked) result last. */
export type TextStreamEvent<R> = ({ type: 'token' } & TextToken) | { type: 'result'; result: R };
