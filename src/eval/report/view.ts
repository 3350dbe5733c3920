/**
 * What report.md and report.html both show, computed once from a report: which quality number is plotted, the
 * latency groups (one per execution provider, batch size and thread count), the Pareto frontier of each group, the
 * table rows, and the number formats. Rendering (`markdown.ts`, `html.ts`) only lays these out.
 *
 * Frontier rule: a frontier is only meaningful among latencies measured the same way, so there is one per
 * (provider, batch, threads) group, over the variants that did not fail, have an available latency row in that group
 * and have the quality number. `report.json`'s `frontier` lists the names on the frontier of the first group — the
 * first latency row of the reference variant (or of the first variant with a latency row, when the reference has
 * none).
 */
import { formatBytes } from '../../onnx/inspect.js';
import { paretoFrontier } from '../pareto.js';
import type { LatencyRow, Report, VariantResult } from '../schema.js';

/** The quality number of the report: labelled top-1 accuracy, top-1 agreement with the reference, or nothing. */
export interface QualityMetric {
  kind: 'top1' | 'agreement' | 'none';
  /** Column and axis label. */
  label: string;
  /** The value of a variant as a fraction in [0, 1], or undefined when it was not measured. */
  of: (v: VariantResult) => number | undefined;
}

/**
 * Labelled accuracy wins when any variant has it; otherwise agreement with the reference (the reference agrees with
 * itself: 1 when it carries no agreement numbers of its own). One metric for the whole report, so no chart mixes
 * the two.
 */
export function qualityMetric(report: Pick<Report, 'variants' | 'reference'>): QualityMetric {
  if (report.variants.some((v) => v.accuracy)) return { kind: 'top1', label: 'Top-1', of: (v) => v.accuracy?.top1 };
  if (report.variants.some((v) => v.agreement)) {
    return { kind: 'agreement', label: 'Top-1 agreement', of: (v) => v.agreement?.top1Agreement ?? (v.name === report.reference ? 1 : undefined) };
  }
  return { kind: 'none', label: 'Accuracy', of: () => undefined };
}

/** Latency rows measured the same way: same provider, batch size and thread count. */
export interface LatencyGroup {
  ep: string;
  batch: number;
  threads: number;
  key: string;
  /** "cpu · batch 1", with the thread count when the report has several. */
  label: string;
}

const groupKey = (r: Pick<LatencyRow, 'ep' | 'batch' | 'threads'>) => `${r.ep}\u0000${r.batch}\u0000${r.threads}`;

/** The latency groups in order: the reference's rows first, then new ones in the order the variants list them. */
export function latencyGroups(report: Pick<Report, 'variants' | 'reference'>): LatencyGroup[] {
  const ref = report.variants.find((v) => v.name === report.reference);
  const rows = [...(ref?.latency ?? []), ...report.variants.flatMap((v) => v.latency)];
  const threadCounts = new Set(rows.map((r) => r.threads));
  const groups = new Map<string, LatencyGroup>();
  for (const r of rows) {
    const key = groupKey(r);
    if (groups.has(key)) continue;
    const label = `${r.ep} · batch ${r.batch}${threadCounts.size > 1 ? ` · ${threadsLabel(r.threads)}` : ''}`;
    groups.set(key, { ep: r.ep, batch: r.batch, threads: r.threads, key, label });
  }
  return [...groups.values()];
}

export function threadsLabel(threads: number): string {
  return threads === 0 ? 'default threads' : `${threads} thread${threads === 1 ? '' : 's'}`;
}

/** A variant's first row in a group. */
export function rowIn(v: VariantResult, g: LatencyGroup): LatencyRow | undefined {
  return v.latency.find((r) => groupKey(r) === g.key);
}

/** A variant's available row in a group, with its p50. */
export function availableRowIn(v: VariantResult, g: LatencyGroup): Extract<LatencyRow, { available: true }> | undefined {
  const r = rowIn(v, g);
  return r?.available ? r : undefined;
}

/** One group's frontier: names, fastest first. */
export interface GroupFrontier {
  group: LatencyGroup;
  names: string[];
}

