/**
 * Reports of a run: `report.json` (the schema in `schema.ts`, documented in docs/report-schema.md), `report.md` (a
 * table for a pull-request comment) and `report.html` (self-contained chart and tables).
 *
 * - `buildReport` makes a report from measured variants and computes its Pareto frontier (see `report/view.ts` for
 *   the rule: one frontier per provider, batch and thread count; `frontier` holds the first one's names).
 * - `mergeFootprints` joins the footprints of a sharded run (`optimize run --shard i/n`) into one report.
 * - `readReport` / `readFootprint` read and validate files; `collectRunFiles` finds them in a run folder.
 * - `writeReport` writes the three files atomically: all of them appear, or none does.
 *
 * Reports are deterministic: the same variants give byte-identical files (no clock is read when `createdAt` is
 * given; a merge takes the latest `createdAt` of its inputs).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { z } from 'zod';
import { EvaluationError, LoadError, oneOf } from '../errors.js';
import { writeFilesAtomic } from '../util/fs.js';
import { renderHtml } from './report/html.js';
import { renderMarkdown } from './report/markdown.js';
import { frontiersOf } from './report/view.js';
import {
  FOOTPRINT_SCHEMA_ID,
  REPORT_SCHEMA_ID,
  footprintSchema,
  reportSchema,
  type Footprint,
  type MachineInfo,
  type Report,
  type VariantResult,
} from './schema.js';

export { renderHtml, escapeHtml } from './report/html.js';
export { renderMarkdown } from './report/markdown.js';
export { frontiersOf, qualityMetric, latencyGroups, type GroupFrontier, type LatencyGroup, type QualityMetric } from './report/view.js';

/** The version in onnxpress's package.json (dist/src/eval/report.js → ../../../package.json). */
function ownVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/** "variants[2].size.bytes" from a zod issue path. */
function fieldPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s ? `.${String(k)}` : String(k);
  return s || '(the document)';
}

/** The first few issues of a failed parse, each as "field: message". */
function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => `${fieldPath(i.path)}: ${i.message}`);
  const more = error.issues.length > 5 ? `; … ${error.issues.length - 5} more` : '';
  return shown.join('; ') + more;
}

/**
 * Makes `report.json`'s content from measured variants: validates them, checks names are unique and computes the
 * frontier.
 *
 * @example
 * ```ts
 * const report = buildReport({ variants: [floatResult, int8Result], machine: await machineInfo(), reference: 'float' });
 * await writeReport('out', report);
 * ```
 */
export function buildReport(input: { variants: VariantResult[]; machine: MachineInfo; reference: string; createdAt?: string; version?: string }): Report {
  const seen = new Set<string>();
  for (const v of input.variants) {
    if (seen.has(v.name)) throw new EvaluationError(`Two variants are named ${JSON.stringify(v.name)}: variant names must be unique within a report`);
    seen.add(v.name);
  }
  const draft = {
    schema: REPORT_SCHEMA_ID,
    tool: { name: 'onnxpress' as const, version: input.version ?? ownVersion() },
    createdAt: input.createdAt ?? new Date().toISOString(),
    machine: input.machine,
    reference: input.reference,
    variants: input.variants,
    frontier: [] as string[],
  };
  // validate first, so the frontier is computed from numbers the schema accepts
  const parsed = reportSchema.safeParse(draft);
  if (!parsed.success) throw new EvaluationError(`The measurements do not make a valid report: ${describeIssues(parsed.error)}`);
  const report = parsed.data;
  report.frontier = frontiersOf(report)[0]?.names ?? [];
  return report;
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (err as Error).message;
    throw new LoadError(`Cannot read ${what} ${path}: ${why}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new LoadError(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** What a parsed document claims to be, from its `schema` field. */
function schemaIdOf(doc: unknown): string | undefined {
  return typeof doc === 'object' && doc !== null && typeof (doc as { schema?: unknown }).schema === 'string' ? (doc as { schema: string }).schema : undefined;
}

function parseReport(doc: unknown, path: string): Report {
  const id = schemaIdOf(doc);
  if (id === FOOTPRINT_SCHEMA_ID) throw new LoadError(`${path} is a footprint (${FOOTPRINT_SCHEMA_ID}), not a report: read it with readFootprint, or run \`optimize report ${path}\` to make a report from it`);
  if (id !== REPORT_SCHEMA_ID) throw new LoadError(`${path} is not an onnxpress report: expected "schema": "${REPORT_SCHEMA_ID}" but found ${id === undefined ? 'no schema field' : JSON.stringify(id)}`);
  const parsed = reportSchema.safeParse(doc);
  if (!parsed.success) throw new LoadError(`${path} is not a valid report: ${describeIssues(parsed.error)}`);
  const dup = duplicateName(parsed.data.variants);
  if (dup) throw new LoadError(`${path} is not a valid report: variants[${dup.index}].name: ${JSON.stringify(dup.name)} is the name of variants[${dup.first}] too (names must be unique)`);
  return parsed.data;
}

