/**
 * Learning-rate schedules as factors of the base rate, with the semantics of Hugging Face's
 * `get_*_schedule_with_warmup`: step s counts optimizer steps already taken (the first update
 * uses s = 0); warmup rises linearly as s / warmup, then constant, linear decay to 0 at
 * `totalSteps`, or a half cosine. `minRatio` keeps the decay above a floor.
 */
import { TrainingError } from './errors.js';

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  kind: ScheduleKind;
  warmupSteps?: number;
  /** required for 'linear' and 'cosine' */
  totalSteps?: number;
  /** floor of the decay as a fraction of the base rate (default 0) */
  minRatio?: number;
}

/** step (optimizer steps taken, 0-based) → factor of the base learning rate */
export type LrSchedule = (step: number) => number;

export function lrSchedule(opts: ScheduleOptions): LrSchedule {
  const warmup = opts.warmupSteps ?? 0;
  const minRatio = opts.minRatio ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) throw new TrainingError(`schedule: warmupSteps must be a non-negative integer, got ${warmup}`);
  if (!(minRatio >= 0 && minRatio <= 1)) throw new TrainingError(`schedule: minRatio must be in [0, 1], got ${minRatio}`);
  const total = opts.totalSteps;
  if (opts.kind !== 'constant' && (total === undefined || !Number.isInteger(total) || total < warmup)) {
    throw new TrainingError(`schedule: '${opts.kind}' needs an integer totalSteps ≥ warmupSteps (${warmup}), got ${total}`);
  }
  const floor = (f: number) => minRatio + (1 - minRatio) * f;
  return (step: number) => {
    if (step < warmup) return step / warmup;
    switch (opts.kind) {
      case 'constant':
        return 1;
      case 'linear':
        return floor(Math.max(0, (total! - step) / Math.max(1, total! - warmup)));
      case 'cosine': {
        const progress = Math.min(1, (step - warmup) / Math.max(1, total! - warmup));
        return floor(0.5 * (1 + Math.cos(Math.PI * progress)));
      }
      default:
        throw new TrainingError(`schedule: unknown kind ${String(opts.kind)}`);
    }
  };
}