/**
 * The Pareto frontier of every latency group (maximize the quality metric, minimize p50 latency). Failed variants
 * (with `error`) and variants without the quality number are left out.
 *
 * @example
 * ```ts
 * for (const f of frontiersOf(report)) console.log(f.group.label, f.names.join(', '));
 * ```
 */
export function frontiersOf(report: Pick<Report, 'variants' | 'reference'>): GroupFrontier[] {
  const metric = qualityMetric(report);
  return latencyGroups(report).map((group) => {
    const points = report.variants.flatMap((v) => {
      const row = availableRowIn(v, group);
      const accuracy = metric.of(v);
      return v.error === undefined && row && accuracy !== undefined ? [{ name: v.name, accuracy, latencyMs: row.p50Ms }] : [];
    });
    return { group, names: paretoFrontier(points, (p) => p).map((p) => p.name) };
  });
}

/** One table row: a variant in one latency group (or a variant with no latency rows at all: `group` undefined). */
export interface ReportRow {
  variant: VariantResult;
  group?: LatencyGroup;
  row?: LatencyRow;
  /** The reference's available row in the same group, for ratios. */
  referenceRow?: Extract<LatencyRow, { available: true }>;
  onFrontier: boolean;
}

/** The table rows: group by group (so latencies that can be compared sit together), variants in report order. */
export function reportRows(report: Pick<Report, 'variants' | 'reference'>, frontiers = frontiersOf(report)): ReportRow[] {
  const ref = report.variants.find((v) => v.name === report.reference);
  const rows: ReportRow[] = [];
  for (const { group, names } of frontiers) {
    const referenceRow = ref && availableRowIn(ref, group);
    for (const variant of report.variants) {
      const row = rowIn(variant, group);
      if (row) rows.push({ variant, group, row, referenceRow, onFrontier: names.includes(variant.name) });
    }
  }
  for (const variant of report.variants) if (variant.latency.length === 0) rows.push({ variant, onFrontier: false });
  return rows;
}

// ---------------------------------------------------------------------------------------------------------------
// Number formats (shared so report.md and report.html say the same thing)

/** Milliseconds with three significant digits at most: "0.0457", "1.23", "45.6", "1234". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toPrecision(3).replace(/0+$/, '').replace(/\.$/, '');
}

/** A ratio to the reference: "0.52×". */
export function formatRatio(value: number, reference: number | undefined): string | undefined {
  if (reference === undefined || !(reference > 0) || !Number.isFinite(value)) return undefined;
  return `${(value / reference).toFixed(2)}×`;
}

/** A difference of fractions in percentage points: "+0.12 pp", "−0.40 pp", "±0.00 pp". */
export function formatPp(value: number, reference: number): string {
  const pp = (value - reference) * 100;
  const s = Math.abs(pp).toFixed(2);
  if (Number(s) === 0) return '±0.00 pp';
  return `${pp > 0 ? '+' : '−'}${s} pp`;
}

/** A fraction as a percentage with two decimals: "91.80%". */
export function formatFraction(f: number, digits = 2): string {
  return `${(f * 100).toFixed(digits)}%`;
}

/** A large count, short: "1.23M", "45.1k", "812". */
export function formatCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export { formatBytes };

/** "quantize(mode=static) → prune(method=channels, sparsity=0.3)"; "—" for none. */
export function formatPasses(passes: readonly Record<string, unknown>[]): string {
  if (passes.length === 0) return '—';
  return passes
    .map((p) => {
      const { type, ...rest } = p;
      const args = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      return `${typeof type === 'string' ? type : 'pass'}(${args.join(', ')})`;
    })
    .join(' → ');
}

/** The machine in one line: "AMD EPYC 7B13 · 16 cores · x64 (avx2, avx512f) · linux · Node v20.19.0 · onnxruntime 1.30.0". */
export function formatMachine(m: Report['machine']): string {
  const parts = [m.cpu, `${m.cores} cores`, `${m.arch}${m.flags.length ? ` (${m.flags.join(', ')})` : ''}`, m.os, `Node ${m.node}`, `onnxruntime ${m.onnxruntime}`];
  if (m.gpus?.length) parts.push(`GPU: ${m.gpus.join(', ')}`);
  return parts.join(' · ');
}
