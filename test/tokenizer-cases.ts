/**
 * Data-driven YTTM check: every `*-<N>.jsonl` in $RUDOLPH_TOKENIZER_CASES (default: the repository's
 * tokenizer folder) is run against `bpe-<N>.model` (taken from the cases folder if it has one,
 * else from test/data/tokenizer). Every field of every record is compared. A
 * `vocab-<N>.json` beside the cases is compared with `vocab()` as well.
 * Prints failing records, then `N passed, N failed`; exits 1 on any failure or no case file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { TokenIdError } from '../src/tokenizer/errors.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { TOKENIZER_DIR } from './helpers.js';
import './setup.js';

type CaseRecord = Record<string, unknown> & { n?: number; kind?: string };

const casesDir = path.resolve(process.env.RUDOLPH_TOKENIZER_CASES ?? TOKENIZER_DIR);
const MAX_PRINTED = 40;
let passed = 0;
let failed = 0;
let printed = 0;
let vocabFailed = 0;

function report(where: string, problems: string[]): void {
  failed++;
  if (printed++ < MAX_PRINTED) console.log(`FAIL ${where}: ${problems.join('; ')}`);
  else if (printed === MAX_PRINTED + 1) console.log('(further failures not printed)');
}

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

function expectEqual(problems: string[], field: string, actual: unknown, expected: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) problems.push(`${field}: got ${short(actual)}, expected ${short(expected)}`);
}

function attempt<T>(problems: string[], field: string, run: () => T): T | undefined {
  try {
    return run();
  } catch (error) {
    problems.push(`${field}: threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    return undefined;
  }
}

function checkRecord(tok: YttmTokenizer, record: CaseRecord): string[] {
  const problems: string[] = [];
  const specials = [tok.padId, tok.unkId, tok.bosId, tok.eosId].filter((id) => id >= 0);
  switch (record.kind) {
    case 'encode': {
      const input = record.input as string;
      const ids = attempt(problems, 'ids', () => tok.encode(input));
      if ('ids' in record) expectEqual(problems, 'ids', ids, record.ids);
      if ('ids_bos_eos' in record) {
        expectEqual(problems, 'ids_bos_eos', attempt(problems, 'ids_bos_eos', () => tok.encode(input, { bos: true, eos: true })), record.ids_bos_eos);
      }
      if ('subwords' in record) {
        expectEqual(problems, 'subwords', attempt(problems, 'subwords', () => tok.encode(input, { output: 'subword' })), record.subwords);
      }
      if ('decoded' in record) {
        expectEqual(problems, 'decoded', attempt(problems, 'decoded', () => tok.decode(record.ids as number[])), record.decoded);
        if (ids) expectEqual(problems, 'decoded(our ids)', attempt(problems, 'decoded', () => tok.decode(ids)), record.decoded);
      }
      if ('decoded_bos_eos_ignore_special' in record) {
        const decodeSpecial = (x: number[]): string => tok.decode(x, { ignoreIds: specials });
        expectEqual(problems, 'decoded_bos_eos_ignore_special', attempt(problems, 'decoded_bos_eos_ignore_special', () => decodeSpecial(record.ids_bos_eos as number[])), record.decoded_bos_eos_ignore_special);
      }
      if ('has_unk' in record && ids) expectEqual(problems, 'has_unk', ids.includes(tok.unkId), record.has_unk);
      break;
    }
    case 'encode_dropout': {
      const input = record.input as string;
      const dropoutProb = record.dropout_prob as number;
      if ('ids' in record) {
        expectEqual(problems, 'ids', attempt(problems, 'ids', () => tok.encode(input, { dropoutProb, seed: 0 })), record.ids);
      }
      if ('subwords' in record) {
        expectEqual(problems, 'subwords', attempt(problems, 'subwords', () => tok.encode(input, { output: 'subword', dropoutProb, seed: 0 })), record.subwords);
      }
      break;
    }
    case 'decode': {
      const ids = record.ids as number[];
      const ignoreIds = (record.ignore_ids as number[] | null) ?? null;
      try {
        const output = tok.decode(ids, { ignoreIds });
        if ('error' in record) problems.push(`expected error ${short(record.error)}, got output ${short(output)}`);
        else expectEqual(problems, 'output', output, record.output);
      } catch (error) {
        if (!('error' in record)) problems.push(`threw ${error instanceof Error ? error.message : String(error)}`);
        else if (!(error instanceof TokenIdError)) problems.push(`threw ${String(error)}, expected a TokenIdError`);
        else expectEqual(problems, 'error', error.message, record.error);
      }
      break;
    }
    case 'subword_to_id':
      expectEqual(problems, 'id', attempt(problems, 'id', () => tok.subwordToId(record.subword as string)), record.id);
      break;
    default:
      problems.push(`unknown record kind ${short(record.kind)}`);
  }
  return problems;
}

async function main(): Promise<number> {
  if (!existsSync(casesDir)) {
    console.log(`no case folder ${casesDir}`);
    return 1;
  }
  const caseFiles = readdirSync(casesDir).filter((f) => /-\d+\.jsonl$/.test(f)).sort();
  if (caseFiles.length === 0) {
    console.log(`no *-<N>.jsonl case files in ${casesDir}`);
    console.log('0 passed, 0 failed');
    return 1;
  }
  const tokenizers = new Map<string, YttmTokenizer>();
  for (const file of caseFiles) {
    const size = /-(\d+)\.jsonl$/.exec(file)?.[1] as string;
    const local = path.join(casesDir, `bpe-${size}.model`);
    const modelPath = existsSync(local) ? local : path.join(TOKENIZER_DIR, `bpe-${size}.model`);
    let tok = tokenizers.get(modelPath);
    if (!tok) {
      tok = await YttmTokenizer.fromFile(modelPath);
      tokenizers.set(modelPath, tok);
    }
    const before = { passed, failed };
    const lines = readFileSync(path.join(casesDir, file), 'utf8').split('\n');
    lines.forEach((line, index) => {
      if (line.trim() === '') return;
      let record: CaseRecord;
      try {
        record = JSON.parse(line) as CaseRecord;
      } catch {
        report(`${file}:${index + 1}`, ['line is not JSON']);
        return;
      }
      const problems = checkRecord(tok as YttmTokenizer, record);
      if (problems.length === 0) passed++;
      else report(`${file} n=${record.n ?? index} (${record.kind}${record.category ? `/${String(record.category)}` : ''})`, problems);
    });
    console.log(`${file} (${path.basename(modelPath)}): ${passed - before.passed} passed, ${failed - before.failed} failed`);

    const vocabFile = path.join(casesDir, `vocab-${size}.json`);
    if (existsSync(vocabFile)) {
      const expected = JSON.parse(readFileSync(vocabFile, 'utf8')) as unknown;
      const actual = tok.vocab();
      if (isDeepStrictEqual(actual, expected)) {
        console.log(`vocab-${size}.json: vocab() matches (${actual.length} tokens)`);
      } else {
        vocabFailed++;
        const list = Array.isArray(expected) ? (expected as unknown[]) : [];
        const firstDiff = actual.findIndex((piece, i) => piece !== list[i]);
        console.log(`FAIL vocab-${size}.json: vocab() differs (length ${actual.length} vs ${list.length}, first difference at id ${firstDiff})`);
      }
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 || vocabFailed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