function duplicateName(variants: readonly VariantResult[]): { name: string; index: number; first: number } | undefined {
  const seen = new Map<string, number>();
  for (const [index, v] of variants.entries()) {
    const first = seen.get(v.name);
    if (first !== undefined) return { name: v.name, index, first };
    seen.set(v.name, index);
  }
  return undefined;
}

function parseFootprint(doc: unknown, path: string): Footprint {
  const id = schemaIdOf(doc);
  if (id === REPORT_SCHEMA_ID) throw new LoadError(`${path} is a report (${REPORT_SCHEMA_ID}), not a footprint: read it with readReport`);
  if (id !== FOOTPRINT_SCHEMA_ID) throw new LoadError(`${path} is not an onnxpress footprint: expected "schema": "${FOOTPRINT_SCHEMA_ID}" but found ${id === undefined ? 'no schema field' : JSON.stringify(id)}`);
  const parsed = footprintSchema.safeParse(doc);
  if (!parsed.success) throw new LoadError(`${path} is not a valid footprint: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Reads and validates a `report.json`. Errors (LoadError) name the file and the first bad fields
 * (`out/report.json is not a valid report: variants[1].size.bytes: Invalid input: expected number, received string`).
 *
 * @example
 * ```ts
 * const baseline = await readReport('baseline/report.json');
 * ```
 */
export async function readReport(path: string): Promise<Report> {
  return parseReport(await readJson(path, 'report'), path);
}

/**
 * Reads and validates a `footprint.json` (what `optimize run` records), with errors like `readReport`'s.
 *
 * @example
 * ```ts
 * const report = mergeFootprints([await readFootprint('a/footprint.json'), await readFootprint('b/footprint.json')]);
 * ```
 */
export async function readFootprint(path: string): Promise<Footprint> {
  return parseFootprint(await readJson(path, 'footprint'), path);
}

/** What a merge takes: a footprint, or a report (whose variants are taken as measured; its frontier is recomputed). */
export type RunRecord = Pick<Footprint, 'tool' | 'createdAt' | 'machine' | 'reference' | 'variants'> & { shard?: Footprint['shard']; config?: Footprint['config'] };

/** Options of `mergeFootprints`. */
export interface MergeOptions {
  /** A name per input (file paths), for error messages and notes; default "footprint 1", "footprint 2", …. */
  sources?: readonly string[];
  /** Called with each warning (a missing shard, measurements from another machine). */
  onWarning?: (message: string) => void;
}

/** The machine fields that change latencies; `node` and `os` (kernel builds differ between runners) are left out. */
function sameHardware(a: MachineInfo, b: MachineInfo): boolean {
  const key = (m: MachineInfo) => JSON.stringify([m.cpu, m.cores, m.arch, [...m.flags].sort(), m.onnxruntime, [...(m.gpus ?? [])].sort()]);
  return key(a) === key(b);
}

/**
 * Merges the footprints (or reports) of one run's shards into a report.
 *
 * Rules:
 * 1. All inputs must name the same reference variant; otherwise they are not one run (LoadError).
 * 2. Variants are de-duplicated by name and content key (the reference is measured in every shard): the first
 *    input's copy is kept. The same name with two different keys is two different models under one name
 *    (LoadError naming both inputs).
 * 3. Order: inputs are taken in shard order when all of them carry `shard` (else as given); variants follow the config's `variants` list
 *    when an input carries one (so a merge lists them as the unsharded run does), the reference first, then in the
 *    order they are met.
 * 4. Machine: the first input's. Variants measured on other hardware keep their numbers but get a note saying
 *    where they were measured, and a warning is given: latencies from two machines should not be compared.
 * 5. Shards: when the inputs carry shard numbers and one of 1..n is missing, a warning says which.
 * 6. `createdAt` is the latest of the inputs' (so a merge of the same files is byte-identical); the tool version is
 *    the first input's.
 *
 * @example
 * ```ts
 * const report = mergeFootprints([shard1, shard2], { sources: ['s1/footprint.json', 's2/footprint.json'], onWarning: console.warn });
 * ```
 */
export function mergeFootprints(footprints: readonly RunRecord[], options: MergeOptions = {}): Report {
  if (footprints.length === 0) throw new LoadError('Nothing to merge: no footprint or report was given');
  const named = footprints.map((f, i) => ({ f, source: options.sources?.[i] ?? `footprint ${i + 1}`, i }));
  // shard order when every input is a shard (so which shard's copy of the reference is kept does not depend on the command line)
  if (named.every(({ f }) => f.shard)) named.sort((a, b) => a.f.shard!.index - b.f.shard!.index || a.i - b.i);
  const first = named[0]!;
  for (const { f, source } of named) {
    if (f.reference !== first.f.reference) {
      throw new LoadError(`${source} and ${first.source} are not from the same run: their reference variants are ${JSON.stringify(f.reference)} and ${JSON.stringify(first.f.reference)}`);
    }
  }
  const warn = (m: string) => options.onWarning?.(m);

  const counts = new Set(named.flatMap(({ f }) => (f.shard ? [f.shard.count] : [])));
  if (counts.size > 1) warn(`the inputs come from runs split into different shard counts (${[...counts].join(', ')}): they may not be one run`);
  else if (counts.size === 1) {
    const n = [...counts][0]!;
    const have = new Set(named.flatMap(({ f }) => (f.shard ? [f.shard.index] : [])));
    const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !have.has(i));
    if (missing.length) warn(`shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} missing: the report holds only the variants of the others`);
  }

  const byName = new Map<string, { v: VariantResult; source: string }>();
  for (const { f, source } of named) {
    const foreign = !sameHardware(f.machine, first.f.machine);
    if (foreign) warn(`${source} was measured on another machine (${f.machine.cpu}, ${f.machine.cores} cores) than ${first.source} (${first.f.machine.cpu}, ${first.f.machine.cores} cores): its latencies are not comparable`);
    for (const v of f.variants) {
      const had = byName.get(v.name);
      if (had) {
        if (had.v.key !== v.key) {
          throw new LoadError(`Variant ${JSON.stringify(v.name)} is two different models: key ${had.v.key} in ${had.source} but ${v.key} in ${source} (rename one, or merge footprints of one run only)`);
        }
        continue;
      }
      const note = `measured on ${f.machine.cpu} (${f.machine.cores} cores, onnxruntime ${f.machine.onnxruntime}), not on the report's machine`;
      byName.set(v.name, { v: foreign ? { ...v, notes: [...(v.notes ?? []), note] } : v, source });
    }
  }

  // order: the config's variant list when there is one, the reference first, then as met
  const configOrder = new Map<string, number>();
  for (const { f } of named) {
    const list = (f.config as { variants?: unknown } | undefined)?.variants;
    if (Array.isArray(list)) list.forEach((c, i) => typeof (c as { name?: unknown })?.name === 'string' && !configOrder.has((c as { name: string }).name) && configOrder.set((c as { name: string }).name, i));
  }
  const met = [...byName.keys()];
  const rank = (name: string) => (name === first.f.reference ? -1 : configOrder.get(name) ?? Number.MAX_SAFE_INTEGER);
  met.sort((a, b) => rank(a) - rank(b) || met.indexOf(a) - met.indexOf(b));

  const createdAt = named.map(({ f }) => f.createdAt).reduce((a, b) => (b > a ? b : a));
  return buildReport({ variants: met.map((n) => byName.get(n)!.v), machine: first.f.machine, reference: first.f.reference, createdAt, version: first.f.tool.version });
}

