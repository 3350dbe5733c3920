/**
 * The pipeline config: the JSON file `optimize run` reads and `pipeline(…).toConfig()` writes. One zod schema for
 * its shape; each pass's options are checked by that pass's own schema (the one its function and CLI command use),
 * so a config accepts exactly what the API accepts. Errors point at the field: `variants[1].passes[0].sparsity: …`.
 *
 * Resolution (`resolveConfig`) turns a parsed config into what a run executes:
 * 1. paths become absolute (relative ones resolve against the config file's folder);
 * 2. sweeps expand: `"sweep": {"sparsity": [0.3, 0.5]}` on variant `pruned` gives `pruned-0.3` and `pruned-0.5`;
 *    a key names a field of the variant's only pass that has it, or `<type>.<field>` / `<pass index>.<field>`;
 * 3. a variant whose parent was expanded expands with it (`int8-of-pruned` → `int8-of-pruned-0.3`, …), which
 *    is how "sparsity × quantization on/off" is written: one swept variant and one child of it;
 * 4. pipeline defaults fill in (below), then each pass's schema fills its own defaults;
 * 5. every file named must exist.
 *
 * Pipeline defaults (why they differ from the plain functions'):
 * - `quantize`: `calibration` defaults to the config's `calibration` (mode static); `latency` defaults to 'off'
 *   (timing candidate placements would make the model depend on the machine's noise, which content keys cannot
 *   see; the pipeline measures every variant's latency anyway); `activationType` and `reduceRange` are decided
 *   from this machine's CPU here, so that they are part of the resolved options and of the content key.
 * - `prune` with method 'channels': `calibration` defaults to the config's `calibration`.
 * - `distill`: `threads` defaults to 1 (training is reproducible only on one thread).
 * - `convert` (fp16): `keepIoTypes` defaults to true, so the variant takes the same data as the float model.
 */
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { fp16Options } from '../convert/fp16.js';
import { distillOptions } from '../distill/index.js';
import { LoadError, OptionsError, oneOf } from '../errors.js';
import { cleanupOptions } from '../onnx/hygiene/index.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../onnx/runner.js';
import { pruneOptions } from '../prune/index.js';
import { decideActivationType, decideReduceRange, detectCpu, quantizeOptions } from '../quantize/quantize.js';

// ---------------------------------------------------------------------------------------------------------------
// Steps

/** The pass types a config's `passes` may use. */
export const STEP_TYPES = ['prune', 'quantize', 'distill', 'convert', 'hygiene'] as const;
export type StepType = (typeof STEP_TYPES)[number];

/** A step as a config holds it: `{ type, …options }`. */
export type StepConfig = { type: StepType } & Record<string, unknown>;

/**
 * Options of a `distill` step: the `distill` pass's options with files instead of objects. The incoming model is
 * the teacher and `student` (a model file) or a built-in student (`studentWidth`) is trained; or, with `teacher`
 * (a model file or the name of another variant, e.g. "float"), the incoming model is the student and is fine-tuned
 * from that teacher (how a pruned model recovers accuracy).
 */
export const distillStepOptions = distillOptions
  .omit({ data: true, val: true, student: true })
  .extend({
    data: z.string().min(1).describe('training data: a dataset descriptor path'),
    val: z.string().min(1).optional().describe('validation data: a dataset descriptor path'),
    student: z.string().min(1).optional().describe('the student: a model file (default: a built-in student, see studentWidth)'),
    teacher: z.string().min(1).optional().describe('fine-tune the incoming model from this teacher: a model file or a variant name'),
  })
  .superRefine((o, ctx) => {
    if (o.teacher !== undefined && (o.student !== undefined || o.studentWidth !== undefined || o.studentDepth !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['teacher'], message: 'with teacher, the incoming model is the student: give no student, studentWidth or studentDepth' });
    }
  });

/**
 * Options of a `convert` step: the target, then the converter's own options. `fp16` changes the variant's model;
 * `tfjs` leaves it as it is (conversion is checked to agree within 1e-4) and also writes it as a TensorFlow.js
 * graph model beside it, `models/<variant>.tfjs/`.
 */
