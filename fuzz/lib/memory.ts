/**
 * Peak memory growth of the process over one input. On Linux the kernel's high-water mark
 * (VmHWM) is reset before the input (`echo 5 > /proc/self/clear_refs`) and read after it, so
 * even a spike that was freed again is seen exactly. Elsewhere: the growth of getrusage's
 * max RSS, or of the RSS itself, whichever is larger (a spike below an earlier peak is missed).
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** A size line of /proc/self/status in kB (Linux), else undefined. */
export function statusKB(field: 'VmHWM' | 'VmRSS' | 'RssAnon' | 'RssFile'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function resetHighWater(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** The process's resident size now, in MB. */
export function rssMB(): number {
  return process.memoryUsage.rss() / 2 ** 20;
}

/** Starts a measurement; `growthMB()` is the peak over it minus the size at its start. */
export function peakMemory(): { growthMB(): number } {
  const exact = resetHighWater();
  const startKB = (exact ? statusKB('VmRSS') : undefined) ?? process.memoryUsage.rss() / 1024;
  const maxBefore = process.resourceUsage().maxRSS;
  return {
    growthMB(): number {
      const hwm = exact ? statusKB('VmHWM') : undefined;
      if (hwm !== undefined) return Math.max(0, hwm - startKB) / 1024;
      const maxAfter = process.resourceUsage().maxRSS;
      const peakKB = Math.max(maxAfter > maxBefore ? maxAfter : 0, process.memoryUsage.rss() / 1024);
      return Math.max(0, peakKB - startKB) / 1024;
    },
  };
}
