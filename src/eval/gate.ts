/**
 * The CI regression gate: is a candidate model no bigger, no slower and no less accurate than a baseline, within
 * budgets? Three checks:
 *
 * - **size**: bytes on disk (model file plus external data) of the candidate against the baseline's (the model
 *   file, or the `size.bytes` a committed `report.json` recorded). Deterministic: pass or fail.
 * - **accuracy** (with a labelled dataset): top-1 drop in percentage points. The baseline's top-1 comes from the
 *   report when it has one measured on as many samples, else from evaluating the baseline model.
 * - **latency**: both models timed in the same process, interleaved (A B, B A, A B, … so that neither always goes
 *   first), one candidate/baseline ratio per pair of blocks, and a bootstrap interval on the median ratio (see
 *   `bootstrap.ts`). Fail only when the whole interval is above 1 + budget, pass when it is at or below; in
 *   between, measure more until the time limit, then "inconclusive". The baseline model is always re-measured:
 *   absolute times in a report come from another machine and mean nothing here. Blocks are timed by process CPU
 *   time when one intra-op thread runs (the default): on a shared runner the wall clock also counts the time
 *   other jobs held the CPU, and bench/gate measured an A/A gate failing on it under load (see `clock`).
 *
 * The verdict: fail when any check failed, else inconclusive when latency could not decide, else pass.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { LoadError, OptionsError, expected, oneOf } from '../errors.js';
import { formatBytes, formatPercent, formatTable } from '../onnx/inspect.js';
import type { Model } from '../onnx/ir.js';
import { loadModel } from '../onnx/io.js';
import { TensorProto_DataLocation, tensorSource } from '../onnx/proto.js';
import { EXECUTION_PROVIDERS, Runner, type ExecutionProvider } from '../onnx/runner.js';
import { evaluate } from './accuracy.js';
import { decideRatio, type RatioDecision } from './bootstrap.js';
import { loadDataset } from './datasets.js';
import { syntheticFeeds } from './feeds.js';
import { machineInfo } from './machine.js';
import { reportSchema, type MachineInfo, type VariantResult } from './schema.js';
import { median } from '../util/stats.js';

// ---------------------------------------------------------------------------------------------------------------
// Options

const gateOptionsSchema = z
  .object({
    /** Baseline: an ONNX model file, or a `report.json` (its reference variant, or `baselineVariant`). */
    baseline: z.string().min(1),
    /** The candidate ONNX model file. */
    candidate: z.string().min(1),
    /** Labelled dataset descriptor for the accuracy check (no accuracy check without it). */
    data: z.string().min(1).optional(),
    /** Which variant of a baseline report to compare with (default: the report's reference). */
    baselineVariant: z.string().min(1).optional(),
    /** Largest accepted size increase, a fraction (0.01 = 1%). */
    maxSizeIncrease: z.number().finite().gt(-1).default(0.01),
    /** Largest accepted increase of the median latency, a fraction (0.05 = 5%). */
    maxLatencyIncrease: z.number().finite().gt(-1).default(0.05),
    /** Largest accepted top-1 drop, in percentage points. */
    maxAccuracyDrop: z.number().finite().default(0.5),
    /** Run the latency check (default true). */
    latency: z.boolean().default(true),
    ep: z.enum(EXECUTION_PROVIDERS as unknown as [ExecutionProvider, ...ExecutionProvider[]]).default('cpu'),
    /** Batch size the latency is measured at. */
    batch: z.number().int().positive().default(1),
    /** Sizes of other symbolic input dimensions for the latency inputs (`{ sequence: 128 }`). */
    dims: z.record(z.string(), z.number().int().positive()).optional(),
    /** Intra-op threads while timing: 1 by default, which is the steadiest on a shared CI runner. */
    threads: z.number().int().positive().default(1),
    /**
     * How blocks are timed: `cpu` the process's CPU time, `wall` elapsed time; `auto` (default) is `cpu` with 1
     * thread and `wall` with more. CPU time leaves out the time other jobs held the CPU: on two cores shared with
     * a load of 9, A/A ratios spread 0.83–1.22 (quartiles) on the wall clock and 0.96–1.05 on the CPU clock.
     * With several threads it would add up the threads' time and hide a loss of parallelism, hence wall there.
     */
    clock: z.enum(['auto', 'wall', 'cpu']).default('auto'),
    /** Seconds the latency check may take (warm-up and sampling) before it settles for "inconclusive". */
    timeLimitSeconds: z.number().positive().default(60),
    /** Coverage of the bootstrap interval. */
    confidence: z.number().gt(0).lt(1).default(0.95),
    resamples: z.number().int().min(100).default(2000),
    /** Pairs measured before the first verdict may be taken. */
    minPairs: z.number().int().positive().default(20),
    /** Wall time one block of runs (one side of a pair) should take, in milliseconds. */
    blockMs: z.number().positive().default(25),
    /** Seed of the synthetic inputs and of the bootstrap. */
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();

