/**
 * report.html: one self-contained page (inline CSS and SVG; no scripts, fonts or anything else fetched) that opens
 * from a CI artifact or a laptop's disk.
 *
 * - A chart per batch size (and thread count, when several were measured): accuracy (y) against p50 latency (x),
 *   one marker per variant and execution provider, marker area proportional to the size on disk, colour per
 *   provider, and each provider's Pareto frontier drawn as a line through its points (frontier markers filled,
 *   dominated ones pale). Latency is on a log scale when it spans 10× or more. Every marker is a `<g
 *   data-variant=… data-ep=… data-batch=…>` with a `<title>` tooltip.
 * - The table of all variants and latency rows, per-class metrics and confusion matrices in `<details>`, notes,
 *   failures and the machine.
 *
 * Every string from the report (variant names come from user configs) goes through `escapeHtml`.
 */
import type { Report, VariantResult } from '../schema.js';
import { truncate } from './markdown.js';
import {
  availableRowIn,
  formatBytes,
  formatCompact,
  formatFraction,
  formatMs,
  formatPasses,
  formatPp,
  formatRatio,
  frontiersOf,
  qualityMetric,
  reportRows,
  threadsLabel,
  type GroupFrontier,
  type QualityMetric,
} from './view.js';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const e = escapeHtml;

/** Provider colours (colour-blind-safe-ish, distinct in greyscale by marker label anyway). */
const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

/**
 * Renders a report as one self-contained HTML page.
 *
 * @example
 * ```ts
 * await writeFile('report.html', renderHtml(await readReport('out/report.json')));
 * ```
 */
