import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InputError, RudolphError } from '../src/errors.js';
import { TokenIdError, TokenizerError } from '../src/tokenizer/errors.js';
import { encodeText, IdListTokenizer, prepareText } from '../src/tokenizer/text-encoding.js';
import { YttmTokenizer } from '../src/tokenizer/yttm.js';
import { uniformSource } from '../src/util/random.js';
import { TOKENIZER_DIR } from './helpers.js';
import { peakMemory } from '../fuzz/lib/memory.js';

const MODEL_16384 = path.join(TOKENIZER_DIR, 'bpe-16384.model');
const MODEL_512 = path.join(TOKENIZER_DIR, 'bpe-512.model');
const tok = await YttmTokenizer.fromFile(MODEL_16384);
const tok512 = await YttmTokenizer.fromFile(MODEL_512);

/** A hand-written model: ▁=3, a=4, b=5, rules a+b=6, ▁+a=7; unk 0, pad 1, no bos, eos 2. */
const TINY_MODEL = '3 2\n9601 3\n97 4\n98 5\n4 5 6\n3 4 7\n0 1 -1 2\n';

function loadError(text: string, name = 'tiny.model'): TokenizerError {
  try {
    YttmTokenizer.fromBuffer(Buffer.from(text, 'utf8'), name);
  } catch (error) {
    assert.ok(error instanceof TokenizerError, `expected TokenizerError, got ${String(error)}`);
    assert.equal(error.code, 'TOKENIZER');
    assert.equal(error.file, name);
    assert.ok(error.message.includes(name), error.message);
    return error;
  }
  assert.fail('model loaded although it is malformed');
}