/** Options of `gate`. Fractions for size and latency budgets (0.05 = 5%), percentage points for accuracy. */
export type GateOptions = z.input<typeof gateOptionsSchema> & {
  /** Progress of the long stages: evaluated samples, or seconds of the latency time limit used. */
  onProgress?: (stage: 'accuracy' | 'latency', done: number, total: number) => void;
};
type ResolvedOptions = z.output<typeof gateOptionsSchema>;

function parseOptions(options: GateOptions): ResolvedOptions {
  const { onProgress: _ignored, ...rest } = options;
  const r = gateOptionsSchema.safeParse(rest);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || '(options)';
    throw new OptionsError(`gate option ${field}: ${issue.message}`);
  }
  return r.data;
}

// ---------------------------------------------------------------------------------------------------------------
// Results

export type CheckVerdict = 'pass' | 'fail' | 'inconclusive';

/** The details of a latency check. */
export interface LatencyDetails {
  ep: ExecutionProvider;
  batch: number;
  threads: number;
  clock: 'wall' | 'cpu';
  /** Pairs of blocks measured. */
  pairs: number;
  runsPerBlock: number;
  /** Median candidate/baseline ratio and its bootstrap interval. */
  ratio: number;
  ratioLow: number;
  ratioHigh: number;
  confidence: number;
  minPairs: number;
  /** Seconds spent measuring (warm-up included). */
  seconds: number;
  timeLimitSeconds: number;
}

/** One check of the gate. */
export interface GateCheck {
  name: 'size' | 'accuracy' | 'latency';
  verdict: CheckVerdict;
  /** Bytes (size), top-1 as a fraction (accuracy), median milliseconds per run (latency). */
  baseline: number;
  candidate: number;
  unit: 'bytes' | 'top1' | 'ms';
  /** Size and latency: candidate / baseline − 1 (latency: the median pair ratio − 1). Accuracy: candidate − baseline in percentage points. */
  change: number;
  /** Size and latency: the largest accepted increase (fraction). Accuracy: the largest accepted drop (percentage points). */
  budget: number;
  /** Latency: the interval of `change`. */
  interval?: { low: number; high: number; confidence: number };
  /** Where the baseline number came from. */
  baselineSource: 'model' | 'report';
  /** One sentence: why this verdict. */
  summary: string;
  /** Seconds the check took. */
  seconds: number;
  latency?: LatencyDetails;
  /** Accuracy: samples evaluated. */
  samples?: number;
}