export function renderHtml(report: Report): string {
  const metric = qualityMetric(report);
  const frontiers = frontiersOf(report);
  const eps = [...new Set(frontiers.map((f) => f.group.ep))];
  const colour = (ep: string) => PALETTE[eps.indexOf(ep) % PALETTE.length]!;
  const body: string[] = [];
  body.push(`<header><h1>onnxpress report</h1><p class="sub">Reference <b>${e(report.reference)}</b> · ${report.variants.length} variant${report.variants.length === 1 ? '' : 's'} · ${e(report.createdAt)} · onnxpress ${e(report.tool.version)}</p></header>`);

  // charts: one per (batch, threads)
  body.push('<section><h2>Accuracy against latency</h2>');
  if (metric.kind === 'none') {
    body.push('<p class="note">No accuracy was measured (the run had no evaluation data), so there is nothing to plot: the table below has the latencies and sizes.</p>');
  } else if (frontiers.length === 0) {
    body.push('<p class="note">No latency was measured, so there is nothing to plot.</p>');
  } else {
    const panels = new Map<string, GroupFrontier[]>();
    for (const f of frontiers) {
      const k = `${f.group.batch}/${f.group.threads}`;
      panels.set(k, [...(panels.get(k) ?? []), f]);
    }
    const severalThreads = new Set(frontiers.map((f) => f.group.threads)).size > 1;
    const maxBytes = Math.max(...report.variants.map((v) => v.size.bytes), 1);
    const plotted = eps.filter((ep) => frontiers.some((f) => f.group.ep === ep && report.variants.some((v) => v.error === undefined && metric.of(v) !== undefined && availableRowIn(v, f.group))));
    body.push(legend(plotted, colour, maxBytes));
    for (const groups of panels.values()) {
      const g0 = groups[0]!.group;
      body.push(`<figure><figcaption>Batch ${g0.batch}${severalThreads ? ` · ${e(threadsLabel(g0.threads))}` : ''}</figcaption>`);
      body.push(chart(report, groups, metric, colour, maxBytes));
      body.push('</figure>');
    }
  }
  body.push('</section>');

  body.push(`<section><h2>All variants</h2>${table(report, metric, frontiers)}</section>`);

  const withAccuracy = report.variants.filter((v) => v.accuracy);
  if (withAccuracy.length) {
    body.push('<section><h2>Per-class metrics</h2>');
    for (const v of withAccuracy) body.push(perClass(v));
    body.push('</section>');
  }

  const notes = report.variants.filter((v) => v.error !== undefined || v.notes?.length);
  if (notes.length) {
    body.push('<section><h2>Notes</h2><ul class="notes">');
    for (const v of notes) {
      const items = [...(v.error !== undefined ? [`<span class="err">failed: ${e(v.error)}</span>`] : []), ...(v.notes ?? []).map(e)];
      body.push(`<li><b>${e(v.name)}</b><ul>${items.map((i) => `<li>${i}</li>`).join('')}</ul></li>`);
    }
    body.push('</ul></section>');
  }

  body.push(`<section><h2>Machine</h2>${machine(report)}</section>`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>onnxpress report: ${e(report.reference)} and ${report.variants.length - 1} variant${report.variants.length === 2 ? '' : 's'}</title>
<style>${CSS}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}

const CSS = `
:root { color-scheme: light; --fg: #111827; --muted: #6b7280; --line: #e5e7eb; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); margin: 24px auto; max-width: 1240px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub, .note, figcaption, .legend { color: var(--muted); }
figure { margin: 8px 0 20px; } figcaption { font-weight: 600; color: var(--fg); margin-bottom: 4px; }
svg.chart { width: 100%; max-width: 820px; height: auto; display: block; }
svg.chart text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #374151; }
svg.chart .grid { stroke: #eef0f3; } svg.chart .axis { stroke: #9ca3af; }
svg.chart .label { font-size: 11px; fill: #111827; } svg.chart .axis-title { font-size: 12px; fill: #4b5563; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; margin: 4px 0 8px; font-size: 13px; }
.legend .sw { display: inline-block; width: 11px; height: 11px; border-radius: 50%; vertical-align: -1px; margin-right: 5px; }
.legend .ln { display: inline-block; width: 22px; height: 0; border-top: 2px solid #374151; vertical-align: 3px; margin-right: 5px; }
table { border-collapse: collapse; font-size: 12px; } th, td { padding: 3px 5px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: #f9fafb; font-weight: 600; } td.l, th.l { text-align: left; } td.wrap { white-space: normal; min-width: 8em; max-width: 14em; }
.scroll { overflow-x: auto; } .ref { background: #f8fafc; } .star { color: #b45309; } .err { color: #b91c1c; }
details { margin: 6px 0; } summary { cursor: pointer; font-weight: 600; } .pc { display: flex; flex-wrap: wrap; gap: 24px; margin: 8px 0 0 16px; align-items: flex-start; }
table.cm td { min-width: 2.2em; text-align: center; } table.cm th { text-align: center; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; } dt { color: var(--muted); } dd { margin: 0; }
ul.notes > li { margin-bottom: 6px; }
`;

function legend(eps: string[], colour: (ep: string) => string, maxBytes: number): string {
  const items = eps.map((ep) => `<span><span class="sw" style="background:${colour(ep)}"></span>${e(ep)}</span>`);
  items.push('<span><span class="ln"></span>Pareto frontier (filled markers; pale ones are dominated)</span>');
  items.push(`<span>marker area ∝ size on disk (largest ${e(formatBytes(maxBytes))})</span>`);
  return `<div class="legend">${items.join('')}</div>`;
}

// ---------------------------------------------------------------------------------------------------------------
// The chart

const W = 820, H = 440;
const M = { left: 64, right: 24, top: 16, bottom: 52 };

interface Point {
  v: VariantResult;
  ep: string;
  batch: number;
  x: number; // p50 ms
  y: number; // quality, fraction
  onFrontier: boolean;
}

/** One SVG chart for the latency groups of one batch size (one group per provider). */
function chart(report: Report, groups: GroupFrontier[], metric: QualityMetric, colour: (ep: string) => string, maxBytes: number): string {
  const points: Point[] = [];
  const skipped: string[] = [];
  for (const { group, names } of groups) {
    const missing: string[] = [];
    const reasons = new Set<string>();
    for (const v of report.variants) {
      const row = availableRowIn(v, group);
      const y = metric.of(v);
      if (v.error === undefined && row && y !== undefined) {
        points.push({ v, ep: group.ep, batch: group.batch, x: row.p50Ms, y, onFrontier: names.includes(v.name) });
        continue;
      }
      const unavailable = v.latency.find((r) => r.ep === group.ep && r.batch === group.batch && r.threads === group.threads && !r.available);
      if (unavailable && !unavailable.available) reasons.add(unavailable.reason);
      missing.push(`${v.name} (${v.error !== undefined ? 'failed' : unavailable ? 'unavailable' : !row ? 'not measured' : `no ${metric.label.toLowerCase()}`})`);
    }
    if (missing.length === report.variants.length && reasons.size > 0) skipped.push(`${group.ep}: unavailable (${[...reasons].map((r) => truncate(r, 120)).join('; ')})`);
    else if (missing.length) skipped.push(`on ${group.ep}: ${missing.join(', ')}`);
  }
  const out: string[] = [`<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${e(metric.label)} against p50 latency">`];
  if (points.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">nothing measured to plot</text></svg>`);
    return out.join('');
  }
  const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y * 100);
  const xScale = makeScale(Math.min(...xs), Math.max(...xs), true);
  const yScale = makeScale(Math.min(...ys), Math.max(...ys), false, 100);
  const px = (ms: number) => M.left + xScale.at(ms) * pw;
  const py = (pct: number) => M.top + (1 - yScale.at(pct)) * ph;
  const radius = (bytes: number) => Math.max(4, 18 * Math.sqrt(bytes / maxBytes));

  // grid and ticks
  for (const t of xScale.ticks) {
    const x = r1(px(t));
    out.push(`<line class="grid" x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}"/><text x="${x}" y="${M.top + ph + 16}" text-anchor="middle">${xScale.log ? String(Number(t.toPrecision(3))) : tickText(t, xScale.step)}</text>`);
  }
  for (const t of yScale.ticks) {
    const y = r1(py(t));
    out.push(`<line class="grid" x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}"/><text x="${M.left - 6}" y="${r1(y + 4)}" text-anchor="end">${tickText(t, yScale.step)}</text>`);
  }
  out.push(`<line class="axis" x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}"/><line class="axis" x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}"/>`);
  out.push(`<text class="axis-title" x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">p50 latency (ms${xScale.log ? ', log scale' : ''}) — faster to the left</text>`);
  out.push(`<text class="axis-title" transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${e(metric.label)} (%) — better up</text>`);

  // frontier lines, one per provider, fastest first
  for (const { group, names } of groups) {
    const f = names.flatMap((n) => points.filter((p) => p.ep === group.ep && p.v.name === n));
    if (f.length > 1) out.push(`<polyline fill="none" stroke="${colour(group.ep)}" stroke-width="2" stroke-linejoin="round" points="${f.map((p) => `${r1(px(p.x))},${r1(py(p.y * 100))}`).join(' ')}"/>`);
  }

  // markers: big ones first so small ones stay visible; then labels on top
  const order = [...points].sort((a, b) => b.v.size.bytes - a.v.size.bytes);
  for (const p of order) {
    const c = colour(p.ep);
    const cx = r1(px(p.x)), cy = r1(py(p.y * 100)), r = r1(radius(p.v.size.bytes));
    const tip = [
      `${p.v.name}${p.v.name === report.reference ? ' (reference)' : ''} — ${p.ep}, batch ${p.batch}`,
      `${metric.label}: ${formatFraction(p.y)}`,
      `p50 latency: ${formatMs(p.x)} ms`,
      `size: ${formatBytes(p.v.size.bytes)} (gzip ${formatBytes(p.v.size.gzipBytes)})`,
      p.onFrontier ? 'on the Pareto frontier' : 'dominated',
    ].join('\n');
    out.push(
      `<g class="point" data-variant="${e(p.v.name)}" data-ep="${e(p.ep)}" data-batch="${p.batch}"><title>${e(tip)}</title>` +
        `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${c}" fill-opacity="${p.onFrontier ? 0.75 : 0.18}" stroke="${c}" stroke-width="${p.onFrontier ? 2 : 1.25}"/></g>`,
    );
  }
  // labels below-right of the marker, where the frontier line (running down-left and up-right) is not; points
  // drawn at the same place (one variant equally fast on two providers) share one label
  const labels = new Map<string, { x: number; y: number; r: number; text: string[]; bold: boolean }>();
  for (const p of points) {
    const cx = r1(px(p.x)), cy = r1(py(p.y * 100)), r = radius(p.v.size.bytes);
    const text = `${truncate(p.v.name, 28)}${groups.length > 1 ? ` · ${p.ep}` : ''}${p.v.name === report.reference ? ' (ref)' : ''}`;
    const at = `${Math.round(cx / 3)},${Math.round(cy / 3)}`;
    const had = labels.get(at);
    if (had) {
      had.text.push(text);
      had.bold ||= p.onFrontier;
    } else labels.set(at, { x: cx, y: cy, r, text: [text], bold: p.onFrontier });
  }
  for (const l of labels.values()) {
    const d = l.r * 0.71;
    const right = l.x < M.left + pw - 150;
    const below = l.y < M.top + ph - 24;
    const x = right ? l.x + d + 3 : l.x - d - 3;
    const y = below ? l.y + d + 11 : l.y - d - 4;
    out.push(`<text class="label" x="${r1(x)}" y="${r1(y)}" text-anchor="${right ? 'start' : 'end'}"${l.bold ? ' font-weight="600"' : ''}>${e(l.text.join(', '))}</text>`);
  }
  out.push('</svg>');
  if (skipped.length) out.push(`<p class="note">Not plotted: ${skipped.map(e).join('; ')}.</p>`);
  return out.join('\n');
}

