import { InputError } from '../errors.js';
import { readAllBytes } from '../runtime/current.js';
import { uniformSource } from '../util/random.js';
import { MergeRules, WordMerger } from './bpe-merge.js';
import { TokenIdError, TokenizerError } from './errors.js';
import { MAX_MODEL_BYTES, parseYttmModel, WORD_START, type YttmModelData } from './model-file.js';
import type { TextTokenizer } from './text-encoding.js';
import { WordCache } from './word-cache.js';

export type EncodeOutput = 'id' | 'subword';

interface EncodeFlags {
  /** Put bos_id (piece `<BOS>`) first. Error if the model has no bos token. */
  bos?: boolean;
  /** Put eos_id (piece `<EOS>`) last. Error if the model has no eos token. */
  eos?: boolean;
  /** Reverse the whole output, bos/eos included. */
  reverse?: boolean;
  /**
   * BPE-dropout probability in [0, 1] (default 0). 1 is deterministic (no merges);
   * 0 < p < 1 is random, reproducible with `seed` or `rng`, statistically like YTTM.
   */
  dropoutProb?: number;
  /** Seed for dropout; each call (or each encodeBatch call) starts a fresh generator. */
  seed?: number;
  /** Source of uniform doubles in [0, 1) for dropout; takes precedence over `seed`. */
  rng?: () => number;
}
export interface EncodeIdOptions extends EncodeFlags {
  output?: 'id';
}
export interface EncodeSubwordOptions extends EncodeFlags {
  output: 'subword';
}
export type EncodeOptions = EncodeIdOptions | EncodeSubwordOptions;

export interface DecodeOptions {
  /** Ids skipped entirely (no range check; they do not count as the first piece). */
  ignoreIds?: Iterable<number> | null;
}

export interface YttmTokenizerOptions {
  /** Most distinct words whose encodings are cached (default 50000, about 8 MB; 0 disables the cache). */
  cacheSize?: number;
}

const SPECIAL_PIECES = { unk: '<UNK>', pad: '<PAD>', bos: '<BOS>', eos: '<EOS>' } as const;
/** Longer words are rare and cheap to miss; keeping them out bounds the cache's memory. */
const MAX_CACHED_WORD = 128;

interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/**
 * YouTokenToMe BPE (the tokenizer of ruDALL-E and RUDOLPH), byte-exact with the C++ library
 * v1.0.6 for encode (ids and subwords, bos/eos/reverse, dropout 0 and 1), decode, vocab,
 * idToSubword and subwordToId. See shared/tokenizer/YTTM-FORMAT.md for the algorithm.
 *
 * Input text is used as is: no lowercasing or Unicode normalisation (RUDOLPH callers apply
 * `prepareText` first). Words are split on TAB, LF, VT, FF, CR, SPACE and U+2581 only.
 *
 * Strings that are not valid UTF-16 (lone surrogates) cannot be encoded as UTF-8, so each
 * lone surrogate is replaced by U+FFFD before encoding, exactly as `TextEncoder` would do
 * when handing the text to the C++ library; U+FFFD is then an ordinary (usually unknown)
 * character, and a subword piece covering it contains U+FFFD.
 *
 * Encoding caches per-word results (see `YttmTokenizerOptions.cacheSize`); the instance is
 * not meant to be shared across worker threads, but is safe to reuse for any number of calls.
 */
export class YttmTokenizer {
  /** The file path or buffer name the model was loaded from (used in messages). */
  readonly name: string;
  readonly vocabSize: number;
  readonly unkId: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;

  /** Token string per id, with the leading ▁; specials as `<UNK>` etc. */
  private readonly pieces: string[];
  /** Decode string per id: leading ▁ replaced by a space. */
  private readonly decodePieces: string[];
  /** UTF-16 length of the input text a token covers (its string minus a leading ▁). */
  private readonly textLength: Int32Array;
  private readonly idOfPiece: Map<string, number>;
  private readonly bmpIds: Int32Array;
  private readonly astralIds: Map<number, number>;
  private readonly wordStartId: number;
  private readonly merger: WordMerger;
  private readonly cache: WordCache<number[]>;
  private symbols = new Int32Array(256);

