/**
 * Runs a resolved config: the float model and every variant, each made from its parent by its passes, saved, and
 * measured (size, accuracy or agreement, latency); then `footprint.json` and, for a whole run, the reports.
 *
 * Cases of a variant's model:
 * 1. `<outDir>/cache/<key>.onnx` exists and `force` is off: it is reused as it is (note `reused: model …`).
 * 2. Else the parent's model (computed first, the same way) goes through the passes and is saved there.
 * 3. A pass fails: the variant is recorded with `error` (its size zeroed, nothing measured); its descendants too.
 * Metrics follow the same rule with `<key>.<measureKey>.json`.
 *
 * Sharding (`shard: { index, count }`): the variants (sweeps expanded, in config order) are dealt round-robin, the
 * i-th run records variants i, i+n, i+2n, …; the reference is measured in every shard (a report needs it),
 * parents are computed as needed (and cached) but only recorded by their own shard.
 */
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fp16Pass } from '../convert/fp16.js';
import { saveTfjs } from '../convert/tfjs/index.js';
import { distillPass } from '../distill/index.js';
import { OnnxpressError, OptionsError, PassError } from '../errors.js';
import { compareOutputs, evaluate } from '../eval/accuracy.js';
import { loadDataset, type FileDataset } from '../eval/datasets.js';
import { measureLatency } from '../eval/latency.js';
import { machineInfo } from '../eval/machine.js';
import { buildReport, renderMarkdown, writeReport } from '../eval/report.js';
import { FOOTPRINT_SCHEMA_ID, footprintSchema, type AccuracyMetrics, type AgreementMetrics, type Footprint, type LatencyRow, type MachineInfo, type SizeMetrics, type VariantResult } from '../eval/schema.js';
import { measureSize } from '../eval/size.js';
import { cleanupPass } from '../onnx/hygiene/index.js';
import type { Model } from '../onnx/ir.js';
import { loadModel, saveModel } from '../onnx/io.js';
import { runPass } from '../pass.js';
import { prune, type PruneOptions } from '../prune/index.js';
import { quantize, type QuantizeOptions } from '../quantize/quantize.js';
import { temporaryPath, writeFileAtomic } from '../util/fs.js';
import { cachePaths, canonicalJson, ContentHashes, readCached, sha256, stepKey, writeCached } from './cache.js';
import type { ResolvedConfig, ResolvedVariant, StepConfig } from './config.js';

/** What a run reports as it goes. */
export interface RunProgress {
  /** The variant concerned (the reference's name for the float model). */
  variant: string;
  stage: 'model' | 'reused' | 'measure' | 'done' | 'failed';
  /** Variants recorded so far and in all (this shard's). */
  done: number;
  total: number;
  message?: string;
}

/** Options of `runConfig`. */
export interface RunOptions {
  /** Recompute models and metrics even when the cache has them. */
  force?: boolean;
  /** Run slice `index` (1-based) of `count`. */
  shard?: { index: number; count: number };
  onProgress?: (p: RunProgress) => void;
  /** Version recorded in footprint.json and the report (default: onnxpress's package.json). */
  version?: string;
  /** Write report.json/md/html after a whole (unsharded) run (default true). */
  report?: boolean;
}

/** What `runConfig` returns. */
export interface RunResult {
  /** The recorded rows: the reference first, then this run's variants in config order. */
  variants: VariantResult[];
  /** The footprint written. */
  footprint: string;
  /** The reports written (whole runs only). */
  report?: { json: string; md: string; html: string };
  /** The Markdown table (whole runs only). */
  markdown?: string;
  /** Names of the variants that failed. */
  failed: string[];
}

// ---------------------------------------------------------------------------------------------------------------

let versionCache: string | undefined;
async function ownVersion(): Promise<string> {
  if (versionCache) return versionCache;
  try {
    // dist/src/pipeline/run.js → the package root
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    versionCache = pkg.version ?? '0.0.0';
  } catch {
    versionCache = '0.0.0';
  }
  return versionCache;
}

/** The summary of an evaluation that reports keep. */
function accuracyOf(r: Awaited<ReturnType<typeof evaluate>>): AccuracyMetrics {
  return { samples: r.samples, top1: r.top1, top5: r.top5, macro: r.macro, perClass: r.perClass, confusion: r.confusion };
}

/** SQNR is +Infinity for identical outputs, which JSON cannot hold: capped at a value no float32 pair reaches. */
const SQNR_CAP_DB = 999;

function agreementOf(r: Awaited<ReturnType<typeof compareOutputs>>): AgreementMetrics {
  return { samples: r.samples, top1Agreement: r.top1Agreement, cosine: r.cosine, sqnrDb: Math.min(r.sqnrDb, SQNR_CAP_DB) };
}

