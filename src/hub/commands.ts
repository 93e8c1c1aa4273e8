import cliProgress from 'cli-progress';
import type { CacheListing, RemoveResult, VerifyReport } from './cache.js';
import { validateRepoId } from './cache-layout.js';
import { downloadFileInfo, type DownloadOptions, type DownloadedFile } from './download.js';
import { OfflineError } from './errors.js';
import { offlineError } from './offline.js';
import { CHECKPOINT_FILE, PRESET_FILES, TOKENIZER_FILE, VQGAN_FILE, isHubPresetName, type HubPresetName, type PresetFiles } from './presets.js';
import type { DownloadProgress, ProgressCallback } from './progress.js';
import { resolveHubSettings } from './settings.js';

/** Building blocks for `rudolph download …` and `rudolph cache ls|rm|verify`: they return data or text, the CLI prints. */

export type DownloadTarget = { kind: 'preset'; preset: HubPresetName; files: PresetFiles } | { kind: 'repo'; repo: string; files: PresetFiles };

/** A preset name ("350M", "1.3B", …) or a hub repo id of a RUDOLPH checkpoint (its pytorch_model.bin plus the shared tokenizer and VQGAN). */
export function parseDownloadTarget(target: string): DownloadTarget {
  if (isHubPresetName(target)) return { kind: 'preset', preset: target, files: PRESET_FILES[target] };
  validateRepoId(target);
  return { kind: 'repo', repo: target, files: { model: { repo: target, file: CHECKPOINT_FILE }, tokenizer: TOKENIZER_FILE, vqgan: VQGAN_FILE } };
}

export interface DownloadedModelFiles {
  model: DownloadedFile;
  tokenizer: DownloadedFile;
  vqgan: DownloadedFile;
}

/**
 * Fetches a model's checkpoint, tokenizer and VQGAN into the hub cache. `revision` applies to the
 * model repo only (the tokenizer and VQGAN come from `main`). Offline, one OfflineError lists
 * everything that is missing.
 */
export async function downloadModelFiles(files: PresetFiles, options: DownloadOptions = {}): Promise<DownloadedModelFiles> {
  const { revision, ...shared } = options;
  const plan = [
    ['model', files.model, revision],
    ['tokenizer', files.tokenizer, undefined],
    ['vqgan', files.vqgan, undefined],
  ] as const;
  const got: Partial<DownloadedModelFiles> = {};
  const offline: OfflineError[] = [];
  for (const [role, loc, rev] of plan) {
    try {
      got[role] = await downloadFileInfo({ ...shared, repo: loc.repo, path: loc.file, revision: rev });
    } catch (err) {
      if (!(err instanceof OfflineError)) throw err;
      offline.push(err); // keep going: the message should name every missing file at once
    }
  }
  if (offline.length > 0) {
    throw await offlineError(
      offline.flatMap((e) => e.missing),
      offline[0].cacheDir,
      offline[0].reason,
      offline[0].cause,
    );
  }
  return got as DownloadedModelFiles;
}

