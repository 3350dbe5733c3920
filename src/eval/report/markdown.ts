/**
 * report.md: one GitHub-flavoured Markdown table, fit for a pull-request comment. One row per variant and latency
 * group (provider, batch, threads); every number next to its ratio or difference to the reference row.
 */
import type { Report } from '../schema.js';
import {
  formatBytes,
  formatCompact,
  formatFraction,
  formatMachine,
  formatMs,
  formatPp,
  formatRatio,
  frontiersOf,
  qualityMetric,
  reportRows,
  threadsLabel,
  type ReportRow,
} from './view.js';

/**
 * Escapes text for a Markdown table cell: characters Markdown or the table would read (`|`, `*`, `_`, `[`, …) get a
 * backslash; `<`, `>` and `&` become entities, since GitHub renders inline HTML; newlines become spaces.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\r\n]+/g, ' ')
    .replace(/[\\`*_[\]|#~]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** The reference's value beside a variant's: "(ref)" on the reference row itself. */
function withRatio(text: string, ratio: string | undefined, isReference: boolean): string {
  if (isReference) return `${text} (ref)`;
  return ratio === undefined ? text : `${text} (${ratio})`;
}

/**
 * Renders a report as Markdown: a heading, the table, the frontier of each latency group, failures, the machine.
 *
 * @example
 * ```ts
 * await writeFile('comment.md', renderMarkdown(await readReport('out/report.json')));
 * ```
 */
export function renderMarkdown(report: Report): string {
  const metric = qualityMetric(report);
  const frontiers = frontiersOf(report);
  const rows = reportRows(report, frontiers);
  const ref = report.variants.find((v) => v.name === report.reference);
  const refQuality = ref && metric.of(ref);
  const several = new Set(rows.map((r) => r.group?.threads)).size > 1;

  const header = ['Variant', 'Provider', 'Batch', metric.label, 'p50 latency', 'Size', 'gzip', 'Params', 'Zeros', 'Pareto'];
  const align = ['---', '---', '--:', '--:', '--:', '--:', '--:', '--:', '--:', ':-:'];
  const cell = (r: ReportRow): string[] => {
    const v = r.variant;
    const isRef = v.name === report.reference;
    const q = metric.of(v);
    const quality = q === undefined ? '—' : isRef || refQuality === undefined ? withRatio(formatFraction(q), undefined, isRef) : `${formatFraction(q)} (${formatPp(q, refQuality)})`;
    let latency = '—';
    if (r.row?.available) latency = withRatio(`${formatMs(r.row.p50Ms)} ms`, formatRatio(r.row.p50Ms, r.referenceRow?.p50Ms), isRef);
    else if (r.row) latency = `unavailable: ${escapeMarkdown(truncate(r.row.reason, 80))}`;
    const provider = r.group ? `${escapeMarkdown(r.group.ep)}${several ? `, ${threadsLabel(r.group.threads)}` : ''}` : '—';
    return [
      `${escapeMarkdown(v.name)}${v.error !== undefined ? ' ⚠' : ''}`,
      provider,
      r.group ? String(r.group.batch) : '—',
      quality,
      latency,
      withRatio(formatBytes(v.size.bytes), formatRatio(v.size.bytes, ref?.size.bytes), isRef),
      withRatio(formatBytes(v.size.gzipBytes), formatRatio(v.size.gzipBytes, ref?.size.gzipBytes), isRef),
      formatCompact(v.size.parameters),
      formatFraction(v.size.zeroShare, 1),
      r.onFrontier ? '★' : '',
    ];
  };

  const lines = [`### onnxpress report`, '', `Reference: **${escapeMarkdown(report.reference)}** · ${report.variants.length} variant${report.variants.length === 1 ? '' : 's'}`, ''];
  lines.push(`| ${header.join(' | ')} |`, `| ${align.join(' | ')} |`);
  for (const r of rows) lines.push(`| ${cell(r).join(' | ')} |`);
  lines.push('');
  const about =
    metric.kind === 'top1'
      ? `${metric.label}: accuracy on ${samplesOf(report, 'accuracy')} labelled samples, difference to the reference in percentage points.`
      : metric.kind === 'agreement'
        ? `${metric.label}: share of ${samplesOf(report, 'agreement')} samples where the top-1 class equals the reference's.`
        : 'No accuracy was measured (no evaluation data): there is no Pareto frontier.';
  lines.push(`${about} Latency: median (p50) per run of one batch; ratios are to the reference on the same provider and batch. Size: bytes on disk. Zeros: share of parameters that are exactly zero.`);
  if (metric.kind !== 'none') {
    lines.push('', '★ on the accuracy-vs-latency Pareto frontier of its provider and batch (no other variant there is at least as accurate and at least as fast), fastest first:');
    for (const f of frontiers) lines.push(`- ${escapeMarkdown(f.group.label)}: ${f.names.length ? f.names.map(escapeMarkdown).join(', ') : '(nothing measured)'}`);
  }
  const failed = report.variants.filter((v) => v.error !== undefined);
  if (failed.length) {
    lines.push('', '⚠ Failed variants:');
    for (const v of failed) lines.push(`- **${escapeMarkdown(v.name)}**: ${escapeMarkdown(truncate(v.error!, 300))}`);
  }
  lines.push('', `Machine: ${escapeMarkdown(formatMachine(report.machine))}`, '');
  return lines.join('\n');
}

/** The sample count of a metric ("256", or "200–256" when variants differ). */
function samplesOf(report: Report, key: 'accuracy' | 'agreement'): string {
  const counts = report.variants.flatMap((v) => (v[key] ? [v[key].samples] : []));
  const lo = Math.min(...counts), hi = Math.max(...counts);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