describe('loading bpe.model', () => {
  it('reads the shared models with the documented sizes and specials', () => {
    assert.equal(tok.vocabSize, 16384);
    assert.equal(tok512.vocabSize, 512);
    assert.deepEqual([tok.padId, tok.unkId, tok.bosId, tok.eosId], [0, 1, 2, 3]);
    assert.equal(tok.idToSubword(4), '▁');
  });

  it('names a missing file', async () => {
    await assert.rejects(YttmTokenizer.fromFile('/nonexistent/bpe.model'), (error: unknown) => {
      assert.ok(error instanceof TokenizerError);
      assert.ok(error.message.includes('/nonexistent/bpe.model'));
      return true;
    });
  });

  it('reports a non-numeric token with its line and column', () => {
    const error = loadError('3 2\n9601 3\n97 x4\n98 5\n4 5 6\n3 4 7\n0 1 -1 2\n');
    assert.equal(error.line, 3);
    assert.equal(error.column, 4);
    assert.equal(error.offset, 14);
    assert.match(error.message, /line 3, column 4/);
    assert.match(error.message, /"x4"/);
  });

  it('rejects a truncated file, trailing data and a corrupt header', () => {
    const full = readFileSync(MODEL_512);
    assert.throws(() => YttmTokenizer.fromBuffer(full.subarray(0, full.length - 20), 'cut.model'), (error: unknown) => {
      assert.ok(error instanceof TokenizerError);
      assert.match(error.message, /cut\.model/);
      return true;
    });
    assert.match(loadError(TINY_MODEL + '7\n').message, /after the special-token line/);
    assert.match(loadError('999999 2\n9601 3\n').message, /header announces/);
    assert.match(loadError('3').message, /file ends early: expected the rule count/);
  });

  it('rejects ids that are out of range, reused or undefined when a rule uses them', () => {
    assert.match(loadError('3 2\n9601 3\n97 4\n98 9\n4 5 6\n3 4 7\n0 1 -1 2\n').message, /line 4.*character id 9 is outside \[0, 7\]/);
    assert.match(loadError('3 2\n9601 3\n97 4\n98 4\n4 5 6\n3 4 7\n0 1 -1 2\n').message, /already used/);
    assert.match(loadError('3 2\n9601 3\n97 4\n98 5\n4 7 6\n3 4 7\n0 1 -1 2\n').message, /rule 1 merges token 7/);
    assert.match(loadError('3 2\n9601 3\n97 4\n97 5\n4 5 6\n3 4 7\n0 1 -1 2\n').message, /listed twice/);
    assert.match(loadError('3 2\n32 3\n97 4\n98 5\n4 5 6\n3 4 7\n0 1 -1 2\n').message, /U\+2581/);
    assert.match(loadError('3 2\n9601 3\n55296 4\n98 5\n4 5 6\n3 4 7\n0 1 -1 2\n').message, /not a Unicode scalar value/);
  });

  it('refuses rules that build ever longer tokens (doubling to a RangeError or gigabytes before)', () => {
    // ▁=0, a=1; rule k merges the previous result with itself: token k+1 has 2^k characters
    const doubling = ['2 40', '9601 0', '97 1', '1 1 2', ...Array.from({ length: 39 }, (_, k) => `${k + 2} ${k + 2} ${k + 3}`), '-1 -1 -1 -1'].join('\n');
    const t0 = performance.now();
    assert.match(loadError(doubling).message, /rule 12 builds a token of 4096 characters|rule 13 builds a token of 8192 characters/);
    assert.ok(performance.now() - t0 < 500);
    // a long chain (token k has k+1 characters): fine until the bound
    const chain = (rules: number): string => ['2 ' + rules, '9601 0', '97 1', '1 1 2', ...Array.from({ length: rules - 1 }, (_, k) => `${k + 2} 1 ${k + 3}`), '-1 -1 -1 -1'].join('\n');
    assert.equal(YttmTokenizer.fromBuffer(Buffer.from(chain(4000))).vocabSize, 4002);
    assert.match(loadError(chain(5000)).message, /rule 4096 builds a token of 4097 characters; a BPE token is far shorter \(at most 4096\)/);
  });

  it('a model file of millions of numbers is parsed compactly; past 16 MiB it is refused unread', () => {
    const numbers = Buffer.from('1\n'.repeat(8 * 2 ** 20)); // 16 MiB: 450 MB and 3.6 s as one object per number
    const memory = peakMemory();
    const t0 = performance.now();
    assert.match(loadError(numbers.toString('latin1')).message, /line 1, column 1 \(byte 0\): the character table has no entry for U\+2581/);
    assert.ok(memory.growthMB() < 150, `grew ${memory.growthMB()} MB`);
    assert.ok(performance.now() - t0 < 5000);
    assert.match(loadError(numbers.toString('latin1') + '1').message, /16777217 bytes, more than the 16777216 a tokenizer model may have/);
  });

  it('serves a model with an undefined special token', () => {
    const tiny = YttmTokenizer.fromBuffer(Buffer.from(TINY_MODEL), 'tiny.model');
    assert.equal(tiny.vocabSize, 8);
    // a+b has the better rank, so "ab" never becomes ▁a + b.
    assert.deepEqual(tiny.encode('ab a\tb'), [3, 6, 7, 3, 5]);
    assert.deepEqual(tiny.encode('ab', { output: 'subword', eos: true }), ['▁', 'ab', '<EOS>']);
    assert.deepEqual(tiny.encode('ac'), [7, 0]);
    assert.equal(tiny.subwordToId('<BOS>'), -1);
    assert.throws(() => tiny.encode('a', { bos: true }), TokenizerError);
    assert.deepEqual(tiny.vocab(), ['<UNK>', '<PAD>', '<EOS>', '▁', 'a', 'b', 'ab', '▁a']);
  });
});