const EMPTY_SIZE: SizeMetrics = { bytes: 0, gzipBytes: 0, parameters: 0, zeroShare: 0, bytesByDtype: {}, macs: 0, macsByOp: {} };

interface Metrics {
  size: SizeMetrics;
  accuracy?: AccuracyMetrics;
  agreement?: AgreementMetrics;
  latency: LatencyRow[];
  evaluateSeconds: number;
}

interface Made {
  /** The model file (in the cache, or the original float model). */
  file: string;
  key: string;
  passSeconds: number;
  notes: string[];
  reused: boolean;
}

/** What a pass step produced. */
interface StepOutput {
  model: Model;
  notes: string[];
}

/** The inputs a dataset must feed (named inputs that are not initializers). */
function inputNamesOf(model: Model): string[] {
  return model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
}

/**
 * Runs one step. Passes get the run's seed; datasets and models named by path are loaded here (passes never touch
 * files).
 */
async function applyStep(model: Model, step: StepConfig, seed: number, teacherModel: (name: string) => Promise<Model | undefined>): Promise<StepOutput> {
  const { type, ...o } = step;
  const notes: string[] = [];
  const note = (n: string) => notes.push(n);
  switch (type) {
    case 'prune': {
      const r = await prune(model, o as PruneOptions);
      notes.push(...r.report.notes);
      return { model: r.model, notes };
    }
    case 'quantize': {
      const r = await quantize(model, { ...(o as QuantizeOptions), seed }, { seed, note });
      if (r.report.outcome === 'float') notes.push('quantize returned the float model (see the quantize report)');
      const kept = r.report.keptFloat ?? [];
      if (kept.length) notes.push(`quantize kept ${kept.length} node(s) in float: ${kept.map((k) => `${k.node} (${k.reason})`).join(', ')}`);
      return { model: r.model, notes };
    }
    case 'distill': {
      const { data, val, student, teacher, ...rest } = o as Record<string, unknown> & { data: string; val?: string; student?: string; teacher?: string };
      let teacherM = model;
      let studentM: Model | undefined;
      if (teacher !== undefined) {
        teacherM = (await teacherModel(teacher)) ?? (await loadModel(teacher));
        studentM = model;
      } else if (student !== undefined) studentM = await loadModel(student);
      const names = inputNamesOf(studentM ?? teacherM);
      const train = await loadDataset(data, { inputNames: names });
      const valData = val !== undefined ? await loadDataset(val, { inputNames: names }) : undefined;
      const r = await runPass(distillPass, teacherM, { ...rest, seed, data: train, ...(valData ? { val: valData } : {}), ...(studentM ? { student: studentM } : {}) }, { seed, note });
      return { model: r.model, notes };
    }
    case 'hygiene': {
      const r = await runPass(cleanupPass, model, o, { seed, note });
      return { model: r.model, notes };
    }
    case 'convert': {
      const { to, shardBytes: _shard, ...rest } = o as { to: string; shardBytes?: number };
      // tfjs: the model goes on unchanged; its TensorFlow.js form is written when the variant is recorded
      if (to === 'tfjs') return { model, notes };
      if (to !== 'fp16') throw new OptionsError(`convert: unknown target '${to}'`);
      const r = await runPass(fp16Pass, model, rest, { seed, note });
      return { model: r.model, notes };
    }
  }
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/** Copies a file atomically: to a temporary name beside the target (streamed by the OS), then renamed into place. */
async function copyAtomic(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  const tmp = temporaryPath(to);
  try {
    await copyFile(from, tmp);
    await rename(tmp, to);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Runs a resolved config (see `resolveConfig`) and writes its outputs under `config.outDir`.
 *
 * @example
 * ```ts
 * const config = await resolveConfig(JSON.parse(await readFile('sweep.json', 'utf8')), { baseDir: '.' });
 * const { variants, report } = await runConfig(config);
 * console.log(report?.html);
 * ```
 */
export async function runConfig(config: ResolvedConfig, options: RunOptions = {}): Promise<RunResult> {
  const { outDir, seed, reference } = config;
  const force = options.force ?? false;
  if (options.shard) {
    const { index, count } = options.shard;
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 1 || index > count) {
      throw new OptionsError(`shard: expected i/n with 1 ≤ i ≤ n, got ${index}/${count}`);
    }
  }
  await mkdir(join(outDir, 'models'), { recursive: true });
  await mkdir(join(outDir, 'cache'), { recursive: true });
  const hashes = new ContentHashes();
  const machine: MachineInfo = machineInfo();
  const version = options.version ?? (await ownVersion());

  const byName = new Map(config.variants.map((v) => [v.name, v]));
  const selected = options.shard ? config.variants.filter((_, i) => i % options.shard!.count === options.shard!.index - 1) : config.variants;
  const total = selected.length + 1;
  let done = 0;
  const progress = (variant: string, stage: RunProgress['stage'], message?: string) =>
    options.onProgress?.({ variant, stage, done, total, ...(message !== undefined ? { message } : {}) });

  // keys: the float model's bytes, then each pass chained on its parent's key
  const refKey = await hashes.file(config.model);
  const keys = new Map<string, string>([[reference, refKey]]);
  const keyOf = async (v: ResolvedVariant): Promise<string> => {
    const hit = keys.get(v.name);
    if (hit) return hit;
    let k = v.parent ? await keyOf(byName.get(v.parent)!) : refKey;
    for (const step of v.passes) {
      // a teacher that names a variant is keyed by that variant's key
      if (step.type === 'distill' && typeof step.teacher === 'string' && (byName.has(step.teacher) || step.teacher === reference)) {
        const t = step.teacher === reference ? refKey : await keyOf(byName.get(step.teacher)!);
        k = await stepKey(k, step, seed, hashes, (n) => (n === step.teacher ? t : undefined));
      } else k = await stepKey(k, step, seed, hashes, () => undefined);
    }
    keys.set(v.name, k);
    return k;
  };
  for (const v of config.variants) await keyOf(v);

  // models, computed at most once per run, parents first
  const made = new Map<string, Promise<Made>>();
  made.set(reference, Promise.resolve({ file: config.model, key: refKey, passSeconds: 0, notes: [], reused: false }));
  const make = (name: string): Promise<Made> => {
    let m = made.get(name);
    if (!m) {
      m = makeVariant(byName.get(name)!);
      made.set(name, m);
    }
    return m;
  };
  const teacherModel = async (name: string): Promise<Model | undefined> => {
    if (name !== reference && !byName.has(name)) return undefined;
    return loadModel((await make(name)).file);
  };
  const makeVariant = async (v: ResolvedVariant): Promise<Made> => {
    const key = keys.get(v.name)!;
    const paths = cachePaths(outDir, key);
    type Meta = { passSeconds: number; notes: string[] };
    if (!force) {
      const meta = await readCached<Meta>(paths.meta);
      const exists = await stat(paths.model).then((s) => s.isFile(), () => false);
      if (meta && exists) {
        progress(v.name, 'reused');
        return { file: paths.model, key, passSeconds: meta.passSeconds, notes: meta.notes, reused: true };
      }
    }
    let parent: Made;
    try {
      parent = await make(v.parent ?? reference);
    } catch (e) {
      throw new PassError(`parent '${v.parent}' failed: ${firstLine(e)}`, { cause: e });
    }
    progress(v.name, 'model');
    const started = performance.now();
    let model = await loadModel(parent.file);
    const notes: string[] = [];
    for (const [i, step] of v.passes.entries()) {
      try {
        const r = await applyStep(model, step, seed, teacherModel);
        model = r.model;
        notes.push(...r.notes.map((n) => `${step.type}: ${n}`));
      } catch (e) {
        const where = `passes[${i}] (${step.type})`;
        if (e instanceof OnnxpressError) throw new PassError(`${where}: ${e.message}`, { cause: e });
        throw new PassError(`${where} failed: ${(e as Error).message}`, { cause: e });
      }
    }
    const passSeconds = (performance.now() - started) / 1000;
    await saveModel(model, paths.model);
    await writeCached(paths.meta, { passSeconds, notes } satisfies Meta);
    return { file: paths.model, key, passSeconds, notes, reused: false };
  };

  // measurement
  const ev = config.evaluate;
  let dataset: Promise<FileDataset> | undefined;
  let refModel: Promise<Model> | undefined;
  const evalData = async (model: Model) => (dataset ??= loadDataset(ev.data!, { inputNames: inputNamesOf(model) }));
  const dataHash = ev.data ? await hashes.descriptor(ev.data) : null;
  const measureKey = sha256(
    canonicalJson({ evaluate: { ...ev, data: dataHash }, reference: refKey, machine: { cpu: machine.cpu, cores: machine.cores, arch: machine.arch, onnxruntime: machine.onnxruntime } }),
  );
  const measure = async (name: string, m: Made, modelPath: string, isReference: boolean): Promise<{ metrics: Metrics; reused: boolean }> => {
    const cached = cachePaths(outDir, m.key, measureKey).metrics!;
    if (!force) {
      const hit = await readCached<Metrics>(cached);
      if (hit) return { metrics: hit, reused: true };
    }
    progress(name, 'measure');
    const started = performance.now();
    const model = await loadModel(modelPath);
    const size = await measureSize(model, { path: modelPath });
    const metrics: Metrics = { size, latency: [], evaluateSeconds: 0 };
    if (ev.data) {
      const data = await evalData(model);
      const common = { batchSize: ev.batchSize, ep: ev.ep, ...(ev.threads ? { threads: ev.threads } : {}), ...(ev.samples ? { limit: ev.samples } : {}) };
      if (data.hasLabels) metrics.accuracy = accuracyOf(await evaluate(model, data, common));
      else if (!isReference) {
        refModel ??= loadModel(config.model);
        metrics.agreement = agreementOf(await compareOutputs(await refModel, model, data, common));
      }
    }
    if (ev.latency) {
      const l = ev.latency;
      metrics.latency = await measureLatency(modelPath, { ep: l.ep, batch: l.batch, threads: l.threads, time: l.time, ...(l.maxTime ? { maxTime: l.maxTime } : {}), seed });
    }
    metrics.evaluateSeconds = (performance.now() - started) / 1000;
    await writeCached(cached, metrics);
    return { metrics, reused: false };
  };

  const record = async (v: ResolvedVariant | undefined): Promise<VariantResult> => {
    const name = v?.name ?? reference;
    const modelRel = `models/${name}.onnx`;
    const base = { name, ...(v?.parent ? { parent: v.parent } : v ? { parent: reference } : {}), passes: v?.passes ?? [], key: keys.get(name)!, model: modelRel };
    try {
      const m = await make(name);
      const modelPath = join(outDir, modelRel);
      await copyAtomic(m.file, modelPath);
      const { metrics, reused } = await measure(name, m, modelPath, !v);
      const notes = [...m.notes];
      const tfjs = v?.passes.find((p) => p.type === 'convert' && p.to === 'tfjs');
      if (tfjs) {
        const dir = join(outDir, 'models', `${name}.tfjs`);
        const t = await saveTfjs(await loadModel(modelPath), dir, typeof tfjs.shardBytes === 'number' ? { shardBytes: tfjs.shardBytes } : {});
        notes.push(`convert: TensorFlow.js graph model written to models/${name}.tfjs/ (${t.files.length} files, ${t.bytes} bytes)`);
      }
      if (m.reused) notes.push(`reused: model from cache/${m.key}.onnx`);
      if (reused) notes.push('reused: metrics from cache');
      done++;
      progress(name, 'done');
      return {
        ...base,
        size: metrics.size,
        ...(metrics.accuracy ? { accuracy: metrics.accuracy } : {}),
        ...(metrics.agreement ? { agreement: metrics.agreement } : {}),
        latency: metrics.latency,
        timings: { passSeconds: m.passSeconds, evaluateSeconds: metrics.evaluateSeconds },
        ...(notes.length ? { notes } : {}),
      };
    } catch (e) {
      done++;
      progress(name, 'failed', firstLine(e));
      return { ...base, size: EMPTY_SIZE, latency: [], timings: { passSeconds: 0, evaluateSeconds: 0 }, error: (e as Error).message };
    }
  };

  const variants: VariantResult[] = [await record(undefined)];
  // the reference must be measurable: a run without it has nothing to compare against
  if (variants[0]!.error) {
    await rm(join(outDir, `models/${reference}.onnx`), { force: true });
    throw new PassError(`the reference model ${config.model} could not be measured: ${variants[0]!.error}`);
  }
  for (const v of selected) variants.push(await record(v));

  const footprint: Footprint = footprintSchema.parse({
    schema: FOOTPRINT_SCHEMA_ID,
    tool: { name: 'onnxpress', version },
    createdAt: new Date().toISOString(),
    machine,
    reference,
    ...(options.shard ? { shard: options.shard } : {}),
    config: config as unknown as Record<string, unknown>,
    variants,
  });
  const footprintPath = join(outDir, options.shard ? `footprint-${options.shard.index}-of-${options.shard.count}.json` : 'footprint.json');
  await writeFileAtomic(footprintPath, `${JSON.stringify(footprint, null, 2)}\n`);
  const result: RunResult = { variants, footprint: footprintPath, failed: variants.filter((v) => v.error).map((v) => v.name) };
  if (!options.shard && options.report !== false) {
    const report = buildReport({ variants, machine, reference, createdAt: footprint.createdAt, version });
    result.report = await writeReport(outDir, report);
    result.markdown = renderMarkdown(report);
  }
  return result;
}