/** What `gate` returns; plain data, safe to `JSON.stringify`. */
export interface GateResult {
  verdict: CheckVerdict;
  checks: GateCheck[];
  baseline: { path: string; kind: 'model' | 'report'; variant?: string; model?: string };
  candidate: string;
  data?: string;
  machine?: MachineInfo;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Baseline

interface Baseline {
  path: string;
  kind: 'model' | 'report';
  /** The model file (for a report: resolved against the report's folder), and whether it exists. */
  model?: string;
  modelExists: boolean;
  variant?: VariantResult;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readBaseline(path: string, variantName: string | undefined): Promise<Baseline> {
  // a report is JSON (first non-blank byte "{"); an ONNX file is protobuf, which never starts with "{". Only the
  // first bytes are read to tell: a baseline model may be gigabytes.
  let first: string | undefined;
  try {
    const fh = await open(path, 'r');
    try {
      const head = Buffer.alloc(64);
      const { bytesRead } = await fh.read(head, 0, 64, 0);
      first = head.subarray(0, bytesRead).toString('latin1').trimStart()[0];
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoadError(code === 'ENOENT' ? `baseline ${path}: no such file` : `baseline ${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  if (!(path.endsWith('.json') || first === '{')) {
    if (variantName !== undefined) throw new OptionsError(`baselineVariant "${variantName}" applies to a report.json baseline, and ${path} is a model`);
    return { path, kind: 'model', model: path, modelExists: true };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new LoadError(`baseline report ${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const parsed = reportSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new LoadError(`baseline report ${path}: field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const report = parsed.data;
  const name = variantName ?? report.reference;
  const variant = report.variants.find((v) => v.name === name);
  if (!variant) throw new OptionsError(`baseline report ${path} has no variant "${name}" ${oneOf(report.variants.map((v) => v.name))}`);
  const model = resolve(dirname(path), variant.model);
  return { path, kind: 'report', model, modelExists: await exists(model), variant };
}

/** Bytes on disk of a model: its file plus the distinct external data files its tensors point to. */
async function modelBytes(path: string, model: Model): Promise<number> {
  let total = (await stat(path)).size;
  const files = new Set<string>();
  const visit = (g: Model['graph']) => {
    for (const v of g.initializers.values()) {
      const src = v.initializer ? tensorSource(v.initializer) : undefined;
      if (src?.dataLocation !== TensorProto_DataLocation.EXTERNAL) continue;
      const loc = src.externalData.find((e) => e.key === 'location')?.value;
      if (loc) files.add(resolve(dirname(path), loc));
    }
    for (const n of g.nodes) for (const s of n.subgraphs()) visit(s);
  };
  visit(model.graph);
  for (const f of files) total += (await stat(f)).size;
  return total;
}

// ---------------------------------------------------------------------------------------------------------------
// Interleaved timing

/** Options of `measureInterleaved`. */
export interface InterleaveOptions {
  /** Largest accepted increase of the median ratio (fraction). */
  budget: number;
  /** Wall time of one block, in milliseconds (default 25): long enough to average out scheduler noise. */
  blockMs?: number;
  /** Gives up ("inconclusive") after this many seconds, warm-up included (default 60). */
  timeLimitSeconds?: number;
  /** Pairs before the first verdict (default 20). */
  minPairs?: number;
  confidence?: number;
  resamples?: number;
  seed?: number;
  /** Untimed runs of each side before calibration (default 5). */
  warmupRuns?: number;
  /**
   * What a block's time is: `wall` (default) the elapsed time, what users wait for; `cpu` the process's CPU time
   * (user + system), which leaves out the time other jobs held the CPU (use with 1 thread).
   */
  clock?: 'wall' | 'cpu';
  /** The clock, in milliseconds, overriding `clock`; tests give a simulated one. */
  now?: () => number;
  onProgress?: (elapsedSeconds: number, limitSeconds: number) => void;
}

/** What `measureInterleaved` measured and decided. */
export interface InterleavedResult {
  decision: RatioDecision;
  /** Candidate/baseline ratio of each pair, in measuring order. */
  ratios: number[];
  /** Whether the candidate ran first in each pair. */
  candidateFirst: boolean[];
  runsPerBlock: number;
  /** Median time per run of each side, over the blocks (milliseconds). */
  baselineMs: number;
  candidateMs: number;
  seconds: number;
}


/**
 * Times two workloads interleaved and decides whether the candidate is slower than `1 + budget` times the
 * baseline. After a warm-up, one baseline run is timed to size the blocks (`blockMs` of baseline work; both
 * sides run the same number of times per block). Then pairs of blocks are timed back to back, the candidate first
 * in every other pair, and `decideRatio` looks at the ratios once `minPairs` are in and again each time their
 * count grew by a tenth (fewer looks than one per pair keep the repeated-testing error small), until it decides
 * or the time limit is reached.
 *
 * @example
 * ```ts
 * const r = await measureInterleaved(() => base.run(feeds), () => cand.run(feeds), { budget: 0.05, timeLimitSeconds: 30 });
 * r.decision.verdict; // 'pass' | 'fail' | 'undecided'
 * ```
 */
export async function measureInterleaved(baseline: () => Promise<unknown>, candidate: () => Promise<unknown>, options: InterleaveOptions): Promise<InterleavedResult> {
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const clock = options.now ?? (options.clock === 'cpu' ? cpuNow : () => performance.now());
  // the time limit is always wall time: it is what a CI job waits
  const wallNow = options.now ?? (() => performance.now());
  const blockMs = options.blockMs ?? 25;
  const limitMs = (options.timeLimitSeconds ?? 60) * 1000;
  const minPairs = options.minPairs ?? 20;
  const decideOptions = { minPairs, confidence: options.confidence, resamples: options.resamples, seed: options.seed };
  const start = wallNow();
  const warmup = options.warmupRuns ?? 5;
  for (let i = 0; i < warmup; i++) {
    await baseline();
    await candidate();
  }
  // size the blocks from the fastest of a few baseline runs (the least disturbed)
  let perRun = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = clock();
    await baseline();
    perRun = Math.min(perRun, clock() - t0);
  }
  const runsPerBlock = Math.max(1, Math.min(100_000, Math.ceil(blockMs / Math.max(perRun, 1e-6))));
  const block = async (run: () => Promise<unknown>) => {
    const t0 = clock();
    for (let i = 0; i < runsPerBlock; i++) await run();
    return clock() - t0;
  };
  const ratios: number[] = [];
  const candidateFirst: boolean[] = [];
  const baseTimes: number[] = [];
  const candTimes: number[] = [];
  let nextLook = minPairs;
  let decision: RatioDecision | undefined;
  for (;;) {
    const candFirst = ratios.length % 2 === 1;
    let tb: number, tc: number;
    if (candFirst) {
      tc = await block(candidate);
      tb = await block(baseline);
    } else {
      tb = await block(baseline);
      tc = await block(candidate);
    }
    // a clock too coarse for the block gives 0; such a pair says nothing
    if (tb > 0 && tc > 0) {
      ratios.push(tc / tb);
      candidateFirst.push(candFirst);
      baseTimes.push(tb / runsPerBlock);
      candTimes.push(tc / runsPerBlock);
    }
    const elapsed = wallNow() - start;
    options.onProgress?.(Math.min(elapsed, limitMs) / 1000, limitMs / 1000);
    const outOfTime = elapsed >= limitMs;
    if (ratios.length >= nextLook || outOfTime) {
      decision = decideRatio(ratios, options.budget, decideOptions);
      if (decision.verdict !== 'undecided' || outOfTime) break;
      nextLook = Math.max(ratios.length + 2, Math.ceil(ratios.length * 1.1));
    }
  }
  return { decision, ratios, candidateFirst, runsPerBlock, baselineMs: median(baseTimes), candidateMs: median(candTimes), seconds: (wallNow() - start) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// The gate

function signedPercent(fraction: number): string {
  const p = fraction * 100;
  const digits = Math.abs(p) < 1 ? 2 : 1;
  return `${p >= 0 ? '+' : '−'}${Math.abs(p).toFixed(digits)}%`;
}

function signedPoints(pp: number): string {
  return `${pp >= 0 ? '+' : '−'}${Math.abs(pp).toFixed(2)} pp`;
}

function budgetPercent(fraction: number): string {
  return `${signedPercent(fraction).replace(/\.0+%$/, '%')}`;
}

/**
 * Compares a candidate model with a baseline (a model, or a committed `report.json`) on size, accuracy (with
 * `data`) and latency, each against its budget.
 *
 * @example
 * ```ts
 * const r = await gate({ baseline: 'baseline/report.json', candidate: 'model.onnx', data: 'test.json', maxLatencyIncrease: 0.05 });
 * if (r.verdict === 'fail') console.log(gateMarkdown(r));
 * ```
 */
export async function gate(options: GateOptions): Promise<GateResult> {
  const o = parseOptions(options);
  const t0 = performance.now();
  // everything that can be wrong with the input is found before any time is spent measuring
  const baseline = await readBaseline(o.baseline, o.baselineVariant);
  const candidateModel = await loadModel(o.candidate);
  const reportModelMissing = (why: string) =>
    new OptionsError(
      `baseline report ${baseline.path}: variant "${baseline.variant!.name}" names model ${baseline.variant!.model}, which is not at ${baseline.model}; ${why}`,
    );
  if (o.latency && !baseline.modelExists) throw reportModelMissing('latency is measured on the baseline model (keep it beside the report, or turn the latency check off)');
  const reportAccuracy = baseline.variant?.accuracy;
  if (o.data !== undefined && !reportAccuracy && !baseline.modelExists) throw reportModelMissing('the report holds no accuracy for it, so the model must be evaluated');
  const baselineModel = baseline.modelExists ? await loadModel(baseline.model!) : undefined;

  const checks: GateCheck[] = [];

  // size
  {
    const s0 = performance.now();
    const baseBytes = baseline.variant ? baseline.variant.size.bytes : await modelBytes(baseline.model!, baselineModel!);
    const candBytes = await modelBytes(o.candidate, candidateModel);
    const change = candBytes / baseBytes - 1;
    const pass = candBytes <= baseBytes * (1 + o.maxSizeIncrease);
    checks.push({
      name: 'size',
      verdict: pass ? 'pass' : 'fail',
      baseline: baseBytes,
      candidate: candBytes,
      unit: 'bytes',
      change,
      budget: o.maxSizeIncrease,
      baselineSource: baseline.variant ? 'report' : 'model',
      summary: `${formatBytes(candBytes)} against ${formatBytes(baseBytes)} (${signedPercent(change)}; at most ${budgetPercent(o.maxSizeIncrease)} accepted)`,
      seconds: (performance.now() - s0) / 1000,
    });
  }

  // accuracy
  if (o.data !== undefined) {
    const s0 = performance.now();
    const inputNames = (m: Model) => m.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
    const candData = await loadDataset(o.data, { inputNames: inputNames(candidateModel) });
    if (!candData.hasLabels) throw new OptionsError(`dataset ${o.data} has no labels: the accuracy check needs them`);
    const useReport = reportAccuracy !== undefined && reportAccuracy.samples === candData.size;
    if (reportAccuracy && !useReport && !baselineModel) {
      throw reportModelMissing(`its accuracy was measured on ${reportAccuracy.samples} samples and ${o.data} has ${candData.size}, so the model must be evaluated`);
    }
    const total = candData.size * (useReport ? 1 : 2);
    const progress = (offset: number) => (done: number) => options.onProgress?.('accuracy', offset + done, total);
    const cand = await evaluate(candidateModel, candData, { ep: o.ep, onProgress: progress(0) });
    let baseTop1: number;
    if (useReport) baseTop1 = reportAccuracy.top1;
    else {
      const baseData = await loadDataset(o.data, { inputNames: inputNames(baselineModel!) });
      baseTop1 = (await evaluate(baselineModel!, baseData, { ep: o.ep, onProgress: progress(candData.size) })).top1;
    }
    const change = (cand.top1 - baseTop1) * 100;
    // a drop exactly at the budget passes; the epsilon absorbs the rounding of top-1 fractions
    const pass = -change <= o.maxAccuracyDrop + 1e-9;
    checks.push({
      name: 'accuracy',
      verdict: pass ? 'pass' : 'fail',
      baseline: baseTop1,
      candidate: cand.top1,
      unit: 'top1',
      change,
      budget: o.maxAccuracyDrop,
      baselineSource: useReport ? 'report' : 'model',
      summary: `top-1 ${formatPercent(cand.top1)} against ${formatPercent(baseTop1)} on ${cand.samples} samples (${signedPoints(change)}; a drop of at most ${o.maxAccuracyDrop} pp accepted)`,
      seconds: (performance.now() - s0) / 1000,
      samples: cand.samples,
    });
  }

  // latency
  if (o.latency) {
    const clock = o.clock === 'auto' ? (o.threads === 1 ? 'cpu' : 'wall') : o.clock;
    const feedOptions = { batch: o.batch, dims: o.dims, seed: o.seed };
    const baseFeeds = syntheticFeeds(baselineModel!, feedOptions);
    const candFeeds = syntheticFeeds(candidateModel, feedOptions);
    // sessions from the files, as a user's application would make them (and external data stays outside)
    const baseRunner = await Runner.create(baseline.model!, { ep: o.ep, threads: o.threads });
    let candRunner: Runner | undefined;
    try {
      candRunner = await Runner.create(o.candidate, { ep: o.ep, threads: o.threads });
      const cr = candRunner;
      const m = await measureInterleaved(
        () => baseRunner.run(baseFeeds),
        () => cr.run(candFeeds),
        {
          budget: o.maxLatencyIncrease,
          blockMs: o.blockMs,
          timeLimitSeconds: o.timeLimitSeconds,
          minPairs: o.minPairs,
          confidence: o.confidence,
          resamples: o.resamples,
          seed: o.seed,
          clock,
          onProgress: (d, t) => options.onProgress?.('latency', d, t),
        },
      );
      const d = m.decision;
      const verdict: CheckVerdict = d.verdict === 'undecided' ? 'inconclusive' : d.verdict;
      const ci = `${Math.round(d.confidence * 100)}% interval ${signedPercent(d.low - 1)} … ${signedPercent(d.high - 1)}`;
      const why =
        verdict === 'fail'
          ? `slower than the budget allows: the whole ${ci} is above ${budgetPercent(o.maxLatencyIncrease)}`
          : verdict === 'pass'
            ? `the whole ${ci} is at or below ${budgetPercent(o.maxLatencyIncrease)}`
            : d.pairs < o.minPairs
              ? `only ${d.pairs} of the ${o.minPairs} pairs needed fit in the ${o.timeLimitSeconds} s time limit`
              : `the ${ci} still straddles ${budgetPercent(o.maxLatencyIncrease)} after ${o.timeLimitSeconds} s: too noisy, or too close to the budget, to decide`;
      checks.push({
        name: 'latency',
        verdict,
        baseline: m.baselineMs,
        candidate: m.candidateMs,
        unit: 'ms',
        change: d.median - 1,
        budget: o.maxLatencyIncrease,
        interval: { low: d.low - 1, high: d.high - 1, confidence: d.confidence },
        baselineSource: 'model',
        summary: `median ratio ${Number.isFinite(d.median) ? signedPercent(d.median - 1) : 'n/a'} over ${d.pairs} interleaved pairs; ${why}`,
        seconds: m.seconds,
        latency: {
          ep: o.ep,
          batch: o.batch,
          threads: o.threads,
          clock,
          pairs: d.pairs,
          runsPerBlock: m.runsPerBlock,
          ratio: d.median,
          ratioLow: d.low,
          ratioHigh: d.high,
          confidence: d.confidence,
          minPairs: o.minPairs,
          seconds: m.seconds,
          timeLimitSeconds: o.timeLimitSeconds,
        },
      });
    } finally {
      await candRunner?.release();
      await baseRunner.release();
    }
  }

  const verdict: CheckVerdict = checks.some((c) => c.verdict === 'fail') ? 'fail' : checks.some((c) => c.verdict === 'inconclusive') ? 'inconclusive' : 'pass';
  const result: GateResult = {
    verdict,
    checks,
    baseline: { path: o.baseline, kind: baseline.kind, ...(baseline.variant ? { variant: baseline.variant.name, model: baseline.model } : {}) },
    candidate: o.candidate,
    ...(o.data !== undefined ? { data: o.data } : {}),
    seconds: 0,
  };
  try {
    result.machine = machineInfo();
  } catch {
    // the machine description is a courtesy; a platform it cannot read must not break the gate
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/** The cells of one check: check, baseline, candidate, change, budget, verdict. */
function checkCells(c: GateCheck): string[] {
  const value = (v: number) => (c.unit === 'bytes' ? formatBytes(v) : c.unit === 'top1' ? formatPercent(v) : Number.isFinite(v) ? `${v.toPrecision(3)} ms` : 'n/a');
  let name: string = c.name;
  let change: string;
  let budget: string;
  if (c.name === 'accuracy') {
    name = `accuracy (top-1${c.samples !== undefined ? `, ${c.samples} samples` : ''})`;
    change = signedPoints(c.change);
    budget = `drop ≤ ${c.budget} pp`;
  } else {
    change = Number.isFinite(c.change) ? signedPercent(c.change) : 'n/a';
    budget = `≤ ${budgetPercent(c.budget)}`;
  }
  if (c.latency) {
    const l = c.latency;
    name = `latency (${l.ep}, batch ${l.batch}, ${l.threads} thread${l.threads === 1 ? '' : 's'}, ${l.clock} time)`;
    if (c.interval && Number.isFinite(c.interval.low)) change += ` (${Math.round(c.interval.confidence * 100)}% CI ${signedPercent(c.interval.low)} … ${signedPercent(c.interval.high)})`;
  }
  return [name, value(c.baseline), value(c.candidate), change, budget, c.verdict];
}

const HEADER = ['check', 'baseline', 'candidate', 'change', 'budget', 'verdict'];

function baselineLabel(r: GateResult): string {
  return r.baseline.kind === 'report' ? `${r.baseline.path} (variant "${r.baseline.variant}", model ${r.baseline.model})` : r.baseline.path;
}

/**
 * The gate's result as text for a terminal: what was compared, a table of the checks, and the verdict.
 *
 * @example
 * ```ts
 * console.log(formatGateResult(await gate({ baseline: 'a.onnx', candidate: 'b.onnx' })));
 * ```
 */
export function formatGateResult(r: GateResult): string {
  const lines = [`Baseline  ${baselineLabel(r)}`, `Candidate ${r.candidate}`];
  if (r.data) lines.push(`Data      ${r.data}`);
  lines.push('', formatTable([HEADER, ...r.checks.map(checkCells)]), '');
  for (const c of r.checks) lines.push(`${c.name}: ${c.verdict}: ${c.summary}`);
  const failed = r.checks.filter((c) => c.verdict === 'fail').map((c) => c.name);
  lines.push('', `Verdict: ${r.verdict}${failed.length ? ` (${failed.join(', ')})` : ''}  [${r.seconds.toFixed(1)} s]`);
  return lines.join('\n');
}

const VERDICT_MARK: Record<CheckVerdict, string> = { pass: '✅ pass', fail: '❌ fail', inconclusive: '⚠️ inconclusive' };

/** A table cell: pipes and newlines would break the row. */
function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * The gate's result as Markdown fit for a pull-request comment: a heading with the verdict, the table of checks,
 * and a note on how latency was measured and on which machine.
 *
 * @example
 * ```ts
 * await writeFileAtomic('gate.md', gateMarkdown(result));
 * ```
 */
export function gateMarkdown(r: GateResult): string {
  const rows = r.checks.map(checkCells).map((cells) => {
    cells[5] = VERDICT_MARK[cells[5] as CheckVerdict];
    return cells;
  });
  const lines = [
    `### onnxpress gate: ${VERDICT_MARK[r.verdict]}`,
    '',
    `| ${HEADER.map((h) => h[0]!.toUpperCase() + h.slice(1)).join(' | ')} |`,
    '| --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((cells) => `| ${cells.map(mdCell).join(' | ')} |`),
    '',
  ];
  for (const c of r.checks) if (c.verdict !== 'pass') lines.push(`- **${c.name}**: ${mdCell(c.summary)}`);
  const notes = [`Baseline \`${baselineLabel(r)}\`, candidate \`${r.candidate}\`${r.data ? `, data \`${r.data}\`` : ''}.`];
  const lat = r.checks.find((c) => c.latency)?.latency;
  if (lat) {
    notes.push(
      `Latency: ${lat.pairs} interleaved pairs of ${lat.runsPerBlock}-run blocks (${lat.clock} time) in ${lat.seconds.toFixed(1)} s, baseline re-measured on this machine${r.machine ? ` (${r.machine.cpu}, ${r.machine.cores} cores, onnxruntime ${r.machine.onnxruntime})` : ''}.`,
    );
  }
  if (lines[lines.length - 1] !== '') lines.push('');
  lines.push(`<sub>${notes.map(mdCell).join(' ')}</sub>`, '');
  return lines.join('\n');
}

function xml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    // characters XML 1.0 cannot hold at all, even escaped
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '');
}

/**
 * The gate's result as JUnit XML, which CI systems show as test results: one test case per check, a `<failure>`
 * for a failed check and `<skipped>` for an inconclusive one.
 *
 * @example
 * ```ts
 * await writeFileAtomic('gate.xml', gateJunit(result));
 * ```
 */
export function gateJunit(r: GateResult): string {
  const failures = r.checks.filter((c) => c.verdict === 'fail').length;
  const skipped = r.checks.filter((c) => c.verdict === 'inconclusive').length;
  const counts = `tests="${r.checks.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${r.seconds.toFixed(3)}"`;
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="onnxpress gate" ${counts}>`, `  <testsuite name="onnxpress.gate" ${counts}>`];
  lines.push(`    <properties>`);
  lines.push(`      <property name="baseline" value="${xml(baselineLabel(r))}"/>`);
  lines.push(`      <property name="candidate" value="${xml(r.candidate)}"/>`);
  if (r.data) lines.push(`      <property name="data" value="${xml(r.data)}"/>`);
  lines.push(`    </properties>`);
  for (const c of r.checks) {
    const cells = checkCells(c);
    // the test case keeps the check's plain name, so that CI history matches it from run to run
    const open = `    <testcase classname="onnxpress.gate" name="${c.name}" time="${c.seconds.toFixed(3)}"`;
    const text = `${cells[0]}: baseline ${cells[1]}, candidate ${cells[2]}, change ${cells[3]}, budget ${cells[4]}: ${c.summary}`;
    if (c.verdict === 'pass') lines.push(`${open}>`, `      <system-out>${xml(text)}</system-out>`, '    </testcase>');
    else if (c.verdict === 'fail') lines.push(`${open}>`, `      <failure type="budget" message="${xml(c.summary)}">${xml(text)}</failure>`, '    </testcase>');
    else lines.push(`${open}>`, `      <skipped message="${xml(`inconclusive: ${c.summary}`)}"/>`, '    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

/** Parses a budget given as a percentage: "5%", "5" or "0.5%" (→ 0.05, 0.05, 0.005). */
export function parsePercent(value: string, what: string): number {
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*%?\s*$/.exec(value);
  const n = m ? Number(m[1]) / 100 : NaN;
  if (!Number.isFinite(n) || n <= -1) throw new OptionsError(expected('a percentage such as "5%" or "5" (above -100%)', what, value));
  return n;
}