describe('encode', () => {
  it('matches documented edge cases (YTTM-FORMAT §8)', () => {
    assert.deepEqual(tok.encode('привет мир'), [12961, 3580]);
    for (const same of [' привет', '  привет   мир  ', 'привет\nмир', 'привет▁мир', 'привет\x0bмир']) {
      assert.deepEqual(tok.encode(same).slice(0, 1), [12961], same);
    }
    assert.deepEqual(tok.encode('привет\u00a0мир'), [12961, 105, 715, 12]);
    assert.deepEqual(tok.encode('🐱а🐶'), [4, 1, 7, 1]);
    assert.deepEqual(tok.encode('🐱🐶', { output: 'subword' }), ['▁', '🐱🐶']);
    assert.deepEqual(tok.encode(''), []);
    assert.deepEqual(tok.encode(' \n\t▁'), []);
    assert.equal(tok.encode('x'.repeat(10000)).length, 2501);
  });

  it('applies bos, eos and reverse to ids and subwords', () => {
    assert.deepEqual(tok.encode('привет мир', { bos: true, eos: true, reverse: true }), [3, 3580, 12961, 2]);
    assert.deepEqual(tok.encode('привет мир', { output: 'subword', bos: true, eos: true }), ['<BOS>', '▁привет', '▁мир', '<EOS>']);
    assert.deepEqual(tok.encodeBatch(['привет', 'мир'], { eos: true }), [tok.encode('привет', { eos: true }), tok.encode('мир', { eos: true })]);
  });

  it('replaces lone surrogates by U+FFFD, as TextEncoder does', () => {
    for (const [broken, fixed] of [
      ['к\ud800т', 'к\ufffdт'],
      ['кот\udc00', 'кот\ufffd'],
      ['\udbff\ud800 🐱', '\ufffd\ufffd 🐱'],
    ] as const) {
      assert.deepEqual(tok.encode(broken), tok.encode(fixed));
      assert.deepEqual(tok.encode(broken, { output: 'subword' }), tok.encode(fixed, { output: 'subword' }));
    }
    assert.ok(tok.encode('к\ud800т', { output: 'subword' }).some((piece) => piece.includes('\ufffd')));
    assert.deepEqual(tok.encode('🐱'), [4, 1]); // a proper pair stays one astral character
  });

  it('rejects bad arguments with InputError', () => {
    assert.throws(() => tok.encode(42 as unknown as string), InputError);
    for (const dropoutProb of [-0.1, 1.5, Number.NaN]) assert.throws(() => tok.encode('кот', { dropoutProb }), InputError);
    assert.throws(() => tok.encode('кот', { output: 'piece' as 'id' }), InputError);
  });

  it('agrees with a direct transcription of the reference pseudo-code on fuzz strings', () => {
    for (const [file, model] of [[MODEL_16384, tok], [MODEL_512, tok512]] as const) {
      const reference = new ReferenceBpe(readFileSync(file, 'utf8'));
      const rand = uniformSource(file.length);
      for (let i = 0; i < 300; i++) {
        const text = fuzzText(rand, i % 10 === 0 ? 400 : 40);
        const expected = reference.encode(text);
        assert.deepEqual(model.encode(text), expected.map((s) => s.id), JSON.stringify(text));
        assert.deepEqual(model.encode(text, { output: 'subword' }), expected.map((s) => s.piece), JSON.stringify(text));
      }
    }
  });

  it('gives the same result without the word cache', async () => {
    const uncached = await YttmTokenizer.fromFile(MODEL_16384, { cacheSize: 0 });
    const text = 'на картинке изображено: кот, кот и ещё раз кот 🐱 Кот';
    assert.deepEqual(uncached.encode(text), tok.encode(text));
    assert.deepEqual(uncached.encode(text), tok.encode(text)); // second call served from tok's cache
  });
});

describe('BPE-dropout', () => {
  const text = 'старинный замок на вершине горы в лучах заката, девушка в красном платье идёт по осеннему парку';

  it('with probability 0 equals plain encode', () => {
    assert.deepEqual(tok.encode(text, { dropoutProb: 0, seed: 7 }), tok.encode(text));
  });

  it('with probability 1 merges nothing', () => {
    const pieces = tok.encode('замок кот', { output: 'subword', dropoutProb: 1 });
    assert.deepEqual(pieces, ['▁', 'з', 'а', 'м', 'о', 'к', '▁', 'к', 'о', 'т']);
  });

  it('is reproducible with a seed or an rng, and varies between seeds', () => {
    const a = tok.encode(text, { dropoutProb: 0.3, seed: 1 });
    assert.deepEqual(tok.encode(text, { dropoutProb: 0.3, seed: 1 }), a);
    assert.deepEqual(tok.encode(text, { dropoutProb: 0.3, rng: uniformSource(99) }), tok.encode(text, { dropoutProb: 0.3, rng: uniformSource(99) }));
    const outcomes = new Set([1, 2, 3, 4, 5].map((seed) => tok.encode(text, { dropoutProb: 0.3, seed }).join(',')));
    assert.ok(outcomes.size > 1);
    // Dropped merges only split tokens further: the text decodes the same, with more tokens.
    assert.equal(tok.decode(a), tok.decode(tok.encode(text)));
    assert.ok(a.length > tok.encode(text).length);
    assert.ok(a.length < tok.encode(text, { dropoutProb: 1 }).length);
  });
});

