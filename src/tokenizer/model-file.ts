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

interface NumberToken {
  value: number;
  offset: number;
  line: number;
  column: number;
}

/**
 * Parses and validates a model file. YTTM's own reader only splits on whitespace and
 * checks nothing; this one accepts every file YTTM writes and rejects files that would make
 * encode/decode silently wrong (bad numbers, truncation, trailing data, ids out of range or
 * used twice, rules referring to tokens not yet defined, no ▁ character).
 */
export function parseYttmModel(bytes: Uint8Array, file: string): YttmModelData {
  const tokens = scanNumbers(bytes, file);
  let pos = 0;
  const fail = (message: string, token: NumberToken | undefined): never => {
    const at = token ?? { offset: bytes.length, line: lineAt(bytes, bytes.length), column: 0 };
    const where = token ? `line ${at.line}, column ${at.column} (byte ${at.offset})` : `end of file (byte ${bytes.length})`;
    throw new TokenizerError(`malformed tokenizer model ${file}: ${where}: ${message}`, {
      file,
      line: at.line,
      column: token ? at.column : undefined,
      offset: at.offset,
    });
  };
  const next = (what: string): NumberToken => {
    const token = tokens[pos];
    if (token === undefined) {
      return fail(`file ends early: expected ${what} (read ${tokens.length} numbers)`, undefined);
    }
    pos++;
    return token;
  };

  const charCountToken = next('the character count (header line "N M")');
  const ruleCountToken = next('the rule count (header line "N M")');
  const charCount = charCountToken.value;
  const ruleCount = ruleCountToken.value;
  if (charCount < 1) fail(`character count must be at least 1, got ${charCount}`, charCountToken);
  if (ruleCount < 0) fail(`rule count must not be negative, got ${ruleCount}`, ruleCountToken);
  // A corrupt header must not make us allocate gigabytes before noticing the file is short.
  const remaining = tokens.length - pos;
  if (charCount * 2 + ruleCount * 3 + 4 > remaining) {
    fail(
      `header announces ${charCount} characters and ${ruleCount} rules (${charCount * 2 + ruleCount * 3 + 4} numbers to follow) but the file has ${remaining} more numbers`,
      charCountToken,
    );
  }

  const charCodePoints = new Int32Array(charCount);
  const charIds = new Int32Array(charCount);
  const charIdTokens: NumberToken[] = [];
  const seenCodePoints = new Set<number>();
  for (let i = 0; i < charCount; i++) {
    const cpToken = next(`character line ${i + 1} of ${charCount}`);
    const idToken = next(`the id on character line ${i + 1} of ${charCount}`);
    const cp = cpToken.value;
    if (cp < 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      fail(`character ${cp} is not a Unicode scalar value`, cpToken);
    }
    if (seenCodePoints.has(cp)) fail(`character U+${hex(cp)} is listed twice`, cpToken);
    seenCodePoints.add(cp);
    charCodePoints[i] = cp;
    charIds[i] = idToken.value;
    charIdTokens.push(idToken);
  }
  if (!seenCodePoints.has(WORD_START)) {
    fail(`the character table has no entry for U+2581 (▁), which every word starts with`, charCountToken);
  }

  const ruleLeft = new Int32Array(ruleCount);
  const ruleRight = new Int32Array(ruleCount);
  const ruleResult = new Int32Array(ruleCount);
  const ruleTokens: NumberToken[][] = [];
  for (let k = 0; k < ruleCount; k++) {
    const x = next(`rule line ${k + 1} of ${ruleCount}`);
    const y = next(`rule line ${k + 1} of ${ruleCount}`);
    const z = next(`rule line ${k + 1} of ${ruleCount}`);
    ruleLeft[k] = x.value;
    ruleRight[k] = y.value;
    ruleResult[k] = z.value;
    ruleTokens.push([x, y, z]);
  }

  const specialTokens = [next('the unk id (special line "UNK PAD BOS EOS")'), next('the pad id'), next('the bos id'), next('the eos id')];
  if (pos < tokens.length) fail(`unexpected data after the special-token line`, tokens[pos]);
  const [unkId, padId, bosId, eosId] = specialTokens.map((t) => t.value) as [number, number, number, number];
  const vocabSize = charCount + ruleCount + specialTokens.filter((t) => t.value !== -1).length;

  // Every id is claimed exactly once, in [0, vocabSize); then they cover the range exactly.
  const owner = new Int8Array(vocabSize); // 0 free, 1 special, 2 character, 3 rule result
  const claim = (token: NumberToken, kind: 1 | 2 | 3, what: string): void => {
    const id = token.value;
    if (id < 0 || id >= vocabSize) fail(`${what} id ${id} is outside [0, ${vocabSize - 1}] (vocab size ${vocabSize})`, token);
    if (owner[id] !== 0) fail(`${what} id ${id} is already used by another token`, token);
    owner[id] = kind;
  };
  for (const t of specialTokens) {
    if (t.value < -1) fail(`special token id must be -1 (undefined) or a token id, got ${t.value}`, t);
    if (t.value !== -1) claim(t, 1, 'special token');
  }
  for (const t of charIdTokens) claim(t, 2, 'character');
  // Token lengths (UTF-16 units): a chain of rules could otherwise build tokens of any length,
  // exponentially fast, and the tokenizer would spell every one of them out.
  const tokenLength = new Float64Array(vocabSize);
  for (let i = 0; i < charCount; i++) tokenLength[charIds[i]] = charCodePoints[i] > 0xffff ? 2 : 1;
  let totalLength = charCount;
  for (let k = 0; k < ruleCount; k++) {
    const [x, y, z] = ruleTokens[k] as [NumberToken, NumberToken, NumberToken];
    for (const operand of [x, y]) {
      const id = operand.value;
      if (id < 0 || id >= vocabSize || owner[id] < 2) {
        fail(`rule ${k + 1} merges token ${id}, which is not a character or the result of an earlier rule`, operand);
      }
    }
    claim(z, 3, 'rule result');
    const length = tokenLength[x.value] + tokenLength[y.value];
    if (length > MAX_TOKEN_LENGTH) fail(`rule ${k + 1} builds a token of ${length} characters; a BPE token is far shorter (at most ${MAX_TOKEN_LENGTH})`, z);
    tokenLength[z.value] = length;
    totalLength += length;
    if (totalLength > MAX_TOTAL_TOKEN_LENGTH) fail(`the tokens up to rule ${k + 1} hold over ${MAX_TOTAL_TOKEN_LENGTH} characters together, more than any BPE vocabulary`, z);
  }

  return { charCodePoints, charIds, ruleLeft, ruleRight, ruleResult, unkId, padId, bosId, eosId, vocabSize };
}

/** Splits on C isspace (what YTTM's `>>` reader skips) and parses each token as a C int. */
function scanNumbers(bytes: Uint8Array, file: string): NumberToken[] {
  const tokens: NumberToken[] = [];
  let line = 1;
  let lineStart = 0;
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i] as number;
    if (b === 0x0a) {
      line++;
      lineStart = i + 1;
      i++;
      continue;
    }
    if (b === 0x20 || (b >= 0x09 && b <= 0x0d)) {
      i++;
      continue;
    }
    const start = i;
    while (i < n) {
      const c = bytes[i] as number;
      if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) break;
      i++;
    }
    const column = start - lineStart + 1;
    const value = parseCInt(bytes, start, i);
    if (value === undefined) {
      const text = new TextDecoder('latin1').decode(bytes.subarray(start, Math.min(i, start + 40)));
      throw new TokenizerError(
        `malformed tokenizer model ${file}: line ${line}, column ${column} (byte ${start}): expected an integer, got ${JSON.stringify(text)}${i - start > 40 ? '...' : ''}`,
        { file, line, column, offset: start },
      );
    }
    tokens.push({ value, offset: start, line, column });
  }
  return tokens;
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

function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, '0');
}
