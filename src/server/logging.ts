/** Structured JSON logs (pino) on stderr for fronts and workers: one object per line. */
import { pino, type Logger } from 'pino';

export function jsonLogger(role: 'front' | 'worker' | 'serve', level = process.env.RUDOLPH_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { role, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}
