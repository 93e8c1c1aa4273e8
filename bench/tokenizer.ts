/**
 * YTTM tokenizer throughput on a seeded pseudo-Russian corpus (>= 5 MB UTF-8), one core,
 * with bpe-16384.model. Run directly: `npx tsx bench/tokenizer.ts` prints JSON.
 *
 * The corpus: caption-like sentences of words built from the model's own vocabulary
 * (a lexicon of 120k forms: a Cyrillic word-start token, often followed by a Cyrillic
 * continuation token), drawn with Zipf-like frequencies, commas, numbers, some capitalised sentence starts (uppercase is
 * unknown to this lowercased model, like raw text would be) and line breaks. The C++ library
 * was measured at ~13.6 MB/s on this machine type (shared/tokenizer/README.md), on the real
 * lowercased training corpus encoded line by line.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { uniformSource } from '../src/util/random.js';
import { TOKENIZER_DIR } from '../test/helpers.js';

const MODEL_PATH = path.join(TOKENIZER_DIR, 'bpe-16384.model');
const CORPUS_BYTES = 5 * 1024 * 1024;
const CYRILLIC = /^[а-яё]+$/;
const LEXICON_SIZE = 120_000;

function buildCorpus(tok: YttmTokenizer, seed: number): string[] {
  const rand = uniformSource(seed);
  const vocab = tok.vocab();
  const stems = vocab.filter((p) => p.startsWith('▁') && CYRILLIC.test(p.slice(1)) && p.length >= 3).map((p) => p.slice(1));
  const endings = vocab.filter((p) => CYRILLIC.test(p) && p.length <= 4);
  // Log-uniform index: frequency ~ 1/rank, like words in natural text.
  const zipf = <T>(list: T[]): T => list[Math.min(list.length - 1, Math.floor(Math.exp(rand() * Math.log(list.length + 1))) - 1)] as T;
  // A fixed lexicon of word forms (stem + optional ending), then words drawn from it by rank:
  // a 5 MB Russian text has on the order of 10^5 distinct word forms.
  const lexicon = new Set<string>();
  while (lexicon.size < LEXICON_SIZE) lexicon.add(rand() < 0.55 ? zipf(stems) + zipf(endings) : zipf(stems));
  const forms = [...lexicon];
  const word = (): string => {
    if (rand() < 0.04) return String(Math.floor(rand() * (rand() < 0.5 ? 100 : 10000)));
    return zipf(forms);
  };
  const sentence = (): string => {
    const count = 4 + Math.floor(rand() * 12);
    const words: string[] = [];
    for (let i = 0; i < count; i++) {
      let w = word();
      if (i === 0 && rand() < 0.3) w = w.charAt(0).toUpperCase() + w.slice(1);
      if (i < count - 1 && rand() < 0.1) w += ',';
      if (rand() < 0.02) w = `«${w}»`;
      words.push(w);
    }
    const end = rand();
    return words.join(' ') + (end < 0.8 ? '.' : end < 0.9 ? '!' : '?');
  };
  const lines: string[] = [];
  let bytes = 0;
  while (bytes < CORPUS_BYTES) {
    const parts = 1 + Math.floor(rand() * 3);
    const sentences: string[] = [];
    for (let i = 0; i < parts; i++) sentences.push(sentence());
    const line = sentences.join(' ');
    lines.push(line);
    bytes += Buffer.byteLength(line, 'utf8') + 1;
  }
  return lines;
}

function seconds(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

export async function benchTokenizer(): Promise<Record<string, number>> {
  const tok = await YttmTokenizer.fromFile(MODEL_PATH);
  const lines = buildCorpus(tok, 1234);
  const corpusMB = lines.reduce((sum, line) => sum + Buffer.byteLength(line, 'utf8') + 1, 0) / 1e6;

  let tokens = 0;
  const encodeAll = (t: YttmTokenizer): number[][] => lines.map((line) => t.encode(line));
  const firstPass = seconds(() => {
    tokens = encodeAll(tok).reduce((sum, ids) => sum + ids.length, 0);
  });
  const warm: number[] = [];
  for (let i = 0; i < 3; i++) warm.push(seconds(() => encodeAll(tok)));

  const uncached = await YttmTokenizer.fromFile(MODEL_PATH, { cacheSize: 0 });
  encodeAll(uncached); // JIT warm-up
  const uncachedTime = seconds(() => encodeAll(uncached));

  const encoded = encodeAll(tok);
  const ignoreIds = [0, 1, 2, 3];
  let decodedBytes = 0;
  for (const ids of encoded) decodedBytes += Buffer.byteLength(tok.decode(ids, { ignoreIds }), 'utf8');
  const decodeTimes: number[] = [];
  for (let i = 0; i < 3; i++) decodeTimes.push(seconds(() => encoded.forEach((ids) => tok.decode(ids, { ignoreIds }))));

  const warmTime = median(warm);
  const decodeTime = median(decodeTimes);
  return {
    corpus_distinct_words: new Set(lines.flatMap((line) => line.split(' '))).size,
    corpus_mb: round(corpusMB),
    corpus_lines: lines.length,
    tokens,
    encode_mb_s: round(corpusMB / warmTime),
    encode_first_pass_mb_s: round(corpusMB / firstPass),
    encode_uncached_mb_s: round(corpusMB / uncachedTime),
    encode_mtokens_s: round(tokens / warmTime / 1e6),
    decode_mb_s: round(decodedBytes / 1e6 / decodeTime),
    decode_mtokens_s: round(tokens / decodeTime / 1e6),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  benchTokenizer().then(
    (result) => console.log(JSON.stringify(result, null, 2)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
