import { RudolphError } from '../errors.js';

/** Bad fine-tuning setup or state: unknown parameter patterns, mismatched optimizer state, bad hyper-parameters. */
export class TrainingError extends RudolphError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRAINING', message, options);
    this.name = 'TrainingError';
  }
}