  static async fromFile(path: string, options: YttmTokenizerOptions = {}): Promise<YttmTokenizer> {
    let bytes: Uint8Array;
    try {
      bytes = await readAllBytes(path, MAX_MODEL_BYTES);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new TokenizerError(`cannot read tokenizer model ${path}: ${reason}`, { file: path }, { cause });
    }
    return YttmTokenizer.fromBuffer(bytes, path, options);
  }

  static fromBuffer(bytes: Uint8Array, name = '<buffer>', options: YttmTokenizerOptions = {}): YttmTokenizer {
    if (!(bytes instanceof Uint8Array)) throw new InputError(`tokenizer model ${name} must be a Uint8Array`);
    return new YttmTokenizer(parseYttmModel(bytes, name), name, options);
  }

  constructor(data: YttmModelData, name = '<model>', options: YttmTokenizerOptions = {}) {
    const cacheSize = options.cacheSize ?? 50_000;
    if (!Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new InputError(`cacheSize must be a non-negative integer, got ${cacheSize}`);
    }
    this.name = name;
    this.vocabSize = data.vocabSize;
    this.unkId = data.unkId;
    this.padId = data.padId;
    this.bosId = data.bosId;
    this.eosId = data.eosId;

    const pieces = new Array<string>(data.vocabSize).fill('');
    this.bmpIds = new Int32Array(0x10000).fill(-1);
    this.astralIds = new Map();
    let wordStartId = -1;
    for (let i = 0; i < data.charIds.length; i++) {
      const cp = data.charCodePoints[i] as number;
      const id = data.charIds[i] as number;
      pieces[id] = String.fromCodePoint(cp);
      if (cp === WORD_START) wordStartId = id;
      if (cp < 0x10000) this.bmpIds[cp] = id;
      else this.astralIds.set(cp, id);
    }
    // A literal ▁ in the text is whitespace, so it is never looked up as a character.
    this.bmpIds[WORD_START] = -1;
    this.wordStartId = wordStartId;
    for (let k = 0; k < data.ruleResult.length; k++) {
      pieces[data.ruleResult[k] as number] = (pieces[data.ruleLeft[k] as number] as string) + (pieces[data.ruleRight[k] as number] as string);
    }
    const specials: [number, string][] = [
      [data.unkId, SPECIAL_PIECES.unk],
      [data.padId, SPECIAL_PIECES.pad],
      [data.bosId, SPECIAL_PIECES.bos],
      [data.eosId, SPECIAL_PIECES.eos],
    ];
    for (const [id, piece] of specials) if (id >= 0) pieces[id] = piece;

    this.pieces = pieces;
    this.textLength = new Int32Array(data.vocabSize);
    this.decodePieces = new Array<string>(data.vocabSize);
    this.idOfPiece = new Map();
    const wordStart = String.fromCharCode(WORD_START);
    const isSpecial = new Set(specials.map(([id]) => id));
    for (let id = 0; id < data.vocabSize; id++) {
      const piece = pieces[id] as string;
      const special = isSpecial.has(id);
      const startsWord = !special && piece.startsWith(wordStart);
      this.textLength[id] = special ? 0 : piece.length - (startsWord ? 1 : 0);
      this.decodePieces[id] = startsWord ? ' ' + piece.slice(1) : piece;
      // Trained models never repeat a string; if one did, the smallest id answers.
      if (!special && !this.idOfPiece.has(piece)) this.idOfPiece.set(piece, id);
    }
    this.merger = new WordMerger(new MergeRules(data.ruleLeft, data.ruleRight, data.ruleResult));
    this.cache = new WordCache(cacheSize);
  }

  /**
   * Encodes one text. Returns ids (default) or subword pieces (`output: 'subword'`), like
   * YTTM's `encode(text, output_type, bos, eos, reverse, dropout_prob)`.
   */
  encode(text: string, options?: EncodeIdOptions): number[];
  encode(text: string, options: EncodeSubwordOptions): string[];
  encode(text: string, options?: EncodeOptions): number[] | string[];
  encode(text: string, options: EncodeOptions = {}): number[] | string[] {
    const plan = this.plan(options);
    return this.encodeOne(text, plan, plan.seed === undefined ? plan.rng : uniformSource(plan.seed));
  }