/** One input of `optimize report`: a footprint or report file, read and validated. */
export interface RunFile {
  path: string;
  kind: 'footprint' | 'report';
  record: RunRecord;
}

/** The footprint files of a run folder: footprint.json and footprint-<anything>.json (one per shard). */
const FOOTPRINT_FILE = /^footprint([-_.].*)?\.json$/;

/**
 * Reads what `optimize report` is given: each path is a footprint or report file (told apart by its `schema`
 * field), or a run folder, which means its footprint*.json files (the shards) or, when it has none, its
 * report.json. Errors name the path.
 *
 * @example
 * ```ts
 * const files = await collectRunFiles(['out-shard-1', 'out-shard-2']);
 * const report = mergeFootprints(files.map((f) => f.record), { sources: files.map((f) => f.path) });
 * ```
 */
export async function collectRunFiles(paths: readonly string[]): Promise<RunFile[]> {
  const out: RunFile[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch {
      throw new LoadError(`Cannot read ${p}: no such file or folder (give a run folder, a footprint.json or a report.json)`);
    }
    if (!isDir) {
      out.push(await readRunFile(p));
      continue;
    }
    const names = (await readdir(p)).sort();
    const footprints = names.filter((n) => FOOTPRINT_FILE.test(n));
    if (footprints.length) {
      for (const n of footprints) out.push(await readRunFile(join(p, n), 'footprint'));
    } else if (names.includes('report.json')) {
      out.push(await readRunFile(join(p, 'report.json'), 'report'));
    } else {
      const jsons = names.filter((n) => n.endsWith('.json'));
      throw new LoadError(`${p} holds no footprint*.json and no report.json, so it is not a run folder ${jsons.length ? `(JSON files there: ${oneOf(jsons)})` : ''}`.trim());
    }
  }
  return out;
}

