/**
 * A short seeded run of the fuzzer (npm run fuzz does the long ones): every target, a few hundred
 * inputs, no finding. And the harness itself: it must see every kind of finding it promises.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzTarget } from '../fuzz/harness.js';
import { TARGET_NAMES } from '../fuzz/targets/index.js';

const COUNT = 150;
const SEED = 20261201;

describe('fuzzer', () => {
  it('the harness reports typed and untyped errors, slow inputs, memory blow-ups and hangs', { timeout: 60_000 }, async () => {
    const report = await fuzzTarget(new URL('./fuzz-harness-target.ts', import.meta.url).href, {
      count: 7, seed: 1, timeLimitMs: 300, memoryLimitMB: 60, hangMs: 12_000,
    });
    const seen = JSON.stringify(report);
    assert.equal(report.inputs, 7);
    assert.deepEqual(report.outcomes, { ok: 4, INPUT: 1, 'UNTYPED TypeError': 1, HANG: 1 }, seen);
    // (on a very busy machine the memory input may also count as slow: page faults cost CPU time)
    const kinds = report.findings.map((f) => `${f.i} ${f.kind}`).filter((k) => k !== '4 slow');
    assert.deepEqual(kinds, ['2 untyped', '3 slow', '4 memory', '5 hang'], seen);
    assert.equal(report.workerRestarts, 1);
    assert.ok(report.largestMemory && report.largestMemory.i === 4 && report.largestMemory.growthMB >= 100, JSON.stringify(report.largestMemory));
    assert.equal(report.slowest?.i, 3, seen);
  });

  for (const name of TARGET_NAMES) {
    it(`${name}: ${COUNT} seeded inputs end in a typed error or a valid result, in time and memory`, { timeout: 60_000 }, async () => {
      const report = await fuzzTarget(name, { count: COUNT, seed: SEED });
      assert.equal(report.inputs, COUNT);
      assert.deepEqual(report.findings.map((f) => `#${f.i} ${f.kind} ${f.outcome}: ${f.detail ?? ''}`), []);
      // the inputs reach both sides: some are accepted, some refused
      assert.ok((report.outcomes.ok ?? 0) > 0, `no input was accepted: ${JSON.stringify(report.outcomes)}`);
      assert.ok(Object.keys(report.outcomes).some((k) => k !== 'ok'), `no input was refused: ${JSON.stringify(report.outcomes)}`);
    });
  }
});