export const convertStepOptions = fp16Options.extend({
  to: z.enum(['fp16', 'tfjs']).describe("the target format ('fp16': float16 weights and compute; 'tfjs': also write a TensorFlow.js model)"),
  shardBytes: z.number().int().positive().optional().describe('tfjs: largest weight shard in bytes (default 4 MiB)'),
});

/** What the pipeline needs to know about each step type. */
interface StepKind {
  /** Validates (and fills defaults of) the options without `type`. */
  schema: z.ZodType;
  /** Option names the schema knows; others are refused (zod objects would drop them silently). */
  fields: readonly string[] | 'any';
  /** Options that hold dataset descriptor paths. */
  dataFields: readonly string[];
  /** Options that hold model paths (`teacher` may also name a variant). */
  modelFields: readonly string[];
  /** Options a config cannot give (functions, objects). */
  apiOnly?: readonly string[];
}

function keysOf(schema: { shape: Record<string, unknown> }, without: readonly string[] = []): string[] {
  return Object.keys(schema.shape).filter((k) => !without.includes(k));
}

const STEPS: Record<StepType, StepKind> = {
  prune: { schema: pruneOptions, fields: keysOf(pruneOptions, ['finetune']), dataFields: ['calibration', 'data'], modelFields: [], apiOnly: ['finetune'] },
  quantize: { schema: quantizeOptions, fields: keysOf(quantizeOptions), dataFields: ['calibration', 'evalData'], modelFields: [] },
  distill: {
    schema: distillStepOptions,
    fields: [...keysOf(distillOptions, ['data', 'val', 'student']), 'data', 'val', 'student', 'teacher'],
    dataFields: ['data', 'val'],
    modelFields: ['student', 'teacher'],
  },
  convert: { schema: convertStepOptions, fields: keysOf(convertStepOptions), dataFields: [], modelFields: [] },
  hygiene: { schema: cleanupOptions, fields: keysOf(cleanupOptions), dataFields: [], modelFields: [] },
};

/** The dataset and model path options of a step type (what content keys hash by content). */
export function stepFiles(type: StepType): { dataFields: readonly string[]; modelFields: readonly string[] } {
  return STEPS[type];
}

// ---------------------------------------------------------------------------------------------------------------
// The config file

const positiveInts = z.array(z.number().int().min(1)).min(1);

/** How every variant is measured. */
export const evaluateConfig = z
  .strictObject({
    data: z.string().min(1).optional().describe("data for accuracy (labelled) or agreement with the float model (unlabelled); default the config's data"),
    samples: z.number().int().min(1).optional().describe('evaluate on the first n samples (default all)'),
    batchSize: z.number().int().min(1).default(64).describe('samples per run when evaluating accuracy'),
    ep: z.enum(EXECUTION_PROVIDERS as unknown as [ExecutionProvider, ...ExecutionProvider[]]).default('cpu').describe('execution provider for accuracy'),
    threads: z.number().int().min(1).optional().describe('intra-op threads for accuracy (default: onnxruntime’s choice)'),
    latency: z
      .union([
        z.literal(false),
        z.strictObject({
          ep: z.array(z.enum(EXECUTION_PROVIDERS as unknown as [ExecutionProvider, ...ExecutionProvider[]])).min(1).default(['cpu']),
          batch: positiveInts.default([1]),
          threads: z.array(z.number().int().min(0)).min(1).default([0]).describe('intra-op threads; 0 is onnxruntime’s choice'),
          time: z.number().positive().default(1000).describe('ms of timed runs per configuration'),
          maxTime: z.number().positive().optional().describe('ms at most, stability rounds included (default 3 × time)'),
        }),
      ])
      .default({ ep: ['cpu'], batch: [1], threads: [0], time: 1000 })
      .describe('latency settings, or false to skip timing'),
  })
  .describe('how every variant is measured');
export type EvaluateConfig = z.input<typeof evaluateConfig>;
export type ResolvedEvaluate = z.output<typeof evaluateConfig>;

/** Names become file names (`models/<name>.onnx`). */
const variantName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'Expected a name of letters, digits and . _ + - (it becomes a file name)');

const sweepValues = z.array(z.union([z.number(), z.string(), z.boolean()])).min(1);

