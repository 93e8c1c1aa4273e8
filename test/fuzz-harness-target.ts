/** A fuzz target that misbehaves on purpose, input by input, to prove the harness sees each kind of finding. */
import { InputError } from '../src/errors.js';
import type { FuzzTarget } from '../fuzz/target.js';

export const BEHAVIOURS = ['ok', 'typed', 'untyped', 'slow', 'memory', 'hang', 'ok'] as const;

export const target: FuzzTarget = {
  name: 'harness-check',
  description: 'one behaviour per input index',
  async setup() {},
  input: (_rng, i) => Uint8Array.of(i),
  async run(input) {
    switch (BEHAVIOURS[input[0]]) {
      case 'typed': throw new InputError('refused cleanly');
      case 'untyped': throw new TypeError('a crash deep inside');
      case 'slow': { // busy for 0.6 s of CPU time (the verdict is on CPU time)
        const start = process.cpuUsage();
        while (process.cpuUsage(start).user < 600_000) { /* spin */ }
        return;
      }
      case 'memory': {
        const big = Buffer.alloc(120 * 2 ** 20, 1);
        if (big[123] !== 1) throw new Error('unreachable');
        return;
      }
      case 'hang': for (;;) { /* never returns */ }
      default: return;
    }
  },
};
