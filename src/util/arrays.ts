/** Small array helpers shared by tasks, generation and training. */
import { InputError } from '../errors.js';

/** `items` in consecutive groups of `size` (the last may be shorter). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  checkCount(size, 'batchSize');
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The parts one after another in one Int32Array (token rows). */
export function concat(...parts: ArrayLike<number>[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** A count option: an integer in [1, max], else an InputError naming it. */
export function checkCount(value: number, what: string, max = 100000): void {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new InputError(`${what} must be an integer in [1, ${max}], got ${value}`);
}