export const variantConfig = z.strictObject({
  name: variantName,
  parent: z.string().min(1).optional().describe('the variant this one starts from (default the float model)'),
  passes: z.array(z.looseObject({ type: z.enum(STEP_TYPES) })).min(1),
  sweep: z.record(z.string(), sweepValues).optional().describe('option → values: one variant per value (per combination)'),
});
export type VariantConfig = z.input<typeof variantConfig>;

/**
 * The config file's shape.
 *
 * @example
 * ```ts
 * pipelineConfig.parse({ model: 'm.onnx', variants: [{ name: 'int8', passes: [{ type: 'quantize', mode: 'dynamic' }] }] });
 * ```
 */
export const pipelineConfig = z.strictObject({
  model: z.string().min(1).describe('the float model (measured as the reference row)'),
  data: z.string().min(1).optional().describe('evaluation data: a dataset descriptor path'),
  calibration: z.string().min(1).optional().describe('calibration data for quantize (static) and prune (channels)'),
  outDir: z.string().min(1).default('onnxpress-out').describe('output folder: footprint.json, report.*, models/, cache/'),
  seed: z.number().int().min(0).default(0),
  reference: variantName.default('float').describe('name of the reference row'),
  evaluate: evaluateConfig.prefault({}),
  variants: z.array(variantConfig).default([]),
});
export type PipelineConfig = z.input<typeof pipelineConfig>;

/** A variant as a run executes it: sweeps expanded, options resolved, paths absolute. */
export interface ResolvedVariant {
  name: string;
  parent?: string;
  passes: StepConfig[];
  /** The config variant it was expanded from, when a sweep or a swept parent expanded it. */
  from?: string;
}

/** A config as a run executes it. */
export interface ResolvedConfig {
  model: string;
  data?: string;
  calibration?: string;
  outDir: string;
  seed: number;
  reference: string;
  evaluate: ResolvedEvaluate;
  variants: ResolvedVariant[];
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

type Path = readonly (string | number | symbol)[];

/** `['variants', 1, 'passes', 0, 'sparsity']` → `variants[1].passes[0].sparsity`. */
export function formatPath(path: Path): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : `${s ? '.' : ''}${String(p)}`;
  return s || '(config)';
}