  /** Encodes each text in order; with `seed`, one generator is shared by the whole batch. */
  encodeBatch(texts: readonly string[], options?: EncodeIdOptions): number[][];
  encodeBatch(texts: readonly string[], options: EncodeSubwordOptions): string[][];
  encodeBatch(texts: readonly string[], options?: EncodeOptions): number[][] | string[][];
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] | string[][] {
    if (!Array.isArray(texts)) throw new InputError('encodeBatch expects an array of strings');
    const plan = this.plan(options);
    const rng = plan.seed === undefined ? plan.rng : uniformSource(plan.seed);
    return texts.map((text) => this.encodeOne(text, plan, rng)) as number[][] | string[][];
  }

  /**
   * YTTM decode: pieces joined, the ▁ of each piece as a space, the first non-ignored
   * piece without its leading space; specials not ignored come out as `<UNK>` etc.
   * @throws TokenIdError for a non-ignored id outside [0, vocabSize) (YTTM's message).
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const ignore = options.ignoreIds == null ? undefined : new Set(options.ignoreIds);
    const decodePieces = this.decodePieces;
    const vocabSize = this.vocabSize;
    let out = '';
    let first = true;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (ignore !== undefined && ignore.has(id)) continue;
      if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) throw new TokenIdError(id, vocabSize);
      const piece = decodePieces[id] as string;
      if (first) {
        first = false;
        out = piece.charCodeAt(0) === 0x20 ? piece.slice(1) : piece;
      } else {
        out += piece;
      }
    }
    return out;
  }

  /** Token string of an id (with ▁; specials as `<UNK>`, `<PAD>`, `<BOS>`, `<EOS>`). */
  idToSubword(id: number): string {
    if (!(Number.isInteger(id) && id >= 0 && id < this.vocabSize)) throw new TokenIdError(id, this.vocabSize);
    return this.pieces[id] as string;
  }

  /** Id of a token string (with ▁); `<UNK>`/`<PAD>`/`<BOS>`/`<EOS>` give the special ids; anything else unknown gives unkId. */
  subwordToId(subword: string): number {
    switch (subword) {
      case SPECIAL_PIECES.unk:
        return this.unkId;
      case SPECIAL_PIECES.pad:
        return this.padId;
      case SPECIAL_PIECES.bos:
        return this.bosId;
      case SPECIAL_PIECES.eos:
        return this.eosId;
      default:
        return this.idOfPiece.get(subword) ?? this.unkId;
    }
  }

  /** `idToSubword(i)` for every id, index = id. */
  vocab(): string[] {
    return this.pieces.slice();
  }

  /** This tokenizer behind the plain `TextTokenizer` interface used by the RUDOLPH text layout. */
  asTextTokenizer(): TextTokenizer {
    return {
      vocabSize: this.vocabSize,
      encode: (text: string): number[] => this.encode(text),
      decode: (ids: ArrayLike<number>, ignoreIds?: Iterable<number>): string => this.decode(ids, { ignoreIds }),
    };
  }

  private plan(options: EncodeOptions): EncodePlan {
    if (options === null || typeof options !== 'object') throw new InputError('encode options must be an object');
    const output = options.output ?? 'id';
    if (output !== 'id' && output !== 'subword') throw new InputError(`encode output must be 'id' or 'subword', got ${String(output)}`);
    const dropout = options.dropoutProb ?? 0;
    if (typeof dropout !== 'number' || !(dropout >= 0 && dropout <= 1)) {
      throw new InputError(`dropoutProb must be a number in [0, 1], got ${String(dropout)}`);
    }
    if (options.seed !== undefined && !(Number.isSafeInteger(options.seed) && options.seed >= 0)) {
      throw new InputError(`seed must be an integer in [0, ${Number.MAX_SAFE_INTEGER}], got ${String(options.seed)}`);
    }
    if (options.rng !== undefined && typeof options.rng !== 'function') throw new InputError('rng must be a function returning numbers in [0, 1)');
    const bos = options.bos === true;
    const eos = options.eos === true;
    if (bos && this.bosId < 0) throw new TokenizerError(`tokenizer model ${this.name} defines no bos token`, { file: this.name });
    if (eos && this.eosId < 0) throw new TokenizerError(`tokenizer model ${this.name} defines no eos token`, { file: this.name });
    return {
      subwords: output === 'subword',
      bos,
      eos,
      reverse: options.reverse === true,
      dropout,
      seed: options.rng === undefined ? options.seed : undefined,
      rng: options.rng ?? Math.random,
    };
  }

  private encodeOne(text: string, plan: EncodePlan, rng: () => number): number[] | string[] {
    if (typeof text !== 'string') throw new InputError(`text to encode must be a string, got ${text === null ? 'null' : typeof text}`);
    if (!(text as unknown as WellFormedString).isWellFormed()) text = (text as unknown as WellFormedString).toWellFormed();
    const result = plan.subwords ? this.encodeSubwords(text, plan, rng) : this.encodeIds(text, plan, rng);
    if (plan.reverse) result.reverse();
    return result;
  }

  /** Calls `visit` for every word: maximal runs without space, \t-\r or ▁ (the YTTM splitting). */
  private forEachWord(text: string, visit: (word: string) => void): void {
    const n = text.length;
    let i = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || (c <= 13 && c >= 9) || c === WORD_START) {
        i++;
        continue;
      }
      const start = i;
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 32 || (d <= 13 && d >= 9) || d === WORD_START) break;
      }
      visit(text.slice(start, i));
    }
  }

  private encodeIds(text: string, plan: EncodePlan, rng: () => number): number[] {
    const out: number[] = [];
    if (plan.bos) out.push(this.bosId);
    const unk = this.unkId;
    this.forEachWord(text, (word) => {
      const encoded = this.encodeWord(word, plan.dropout, rng);
      for (let j = 0; j < encoded.length; j++) {
        const v = encoded[j] as number;
        out.push(v >= 0 ? v : unk);
      }
    });
    if (plan.eos) out.push(this.eosId);
    return out;
  }

  private encodeSubwords(text: string, plan: EncodePlan, rng: () => number): string[] {
    const out: string[] = [];
    if (plan.bos) out.push(SPECIAL_PIECES.bos);
    this.forEachWord(text, (word) => {
      const encoded = this.encodeWord(word, plan.dropout, rng);
      let offset = 0;
      for (let j = 0; j < encoded.length; j++) {
        const v = encoded[j] as number;
        if (v >= 0) {
          out.push(this.pieces[v] as string);
          offset += this.textLength[v] as number;
        } else {
          out.push(word.slice(offset, offset - v));
          offset -= v;
        }
      }
    });
    if (plan.eos) out.push(SPECIAL_PIECES.eos);
    return out;
  }

  /** Symbols of one word after merging: ids, or minus the UTF-16 length of an unknown run. */
  private encodeWord(word: string, dropout: number, rng: () => number): number[] {
    const cacheable = dropout === 0 && word.length <= MAX_CACHED_WORD;
    if (cacheable) {
      const hit = this.cache.get(word);
      if (hit !== undefined) return hit;
    }
    const n = word.length;
    if (this.symbols.length < n + 1) this.symbols = new Int32Array(2 * n + 2);
    const sym = this.symbols;
    const bmpIds = this.bmpIds;
    sym[0] = this.wordStartId;
    let k = 1;
    for (let i = 0; i < n; ) {
      const c = word.charCodeAt(i);
      let id: number;
      let units = 1;
      if (c >= 0xd800 && c <= 0xdbff) {
        // Input is well-formed here, so a high surrogate always starts a pair.
        units = 2;
        id = this.astralIds.get(((c - 0xd800) << 10) + (word.charCodeAt(i + 1) - 0xdc00) + 0x10000) ?? -1;
      } else {
        id = bmpIds[c] as number;
      }
      i += units;
      if (id >= 0) sym[k++] = id;
      else if ((sym[k - 1] as number) < 0) sym[k - 1] = (sym[k - 1] as number) - units;
      else sym[k++] = -units;
    }
    const m = dropout === 0 ? this.merger.merge(sym, k) : this.merger.mergeWithDropout(sym, k, dropout, rng);
    const encoded = new Array<number>(m);
    for (let j = 0; j < m; j++) encoded[j] = sym[j] as number;
    if (cacheable) this.cache.set(word, encoded);
    return encoded;
  }
}

interface EncodePlan {
  subwords: boolean;
  bos: boolean;
  eos: boolean;
  reverse: boolean;
  dropout: number;
  seed: number | undefined;
  rng: () => number;
}