describe('decode and vocabulary', () => {
  it('follows YTTM rules for spaces and specials', () => {
    assert.equal(tok.decode([4]), '');
    assert.equal(tok.decode([4, 4]), ' ');
    assert.equal(tok.decode([2, 12961, 3]), '<BOS> привет<EOS>');
    assert.equal(tok.decode([2, 12961, 3580, 3, 0, 0], { ignoreIds: [0, 1, 2, 3] }), 'привет мир');
    assert.equal(tok.decode(Int32Array.from([12961, 3580])), 'привет мир');
    assert.equal(tok.decode(tok.encode('  на   картинке\tизображено:\nкот ')), 'на картинке изображено: кот');
  });

  it('throws TokenIdError with the YTTM message for ids out of range', () => {
    assert.throws(() => tok.decode([12961, 16384]), (error: unknown) => {
      assert.ok(error instanceof TokenIdError && error instanceof RudolphError);
      assert.equal(error.code, 'TOKENIZER');
      assert.equal(error.message, 'id must be in the range [0, vocab_size - 1]. Current value: vocab_size = 16384; id=16384;');
      assert.equal(error.id, 16384);
      return true;
    });
    assert.throws(() => tok.decode([-1]), TokenIdError);
    assert.throws(() => tok.decode([1.5]), TokenIdError);
    assert.equal(tok.decode([2, -1, 12961], { ignoreIds: [-1, 2] }), 'привет');
    assert.throws(() => tok.idToSubword(16384), TokenIdError);
  });

  it('round-trips ids and token strings over the whole vocabulary', () => {
    const expected = JSON.parse(readFileSync(path.join(TOKENIZER_DIR, 'vocab-16384.json'), 'utf8')) as string[];
    const vocab = tok.vocab();
    assert.deepEqual(vocab, expected);
    for (let id = 0; id < tok.vocabSize; id++) {
      assert.equal(tok.idToSubword(id), vocab[id]);
      assert.equal(tok.subwordToId(vocab[id] as string), id);
    }
    for (const unknown of ['', ' кот', '<unk>', 'не-токен-вовсе']) assert.equal(tok.subwordToId(unknown), tok.unkId);
  });
});

describe('RUDOLPH text layout', () => {
  const ids = new IdListTokenizer(256);

  it('puts bos, the special token, the ids and eos, then pads with 0', () => {
    assert.deepEqual([...encodeText(ids, '5 6', 8, 130)], [2, 130, 5, 6, 3, 0, 0, 0]);
    assert.deepEqual([...encodeText(ids, '5 6', 8, null)], [2, 5, 6, 3, 0, 0, 0, 0]);
    assert.deepEqual([...encodeText(ids, '', 4, 131)], [2, 131, 3, 0]);
    assert.deepEqual([...encodeText(ids, '5 6', 5, 130)], [2, 130, 5, 6, 3]);
  });

  it('cuts a long text at the length, losing its eos, as the golden API cases show', () => {
    assert.deepEqual([...encodeText(ids, '5 6 7 8 9', 5, 130)], [2, 130, 5, 6, 7]);
    assert.deepEqual([...encodeText(ids, '5 6 7', 1, null)], [2]);
    assert.throws(() => encodeText(ids, '5', 0, null), InputError);
    assert.throws(() => encodeText(ids, '5', 8, -1), InputError);
  });

  it('works with the YTTM tokenizer through asTextTokenizer()', () => {
    const text = tok.asTextTokenizer();
    assert.equal(text.vocabSize, 16384);
    const encoded = encodeText(text, 'на картинке изображено: кот', 12, 16386);
    assert.deepEqual([...encoded], [2, 16386, 643, 13221, 9, 945, 2054, 1230, 56, 14081, 3, 0]);
    assert.equal(text.decode(encoded, [0, 1, 2, 3, 16386]), 'на картинке изображено: кот');
  });
});

describe('prepareText (Python lower().strip())', () => {
  it('lowercases like Python, including special casing and final sigma', () => {
    assert.equal(prepareText('Кот В Сапогах'), 'кот в сапогах');
    assert.equal(prepareText('İ'), 'i\u0307');
    assert.equal(prepareText('ΟΔΟΣ ΑΣ'), 'οδος ας');
    assert.equal(prepareText('\u1e9e'), 'ß');
    assert.equal(prepareText('ЁЖ'), 'ёж');
  });

  it('strips Python whitespace, not JS trim() whitespace', () => {
    assert.equal(prepareText('\x1c\x1d\x1e\x1f\x85 \t\nКот\u3000\u2028\u00a0'), 'кот');
    assert.equal(prepareText('\ufeffКот\ufeff'), '\ufeffкот\ufeff');
    assert.equal(prepareText('  кот  и  пёс  '), 'кот  и  пёс');
    assert.equal(prepareText(' \u2029 '), '');
    assert.throws(() => prepareText(undefined as unknown as string), InputError);
  });
});

