import { TokenizerError } from './errors.js';

/** YTTM's word-start marker, U+2581 LOWER ONE EIGHTH BLOCK. */
export const WORD_START = 0x2581;

/**
 * The content of a YouTokenToMe `bpe.model` file (format: shared/tokenizer/YTTM-FORMAT.md §1).
 * Rules are kept in file order, which is their merge priority (index 0 merges first).
 */
export interface YttmModelData {
  readonly charCodePoints: Int32Array;
  readonly charIds: Int32Array;
  readonly ruleLeft: Int32Array;
  readonly ruleRight: Int32Array;
  readonly ruleResult: Int32Array;
  /** -1 where the special token is not defined. */
  readonly unkId: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** characters + rules + defined specials; every id in [0, vocabSize) is used exactly once. */
  readonly vocabSize: number;
}

/** The longest token accepted (real models: a few dozen characters). */
export const MAX_TOKEN_LENGTH = 4096;
/** All tokens together (a 16k-token model holds about 100k characters). */
export const MAX_TOTAL_TOKEN_LENGTH = 16 * 2 ** 20;

/**
 * The largest model file accepted: YTTM writes ~15 bytes a token, so 16 MiB is ~1 M tokens,
 * far beyond any vocabulary (16k tokens: 0.2 MB). The parser keeps 8 bytes a number.
 */
export const MAX_MODEL_BYTES = 16 * 2 ** 20;

/**
 * The numbers of a model file, compact (value and byte offset each; a 16 MiB file of "1\n" once
 * cost 450 MB as objects). Line and column are worked out from the offset only for an error.
 */
interface Numbers {
  readonly values: Int32Array;
  readonly offsets: Int32Array;
}

/**
 * Parses and validates a model file. YTTM's own reader only splits on whitespace and
 * checks nothing; this one accepts every file YTTM writes and rejects files that would make
 * encode/decode silently wrong (bad numbers, truncation, trailing data, ids out of range or
 * used twice, rules referring to tokens not yet defined, no ▁ character).
 */
export function parseYttmModel(bytes: Uint8Array, file: string): YttmModelData {
  if (bytes.length > MAX_MODEL_BYTES) {
    throw new TokenizerError(`malformed tokenizer model ${file}: ${bytes.length} bytes, more than the ${MAX_MODEL_BYTES} a tokenizer model may have`, { file });
  }
  const { values, offsets } = scanNumbers(bytes, file);
  const count = values.length;
  let pos = 0;
  /** Fails at number `t` (an index into the file's numbers), or at the end of the file. */
  const fail = (message: string, t: number | undefined): never => {
    const offset = t === undefined ? bytes.length : offsets[t];
    const { line, column } = lineAndColumn(bytes, offset);
    const where = t !== undefined ? `line ${line}, column ${column} (byte ${offset})` : `end of file (byte ${bytes.length})`;
    throw new TokenizerError(`malformed tokenizer model ${file}: ${where}: ${message}`, {
      file,
      line,
      column: t !== undefined ? column : undefined,
      offset,
    });
  };
  const next = (what: string): number => {
    if (pos >= count) return fail(`file ends early: expected ${what} (read ${count} numbers)`, undefined);
    return pos++;
  };

  const charCountAt = next('the character count (header line "N M")');
  const ruleCountAt = next('the rule count (header line "N M")');
  const charCount = values[charCountAt];
  const ruleCount = values[ruleCountAt];
  if (charCount < 1) fail(`character count must be at least 1, got ${charCount}`, charCountAt);
  if (ruleCount < 0) fail(`rule count must not be negative, got ${ruleCount}`, ruleCountAt);
  // A corrupt header must not make us allocate gigabytes before noticing the file is short.
  const remaining = count - pos;
  if (charCount * 2 + ruleCount * 3 + 4 > remaining) {
    fail(
      `header announces ${charCount} characters and ${ruleCount} rules (${charCount * 2 + ruleCount * 3 + 4} numbers to follow) but the file has ${remaining} more numbers`,
      charCountAt,
    );
  }

  const charCodePoints = new Int32Array(charCount);
  const charIds = new Int32Array(charCount);
  const charIdAt = new Int32Array(charCount);
  const seenCodePoints = new Set<number>();
  for (let i = 0; i < charCount; i++) {
    const cpAt = next(`character line ${i + 1} of ${charCount}`);
    const idAt = next(`the id on character line ${i + 1} of ${charCount}`);
    const cp = values[cpAt];
    if (cp < 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      fail(`character ${cp} is not a Unicode scalar value`, cpAt);
    }
    if (seenCodePoints.has(cp)) fail(`character U+${hex(cp)} is listed twice`, cpAt);
    seenCodePoints.add(cp);
    charCodePoints[i] = cp;
    charIds[i] = values[idAt];
    charIdAt[i] = idAt;
  }
  if (!seenCodePoints.has(WORD_START)) {
    fail(`the character table has no entry for U+2581 (▁), which every word starts with`, charCountAt);
  }

  const ruleLeft = new Int32Array(ruleCount);
  const ruleRight = new Int32Array(ruleCount);
  const ruleResult = new Int32Array(ruleCount);
  const firstRuleAt = pos;
  for (let k = 0; k < ruleCount; k++) {
    ruleLeft[k] = values[next(`rule line ${k + 1} of ${ruleCount}`)];
    ruleRight[k] = values[next(`rule line ${k + 1} of ${ruleCount}`)];
    ruleResult[k] = values[next(`rule line ${k + 1} of ${ruleCount}`)];
  }

  const specialAt = [next('the unk id (special line "UNK PAD BOS EOS")'), next('the pad id'), next('the bos id'), next('the eos id')];
  if (pos < count) fail(`unexpected data after the special-token line`, pos);
  const [unkId, padId, bosId, eosId] = specialAt.map((t) => values[t]) as [number, number, number, number];
  const vocabSize = charCount + ruleCount + specialAt.filter((t) => values[t] !== -1).length;

  // Every id is claimed exactly once, in [0, vocabSize); then they cover the range exactly.
  const owner = new Int8Array(vocabSize); // 0 free, 1 special, 2 character, 3 rule result
  const claim = (t: number, kind: 1 | 2 | 3, what: string): void => {
    const id = values[t];
    if (id < 0 || id >= vocabSize) fail(`${what} id ${id} is outside [0, ${vocabSize - 1}] (vocab size ${vocabSize})`, t);
    if (owner[id] !== 0) fail(`${what} id ${id} is already used by another token`, t);
    owner[id] = kind;
  };
  for (const t of specialAt) {
    if (values[t] < -1) fail(`special token id must be -1 (undefined) or a token id, got ${values[t]}`, t);
    if (values[t] !== -1) claim(t, 1, 'special token');
  }
  for (const t of charIdAt) claim(t, 2, 'character');
  // Token lengths (UTF-16 units): a chain of rules could otherwise build tokens of any length,
  // exponentially fast, and the tokenizer would spell every one of them out.
  const tokenLength = new Float64Array(vocabSize);
  for (let i = 0; i < charCount; i++) tokenLength[charIds[i]] = charCodePoints[i] > 0xffff ? 2 : 1;
  let totalLength = charCount;
  for (let k = 0; k < ruleCount; k++) {
    const x = firstRuleAt + 3 * k;
    const z = x + 2;
    for (const operand of [x, x + 1]) {
      const id = values[operand];
      if (id < 0 || id >= vocabSize || owner[id] < 2) {
        fail(`rule ${k + 1} merges token ${id}, which is not a character or the result of an earlier rule`, operand);
      }
    }
    claim(z, 3, 'rule result');
    const length = tokenLength[values[x]] + tokenLength[values[x + 1]];
    if (length > MAX_TOKEN_LENGTH) fail(`rule ${k + 1} builds a token of ${length} characters; a BPE token is far shorter (at most ${MAX_TOKEN_LENGTH})`, z);
    tokenLength[values[z]] = length;
    totalLength += length;
    if (totalLength > MAX_TOTAL_TOKEN_LENGTH) fail(`the tokens up to rule ${k + 1} hold over ${MAX_TOTAL_TOKEN_LENGTH} characters together, more than any BPE vocabulary`, z);
  }

  return { charCodePoints, charIds, ruleLeft, ruleRight, ruleResult, unkId, padId, bosId, eosId, vocabSize };
}

const isSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d);

/**
 * Splits on C isspace (what YTTM's `>>` reader skips) and parses each token as a C int: a first
 * pass counts (and checks) the numbers, a second fills arrays of exactly that size.
 */
function scanNumbers(bytes: Uint8Array, file: string): Numbers {
  let count = 0;
  forEachToken(bytes, (start, end) => {
    if (parseCInt(bytes, start, end) === undefined) {
      const { line, column } = lineAndColumn(bytes, start);
      const text = new TextDecoder('latin1').decode(bytes.subarray(start, Math.min(end, start + 40)));
      throw new TokenizerError(
        `malformed tokenizer model ${file}: line ${line}, column ${column} (byte ${start}): expected an integer, got ${JSON.stringify(text)}${end - start > 40 ? '...' : ''}`,
        { file, line, column, offset: start },
      );
    }
    count++;
  });
  const values = new Int32Array(count);
  const offsets = new Int32Array(count);
  let k = 0;
  forEachToken(bytes, (start, end) => {
    values[k] = parseCInt(bytes, start, end) as number;
    offsets[k++] = start;
  });
  return { values, offsets };
}

function forEachToken(bytes: Uint8Array, visit: (start: number, end: number) => void): void {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    if (isSpace(bytes[i])) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && !isSpace(bytes[i])) i++;
    visit(start, i);
  }
}

function parseCInt(bytes: Uint8Array, start: number, end: number): number | undefined {
  let i = start;
  let negative = false;
  const first = bytes[i] as number;
  if (first === 0x2b || first === 0x2d) {
    negative = first === 0x2d;
    i++;
  }
  if (i === end || end - i > 10) return undefined;
  let value = 0;
  for (; i < end; i++) {
    const d = (bytes[i] as number) - 0x30;
    if (d < 0 || d > 9) return undefined;
    value = value * 10 + d;
  }
  if (negative) value = -value;
  if (value > 0x7fffffff || value < -0x80000000) return undefined;
  return value;
}

/** 1-based line and byte column of an offset (lines end at LF), for error messages. */
function lineAndColumn(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, '0');
}