/** `rudolph download [preset|repo-id] [--revision R] [--cache-dir D]`. */
export async function downloadPreset(target: string, options: DownloadOptions = {}): Promise<DownloadedModelFiles & { target: DownloadTarget }> {
  const parsed = parseDownloadTarget(target);
  return { target: parsed, ...(await downloadModelFiles(parsed.files, options)) };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One line for a progress event, e.g. "pytorch_model.bin  512.0 MiB / 1.3 GiB  38%  21.4 MiB/s  ETA 41s". */
export function formatProgress(p: DownloadProgress): string {
  if (p.done) return `${p.file}  ${formatBytes(p.loaded)}  ${p.fromCache ? 'cached' : 'done'}`;
  const total = p.total === null ? '?' : formatBytes(p.total);
  const pct = p.total ? `  ${Math.floor((100 * p.loaded) / p.total)}%` : '';
  const eta = p.etaSeconds === null ? '' : `  ETA ${formatDuration(p.etaSeconds)}`;
  return `${p.file}  ${formatBytes(p.loaded)} / ${total}${pct}  ${formatBytes(p.bytesPerSecond)}/s${eta}`;
}

export interface ProgressReporter {
  onProgress: ProgressCallback;
  stop(): void;
}

/**
 * A ready-made onProgress for a terminal: one cli-progress bar per file on a TTY, one line per
 * finished file otherwise (logs stay readable).
 */
export function createProgressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (!stream.isTTY) {
    return {
      onProgress: (p) => {
        if (p.done) stream.write(`${formatProgress(p)}\n`);
      },
      stop: () => undefined,
    };
  }
  const multibar = new cliProgress.MultiBar(
    {
      stream,
      format: '{file} |{bar}| {percentage}% {loadedText} / {totalText} {speed} {eta_text}',
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgress.SingleBar>();
  return {
    onProgress: (p) => {
      const key = `${p.repo}/${p.file}`;
      const total = p.total ?? Math.max(p.loaded, 1);
      const payload = {
        file: p.file,
        loadedText: formatBytes(p.loaded),
        totalText: p.total === null ? '?' : formatBytes(p.total),
        speed: p.done ? (p.fromCache ? 'cached' : 'done') : `${formatBytes(p.bytesPerSecond)}/s`,
        eta_text: p.etaSeconds === null || p.done ? '' : `ETA ${formatDuration(p.etaSeconds)}`,
      };
      let bar = bars.get(key);
      if (!bar) {
        bar = multibar.create(total, p.loaded, payload);
        bars.set(key, bar);
      }
      bar.setTotal(total);
      bar.update(p.loaded, payload);
    },
    stop: () => multibar.stop(),
  };
}

/** Human-readable `rudolph cache ls`. */
export function formatCacheListing(listing: CacheListing): string {
  if (listing.repos.length === 0) return `The Hugging Face cache at ${listing.cacheDir} is empty.`;
  const rows: string[][] = [['REPO', 'REVISION', 'REFS', 'SIZE', 'FILES']];
  for (const repo of listing.repos) {
    const name = repo.type === 'model' ? repo.repo : `${repo.type}s/${repo.repo}`;
    if (repo.revisions.length === 0) rows.push([name, '-', '-', formatBytes(repo.size), '(no snapshots)']);
    for (const rev of repo.revisions) {
      rows.push([name, rev.commit.slice(0, 8), rev.refs.join(',') || '-', formatBytes(rev.size), rev.files.map((f) => f.path).join(', ')]);
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '));
  const incomplete = listing.repos.reduce((s, r) => s + r.incompleteBytes, 0);
  lines.push(
    '',
    `${listing.repos.length} repo(s), ${formatBytes(listing.size)} on disk in ${listing.cacheDir}` +
      (incomplete > 0 ? ` (+${formatBytes(incomplete)} of interrupted downloads that the next download resumes)` : ''),
  );
  for (const w of listing.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

/** Human-readable `rudolph cache verify`. */
export function formatVerifyReport(report: VerifyReport): string {
  const checked = report.blobs.filter((b) => b.status !== 'unverifiable').length;
  const lines = [`checked ${checked} of ${report.blobs.length} blob(s) in ${report.cacheDir}`];
  for (const b of report.corrupt) {
    lines.push(
      `CORRUPT ${b.repo} blob ${b.blob} (${formatBytes(b.size)}): ${b.kind} is ${b.actual}` +
        (b.usedBy.length ? `; used by ${b.usedBy.join(', ')}` : '') +
        ` — remove it with \`rudolph cache rm ${b.repo}\` and download again`,
    );
  }
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  lines.push(report.ok ? 'all good' : `${report.corrupt.length} corrupt blob(s), ${report.warnings.length} warning(s)`);
  return lines.join('\n');
}

/** Human-readable `rudolph cache rm`. */
export function formatRemoveResult(result: RemoveResult): string {
  const what = result.commit === undefined ? result.repo : `${result.repo} revision ${result.commit.slice(0, 8)}`;
  return `removed ${what}: ${formatBytes(result.removedBytes)} freed`;
}

/** The cache folder commands use when no --cache-dir is given (for messages and `cache ls`). */
export function defaultCacheDir(): string {
  return resolveHubSettings().cacheDir;
}