describe('IdListTokenizer (golden stand-in)', () => {
  const ids = new IdListTokenizer(200);

  it('parses whitespace-separated ids and joins kept ids with spaces', () => {
    assert.deepEqual(ids.encode('  109 55\t63\n'), [109, 55, 63]);
    assert.deepEqual(ids.encode(''), []);
    assert.equal(ids.decode([2, 130, 109, 55, 3, 0, 0], [0, 1, 2, 3, 130]), '109 55');
    assert.equal(ids.decode(Int32Array.from([5, 6])), '5 6');
  });

  it('rejects non-integers and ids outside the vocabulary', () => {
    assert.throws(() => ids.encode('1 x'), InputError);
    assert.throws(() => ids.encode('1.5'), InputError);
    assert.throws(() => ids.encode('200'), InputError);
    assert.throws(() => new IdListTokenizer(0), InputError);
  });
});

/** YTTM-FORMAT.md §4 transcribed literally (string symbols, rescanning loop); slow but obvious. */
class ReferenceBpe {
  private readonly charId = new Map<string, number>();
  private readonly rule = new Map<string, { rank: number; z: number }>();
  private readonly strings = new Map<number, string>();
  private readonly unkId: number;

  constructor(modelText: string) {
    const numbers = modelText.trim().split(/\s+/).map(Number);
    let p = 0;
    const n = numbers[p++] as number;
    const m = numbers[p++] as number;
    for (let i = 0; i < n; i++) {
      const ch = String.fromCodePoint(numbers[p++] as number);
      const id = numbers[p++] as number;
      this.charId.set(ch, id);
      this.strings.set(id, ch);
    }
    for (let k = 0; k < m; k++) {
      const x = numbers[p++] as number;
      const y = numbers[p++] as number;
      const z = numbers[p++] as number;
      this.rule.set(`${x} ${y}`, { rank: k, z });
      this.strings.set(z, `${this.strings.get(x)}${this.strings.get(y)}`);
    }
    this.unkId = numbers[p] as number;
  }

  encode(text: string): { id: number; piece: string }[] {
    const out: { id: number; piece: string }[] = [];
    for (const word of text.replace(/\p{Cs}/gu, '\ufffd').split(/[\t\n\v\f\r ▁]+/).filter((w) => w !== '')) {
      const syms: { id: number; unk: string | null }[] = [{ id: this.charId.get('▁') as number, unk: null }];
      for (const ch of word) {
        const id = this.charId.get(ch);
        const last = syms[syms.length - 1] as { id: number; unk: string | null };
        if (id !== undefined) syms.push({ id, unk: null });
        else if (last.unk !== null) last.unk += ch;
        else syms.push({ id: -1, unk: ch });
      }
      for (;;) {
        let best: { at: number; rank: number; z: number } | null = null;
        for (let i = 0; i + 1 < syms.length; i++) {
          const a = syms[i] as { id: number; unk: string | null };
          const b = syms[i + 1] as { id: number; unk: string | null };
          if (a.unk !== null || b.unk !== null) continue;
          const r = this.rule.get(`${a.id} ${b.id}`);
          if (r && (best === null || r.rank < best.rank)) best = { at: i, rank: r.rank, z: r.z };
        }
        if (best === null) break;
        syms.splice(best.at, 2, { id: best.z, unk: null });
      }
      for (const s of syms) out.push(s.unk !== null ? { id: this.unkId, piece: s.unk } : { id: s.id, piece: this.strings.get(s.id) as string });
    }
    return out;
  }
}

function fuzzText(rand: () => number, maxLength: number): string {
  const pools = [
    'оеаинтсрвлкмдпуяызьбгчйхжшюцщэфъё',
    'abcdefxyz0123456789',
    '.,:;!?-()«»"\'|+=/%',
    ' ',
    '\t\n\r\v\f▁\u00a0\u3000\u2028\u0085\u200b\ufeff\u0000\u0301',
    'АБВГДЁЖЩЯ',
    '🐱🐶𝔸\u{10ffff}中文한',
  ].map((pool) => [...pool]);
  pools.push(['\ud800', '\udbff', '\udc00']); // lone surrogates (a high one may pair with a following low one)
  const weights = [0.55, 0.1, 0.08, 0.14, 0.05, 0.03, 0.03, 0.02];
  const length = 1 + Math.floor(rand() * maxLength);
  let text = '';
  while (text.length < length) {
    if (rand() < 0.03) {
      text += (rand() < 0.5 ? 'x' : 'ааб').repeat(1 + Math.floor(rand() * 30));
      continue;
    }
    let r = rand();
    let pool = 0;
    while (pool < weights.length - 1 && r >= (weights[pool] as number)) r -= weights[pool++] as number;
    const chars = pools[pool] as string[];
    text += chars[Math.floor(rand() * chars.length)];
  }
  return text;
}
