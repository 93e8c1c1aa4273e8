import type { CacheListing, RemoveResult, VerifyReport } from '../hub/index.js';

/** Text for `rudolph cache ls|rm|verify` and sizes/durations for progress lines: they return text, the CLI prints. */

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