class Issues {
  readonly list: string[] = [];
  add(path: Path, message: string): void {
    const line = `${formatPath(path)}: ${message}`;
    if (!this.list.includes(line)) this.list.push(line);
  }
  throwIfAny(source: string | undefined): void {
    if (this.list.length) throw new OptionsError(`Invalid config${source ? ` ${source}` : ''}: ${this.list.join('; ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing and resolution

/**
 * Checks a config's shape (not yet its passes' options: `resolveConfig` does that). Errors name the field.
 *
 * @example
 * ```ts
 * parseConfig(JSON.parse(text), 'sweep.json');
 * ```
 */
export function parseConfig(raw: unknown, source?: string): z.output<typeof pipelineConfig> {
  const r = pipelineConfig.safeParse(raw);
  if (r.success) return r.data;
  const issues = new Issues();
  for (const i of r.error.issues) issues.add(i.path, i.message);
  issues.throwIfAny(source);
  throw new Error('unreachable');
}

/** Options of `resolveConfig`. */
export interface ResolveOptions {
  /** Folder relative paths resolve against (the config file's folder; default the working folder). */
  baseDir?: string;
  /** Named in errors (the config file). */
  source?: string;
  /** Skip the checks that files exist (for `toConfig` round trips in memory). */
  skipFileChecks?: boolean;
  /** CPU flags for machine-dependent quantization defaults (tests); default /proc/cpuinfo. */
  cpuinfo?: string;
}

function abs(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/** A sweep value as a name suffix: `0.3`, `static`, `true`. */
function suffixOf(values: readonly unknown[]): string {
  return values.map((v) => String(v).replace(/[^A-Za-z0-9._+-]/g, '_')).join('-');
}

function cartesian<T>(lists: readonly (readonly T[])[]): T[][] {
  return lists.reduce<T[][]>((acc, list) => acc.flatMap((prefix) => list.map((v) => [...prefix, v])), [[]]);
}

/** Where a sweep key points: the pass index and the field. */
function sweepTarget(key: string, passes: readonly StepConfig[]): { index: number; field: string } | string {
  const dot = key.indexOf('.');
  let candidates = passes.map((p, index) => ({ p, index }));
  let field = key;
  if (dot > 0) {
    const head = key.slice(0, dot);
    field = key.slice(dot + 1);
    candidates = /^\d+$/.test(head) ? candidates.filter((c) => c.index === Number(head)) : candidates.filter((c) => c.p.type === head);
    if (candidates.length === 0) return `no pass ${/^\d+$/.test(head) ? `at index ${head}` : `of type '${head}'`} in this variant`;
  }
  const known = candidates.filter((c) => {
    const f = STEPS[c.p.type].fields;
    return f === 'any' || f.includes(field);
  });
  if (known.length === 0) return `no pass of this variant has an option '${field}'`;
  if (known.length > 1) return `several passes have an option '${field}': write '<type>.${field}' or '<pass index>.${field}'`;
  return { index: known[0]!.index, field };
}

interface Expanded {
  name: string;
  parent?: string;
  passes: StepConfig[];
  /** Index of the config variant, for error paths. */
  origin: number;
  from?: string;
  suffix?: string;
}

/** What `resolveStep` needs from the config around the step. */
export interface StepContext {
  /** Folder relative paths resolve against. */
  base: string;
  /** The config's calibration data (absolute), the default of quantize (static) and prune (channels). */
  calibration?: string;
  /** Names a distill teacher may use instead of a file (the variants and the reference). */
  variantNames?: ReadonlySet<string>;
  cpuinfo?: string;
  cpu?: () => ReturnType<typeof detectCpu>;
}

/**
 * Resolves one step: refuses unknown fields, fills the pipeline defaults (see the file comment), makes paths
 * absolute and checks the options with the pass's own schema. Issues have paths relative to the step.
 *
 * @example
 * ```ts
 * resolveStep({ type: 'prune', method: 'channels', sparsity: 2 }, { base: '.' }).issues;
 * // [{ path: ['sparsity'], message: 'Too big: expected number to be <=1' }]
 * ```
 */
export function resolveStep(
  p: StepConfig,
  ctx: StepContext,
): { step?: StepConfig; issues: { path: Path; message: string }[]; files: { path: Path; file: string; kind: 'file' | 'model' }[] } {
  const issues: { path: Path; message: string }[] = [];
  const files: { path: Path; file: string; kind: 'file' | 'model' }[] = [];
  const kind = STEPS[p.type];
  if (!kind) return { issues: [{ path: ['type'], message: `unknown step type ${JSON.stringify(p.type)} ${oneOf(STEP_TYPES)}` }], files };
  const { type, ...given } = p;
  for (const k of Object.keys(given)) {
    if (kind.apiOnly?.includes(k)) issues.push({ path: [k], message: `${k} cannot be given to a pipeline (it is a function: call ${type}() directly)` });
    else if (kind.fields !== 'any' && !kind.fields.includes(k)) issues.push({ path: [k], message: `unknown option of ${type} ${oneOf(kind.fields, 40)}` });
  }
  const o: Record<string, unknown> = { ...given };
  if (type === 'quantize') {
    const mode = (o.mode as string | undefined) ?? 'static';
    if (mode === 'static' && o.calibration === undefined && ctx.calibration) o.calibration = ctx.calibration;
    if (o.latency === undefined) o.latency = 'off';
    if (mode !== 'weight-only') {
      const cpu = ctx.cpu?.() ?? detectCpu(ctx.cpuinfo);
      const ep = (o.ep as ExecutionProvider | undefined) ?? 'cpu';
      if (o.activationType === undefined) o.activationType = decideActivationType(ep, cpu).value;
      if (o.reduceRange === undefined) o.reduceRange = decideReduceRange(ep, cpu).value;
    }
  }
  if (type === 'prune' && o.method === 'channels' && o.calibration === undefined && ctx.calibration) o.calibration = ctx.calibration;
  if (type === 'distill' && o.threads === undefined) o.threads = 1;
  if (type === 'convert' && o.to !== 'tfjs' && o.keepIoTypes === undefined) o.keepIoTypes = true;
  for (const f of kind.dataFields) {
    if (o[f] === undefined) continue;
    if (typeof o[f] !== 'string') {
      issues.push({ path: [f], message: `Expected a dataset descriptor path (the pipeline keys its cache by the descriptor's content) but received ${typeof o[f]}` });
      continue;
    }
    o[f] = abs(ctx.base, o[f] as string);
    files.push({ path: [f], file: o[f] as string, kind: 'file' });
  }
  for (const f of kind.modelFields) {
    if (typeof o[f] !== 'string') continue;
    if (f === 'teacher' && ctx.variantNames?.has(o[f] as string)) continue; // a variant name
    o[f] = abs(ctx.base, o[f] as string);
    files.push({ path: [f], file: o[f] as string, kind: 'model' });
  }
  if (issues.length) return { issues, files };
  const r = kind.schema.safeParse(o);
  if (!r.success) return { issues: r.error.issues.map((i) => ({ path: i.path, message: i.message })), files };
  return { step: { type, ...(r.data as Record<string, unknown>) }, issues, files };
}

/**
 * Resolves a config (a parsed one, or raw JSON): checks every pass's options with the pass's own schema, fills
 * defaults, expands sweeps and swept parents, makes paths absolute and checks that files exist. Throws an
 * OptionsError listing every bad field.
 *
 * @example
 * ```ts
 * const resolved = await resolveConfig(JSON.parse(await readFile('sweep.json', 'utf8')), { baseDir: '.', source: 'sweep.json' });
 * resolved.variants.map((v) => v.name); // ['pruned-0.3', 'pruned-0.5', 'int8-of-pruned-0.3', …]
 * ```
 */
export async function resolveConfig(raw: unknown, options: ResolveOptions = {}): Promise<ResolvedConfig> {
  const { source } = options;
  const base = resolve(options.baseDir ?? '.');
  const c = parseConfig(raw, source);
  const issues = new Issues();

  // sweeps
  const byName = new Map<string, number>();
  c.variants.forEach((v, i) => {
    if (v.name === c.reference) issues.add(['variants', i, 'name'], `'${v.name}' is the reference row's name`);
    else if (byName.has(v.name)) issues.add(['variants', i, 'name'], `'${v.name}' is also the name of variants[${byName.get(v.name)}]`);
    else byName.set(v.name, i);
  });
  const own = new Map<number, Expanded[]>();
  c.variants.forEach((v, i) => {
    const passes = v.passes as StepConfig[];
    if (!v.sweep || Object.keys(v.sweep).length === 0) {
      own.set(i, [{ name: v.name, passes, origin: i, ...(v.parent ? { parent: v.parent } : {}) }]);
      return;
    }
    const keys = Object.keys(v.sweep);
    const targets = keys.map((k) => sweepTarget(k, passes));
    let ok = true;
    targets.forEach((t, j) => {
      if (typeof t === 'string') {
        issues.add(['variants', i, 'sweep', keys[j]!], t);
        ok = false;
      }
    });
    if (!ok) return own.set(i, []);
    const combos = cartesian(keys.map((k) => v.sweep![k]!));
    own.set(
      i,
      combos.map((values) => {
        const copy = passes.map((p) => ({ ...p }));
        values.forEach((value, j) => {
          const t = targets[j] as { index: number; field: string };
          copy[t.index]![t.field] = value;
        });
        const suffix = suffixOf(values);
        return { name: `${v.name}-${suffix}`, passes: copy, origin: i, from: v.name, suffix, ...(v.parent ? { parent: v.parent } : {}) };
      }),
    );
  });

  // parents: a child of a swept parent expands with it, in parent order
  const done = new Map<number, Expanded[]>();
  const visiting = new Set<number>();
  const expand = (i: number): Expanded[] => {
    const hit = done.get(i);
    if (hit) return hit;
    const v = c.variants[i]!;
    if (visiting.has(i)) {
      issues.add(['variants', i, 'parent'], `the parents of '${v.name}' form a cycle`);
      return [];
    }
    visiting.add(i);
    let out = own.get(i)!;
    if (v.parent && v.parent !== c.reference) {
      const pi = byName.get(v.parent);
      if (pi === undefined) {
        issues.add(['variants', i, 'parent'], `no variant named '${v.parent}' ${oneOf([c.reference, ...byName.keys()])}`);
        out = [];
      } else {
        const parents = expand(pi);
        if (parents.length === 1 && !parents[0]!.suffix) out = out.map((e) => ({ ...e, parent: parents[0]!.name }));
        else {
          out = parents.flatMap((p) =>
            out.map((e) => {
              const suffix = [p.suffix, e.suffix].filter(Boolean).join('-');
              return { ...e, name: `${v.name}-${suffix}`, parent: p.name, from: v.name, suffix };
            }),
          );
        }
      }
    } else out = out.map((e) => ({ ...e, parent: undefined }));
    visiting.delete(i);
    done.set(i, out);
    return out;
  };
  const expanded = c.variants.flatMap((_, i) => expand(i));
  const names = new Set<string>([c.reference]);
  for (const e of expanded) {
    if (names.has(e.name)) issues.add(['variants', e.origin, 'name'], `expanding the sweep makes a second variant named '${e.name}'`);
    names.add(e.name);
  }

  // top level
  const files: { path: Path; file: string; kind: 'file' | 'model' }[] = [];
  const model = abs(base, c.model);
  files.push({ path: ['model'], file: model, kind: 'model' });
  const data = c.data !== undefined ? abs(base, c.data) : undefined;
  if (data) files.push({ path: ['data'], file: data, kind: 'file' });
  const calibration = c.calibration !== undefined ? abs(base, c.calibration) : undefined;
  if (calibration) files.push({ path: ['calibration'], file: calibration, kind: 'file' });
  const evaluate: ResolvedEvaluate = { ...c.evaluate };
  if (evaluate.data !== undefined) {
    evaluate.data = abs(base, evaluate.data);
    files.push({ path: ['evaluate', 'data'], file: evaluate.data, kind: 'file' });
  } else if (data) evaluate.data = data;

  // passes
  let cpu: ReturnType<typeof detectCpu> | undefined;
  const variants: ResolvedVariant[] = [];
  for (const e of expanded) {
    const passes: StepConfig[] = [];
    e.passes.forEach((p, j) => {
      const r = resolveStep(p, { base, calibration, variantNames: names, cpuinfo: options.cpuinfo, cpu: () => (cpu ??= detectCpu(options.cpuinfo)) });
      const at: Path = ['variants', e.origin, 'passes', j];
      for (const i of r.issues) issues.add([...at, ...i.path], i.message);
      for (const f of r.files) files.push({ ...f, path: [...at, ...f.path] });
      if (r.step) passes.push(r.step);
    });
    variants.push({ name: e.name, ...(e.parent ? { parent: e.parent } : {}), passes, ...(e.from ? { from: e.from } : {}) });
  }
  // a teacher that names a variant must be computed before its student: refuse names that come later
  const order = new Map(variants.map((v, i) => [v.name, i]));
  variants.forEach((v, i) => {
    for (const p of v.passes) {
      const t = p.type === 'distill' ? (p.teacher as string | undefined) : undefined;
      if (t !== undefined && t !== c.reference && order.has(t) && order.get(t)! >= i) {
        issues.add(['variants', i, 'passes'], `teacher '${t}' must be a variant listed before '${v.name}'`);
      }
    }
  });
  issues.throwIfAny(source);

  if (!options.skipFileChecks) {
    for (const f of files) {
      const s = await stat(f.file).catch(() => undefined);
      if (!s?.isFile()) issues.add(f.path, s ? `${f.file} is not a file` : `no such file: ${f.file}`);
    }
    if (issues.list.length) throw new LoadError(`Config${source ? ` ${source}` : ''} names missing files: ${issues.list.join('; ')}`);
  }
  return {
    model,
    ...(data ? { data } : {}),
    ...(calibration ? { calibration } : {}),
    outDir: abs(base, c.outDir),
    seed: c.seed,
    reference: c.reference,
    evaluate,
    variants,
  };
}

/** The folder a config file's relative paths resolve against. */
export function configBaseDir(configPath: string): string {
  return dirname(resolve(configPath));
}