async function readRunFile(path: string, expect?: 'footprint' | 'report'): Promise<RunFile> {
  const doc = await readJson(path, expect ?? 'file');
  const id = schemaIdOf(doc);
  const kind = expect ?? (id === REPORT_SCHEMA_ID ? 'report' : id === FOOTPRINT_SCHEMA_ID ? 'footprint' : undefined);
  if (!kind) throw new LoadError(`${path} is neither a footprint nor a report: expected "schema": "${FOOTPRINT_SCHEMA_ID}" or "${REPORT_SCHEMA_ID}" but found ${id === undefined ? 'no schema field' : JSON.stringify(id)}`);
  return { path, kind, record: kind === 'report' ? parseReport(doc, path) : parseFootprint(doc, path) };
}

/**
 * Rewrites the variants' `model` paths (relative to the folder of the file they were read from) to be relative to
 * `toDir`, where the merged report is written. Absolute paths are kept.
 */
export function rebaseModelPaths(variants: readonly VariantResult[], fromDir: string, toDir: string): VariantResult[] {
  return variants.map((v) => {
    if (isAbsolute(v.model)) return v;
    const rebased = relative(resolve(toDir), resolve(fromDir, v.model)).split(sep).join('/');
    return rebased === v.model ? v : { ...v, model: rebased };
  });
}

/**
 * Writes report.json, report.md and report.html atomically (all three or none). Default names are in `dir`; the
 * options override each path (relative paths are resolved against the working folder, as on the command line).
 * Returns the paths written.
 *
 * @example
 * ```ts
 * const { html } = await writeReport('out', report);
 * ```
 */
export async function writeReport(dir: string, report: Report, options: { json?: string; md?: string; html?: string } = {}): Promise<{ json: string; md: string; html: string }> {
  const paths = {
    json: resolve(options.json ?? join(dir, 'report.json')),
    md: resolve(options.md ?? join(dir, 'report.md')),
    html: resolve(options.html ?? join(dir, 'report.html')),
  };
  await writeFilesAtomic([
    { path: paths.json, data: `${JSON.stringify(report, null, 2)}\n` },
    { path: paths.md, data: renderMarkdown(report) },
    { path: paths.html, data: renderHtml(report) },
  ]);
  return paths;
}