const r1 = (x: number) => Math.round(x * 10) / 10;

interface Scale {
  /** Position in [0, 1] of a value. */
  at: (v: number) => number;
  ticks: number[];
  step: number;
  log: boolean;
}

/**
 * A padded axis over [lo, hi] with round ticks (1, 2, 5 × 10^k). `allowLog`: a log scale when the values span 10×
 * or more (latencies of batch 1 and a slow variant, say), so the fast cluster does not collapse into a corner.
 */
function makeScale(lo: number, hi: number, allowLog: boolean, ceiling = Infinity): Scale {
  if (allowLog && lo > 0 && hi / lo >= 10) {
    const a = Math.log10(lo) - 0.08, b = Math.log10(hi) + 0.08;
    const ticks: number[] = [];
    for (let k = Math.floor(a); k <= Math.ceil(b); k++) for (const m of [1, 2, 5]) {
      const t = m * 10 ** k;
      if (Math.log10(t) >= a && Math.log10(t) <= b) ticks.push(Number(t.toPrecision(6)));
    }
    return { at: (v) => (Math.log10(v) - a) / (b - a), ticks, step: 0, log: true };
  }
  let span = hi - lo;
  if (span === 0) span = Math.abs(hi) * 0.2 || 1; // one value: a window around it
  let a = lo - span * 0.1, b = hi + span * 0.1;
  if (lo >= 0 && a < 0) a = 0;
  if (hi <= ceiling && b > ceiling) b = ceiling; // accuracy stops at 100%
  const step = niceStep((b - a) / 6);
  // extend to whole steps so the frame starts and ends on a tick
  a = Math.floor(a / step) * step;
  b = Math.min(Math.ceil(b / step) * step, hi <= ceiling ? Math.max(ceiling, hi) : Infinity);
  if (lo >= 0 && a < 0) a = 0;
  const ticks: number[] = [];
  for (let t = a; t <= b + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return { at: (v) => (v - a) / (b - a), ticks, step, log: false };
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** A tick label with as many decimals as the step needs. */
function tickText(t: number, step: number): string {
  const decimals = step > 0 ? Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) : 2;
  return t.toFixed(decimals);
}

// ---------------------------------------------------------------------------------------------------------------
// Tables

function table(report: Report, metric: QualityMetric, frontiers: GroupFrontier[]): string {
  const ref = report.variants.find((v) => v.name === report.reference);
  const refQ = ref && metric.of(ref);
  const agreement = report.variants.some((v) => v.agreement);
  const head = ['Variant', 'Made from', 'Provider', 'Batch', metric.label, ...(agreement ? ['Cosine', 'SQNR (dB)'] : []), 'p50 (ms)', 'p90 / p99 (ms)', 'samples/s', 'Size', 'gzip', 'Params / MACs', 'Zeros', 'Pareto'];
  const left = new Set(['Variant', 'Made from', 'Provider']);
  const rows = reportRows(report, frontiers).map((r) => {
    const v = r.variant, isRef = v.name === report.reference;
    const q = metric.of(v);
    const ratio = (x: number, base: number | undefined) => (isRef ? '' : formatRatio(x, base) ? ` <span class="sub">(${formatRatio(x, base)})</span>` : '');
    const lat = r.row?.available
      ? [`${formatMs(r.row.p50Ms)}${ratio(r.row.p50Ms, r.referenceRow?.p50Ms)}`, `${formatMs(r.row.p90Ms)} / ${formatMs(r.row.p99Ms)}`, formatCompact(Math.round(r.row.throughput))]
      : r.row
        ? [`<span class="err" title="${e(r.row.reason)}">unavailable: ${e(truncate(r.row.reason, 60))}</span>`, '', '']
        : ['—', '', ''];
    const cells = [
      `<td class="l">${e(v.name)}${isRef ? ' <span class="sub">(ref)</span>' : ''}${v.error !== undefined ? ' <span class="err" title="failed">⚠</span>' : ''}</td>`,
      `<td class="l wrap">${e([...(v.parent !== undefined ? [v.parent] : []), ...(v.passes.length ? [formatPasses(v.passes)] : [])].join(' → ') || '—')}</td>`,
      `<td class="l">${r.group ? e(r.group.ep) : '—'}${r.group && new Set(frontiers.map((f) => f.group.threads)).size > 1 ? ` · ${e(threadsLabel(r.group.threads))}` : ''}</td>`,
      `<td>${r.group ? r.group.batch : '—'}</td>`,
      `<td>${q === undefined ? '—' : formatFraction(q)}${q !== undefined && refQ !== undefined && !isRef ? ` <span class="sub">(${formatPp(q, refQ)})</span>` : ''}</td>`,
      ...(agreement ? [`<td>${v.agreement ? v.agreement.cosine.toFixed(4) : '—'}</td>`, `<td>${v.agreement ? v.agreement.sqnrDb.toFixed(1) : '—'}</td>`] : []),
      ...lat.map((c, i) => (i === 0 && r.row && !r.row.available ? `<td class="l" colspan="3">${c}</td>` : i > 0 && r.row && !r.row.available ? '' : `<td>${c}</td>`)),
      `<td>${formatBytes(v.size.bytes)}${ratio(v.size.bytes, ref?.size.bytes)}</td>`,
      `<td>${formatBytes(v.size.gzipBytes)}${ratio(v.size.gzipBytes, ref?.size.gzipBytes)}</td>`,
      `<td>${formatCompact(v.size.parameters)} / ${formatCompact(v.size.macs)}</td>`,
      `<td>${formatFraction(v.size.zeroShare, 1)}</td>`,
      `<td>${r.onFrontier ? '<span class="star" title="on the Pareto frontier">★</span>' : ''}</td>`,
    ];
    return `<tr${isRef ? ' class="ref"' : ''}>${cells.join('')}</tr>`;
  });
  return `<div class="scroll"><table><thead><tr>${head.map((h) => `<th${left.has(h) ? ' class="l"' : ''}>${e(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** Confusion matrices beyond this many classes are left to report.json (a 1000-class matrix is a million cells). */
const MAX_CONFUSION_CLASSES = 40;

function perClass(v: VariantResult): string {
  const a = v.accuracy!;
  const pc = a.perClass
    .map((c, i) => `<tr><td>${i}</td><td>${c.precision.toFixed(3)}</td><td>${c.recall.toFixed(3)}</td><td>${c.f1.toFixed(3)}</td><td>${c.support}</td></tr>`)
    .join('');
  const macro = `<tr><th>macro</th><th>${a.macro.precision.toFixed(3)}</th><th>${a.macro.recall.toFixed(3)}</th><th>${a.macro.f1.toFixed(3)}</th><th>${a.samples}</th></tr>`;
  const perClassTable = `<table><thead><tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr></thead><tbody>${pc}${macro}</tbody></table>`;
  let cm: string;
  const n = a.confusion.length;
  if (n > MAX_CONFUSION_CLASSES) {
    cm = `<p class="note">Confusion matrix of ${n} classes left out of the page (it is in report.json).</p>`;
  } else {
    const headRow = `<tr><th title="true label ↓, prediction →">true \\ pred</th>${a.confusion.map((_, j) => `<th>${j}</th>`).join('')}</tr>`;
    const body = a.confusion
      .map((row, i) => {
        const total = row.reduce((s, x) => s + x, 0) || 1;
        const cells = row.map((x, j) => {
          // shade by the share of the true class's samples: green on the diagonal (right), red off it (confused)
          const alpha = x === 0 ? 0 : 0.12 + 0.7 * (x / total);
          const bg = x === 0 ? '' : ` style="background:rgba(${i === j ? '5,150,105' : '220,38,38'},${alpha.toFixed(2)})"`;
          return `<td${bg}>${x}</td>`;
        });
        return `<tr><th>${i}</th>${cells.join('')}</tr>`;
      })
      .join('');
    cm = `<table class="cm"><thead>${headRow}</thead><tbody>${body}</tbody></table>`;
  }
  return `<details><summary>${e(v.name)}: top-1 ${formatFraction(a.top1)}, top-5 ${formatFraction(a.top5)}, macro F1 ${a.macro.f1.toFixed(3)} on ${a.samples} samples</summary><div class="pc">${perClassTable}${cm}</div></details>`;
}

function machine(report: Report): string {
  const m = report.machine;
  const rows: [string, string][] = [
    ['CPU', m.cpu],
    ['Cores', String(m.cores)],
    ['Architecture', m.arch],
    ['Instruction sets', m.flags.join(', ') || '—'],
    ['OS', m.os],
    ['Node.js', m.node],
    ['onnxruntime', m.onnxruntime],
  ];
  if (m.gpus?.length) rows.push(['GPUs', m.gpus.join(', ')]);
  return `<dl>${rows.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join('')}</dl>`;
}
