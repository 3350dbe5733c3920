/**
 * `optimize quantize <model> -o <out>`: builds `quantize()` options from the flags, runs it, writes the model
 * atomically (a failed run leaves no output file) and prints a summary: nodes quantized per op type, size before
 * and after, nodes left in float and why.
 *
 * Exit codes: 0 done (also when the float model is returned because int8 was not faster: the summary says so);
 * 1 the accuracy goal (--max-accuracy-drop) could not be met (the best model found is still written);
 * 2 bad usage or input (missing calibration data, unknown node in --exclude, unreadable model).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { loadModel, saveModel } from '../../onnx/io.js';
import { formatBytes } from '../../onnx/inspect.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { formatQuantizeReport, quantize, type QuantizeOptions, type QuantizeStage } from '../../quantize/quantize.js';
import { fileSize, positiveInteger, printJson, printText, progress, type Progress } from '../output.js';

export interface QuantizeCommandOptions {
  output: string;
  mode: 'static' | 'dynamic' | 'weight-only';
  calibration?: string;
  samples?: number;
  method?: 'minmax' | 'percentile' | 'entropy' | 'mse';
  percentile?: number;
  movingAverage?: boolean;
  perChannel?: boolean;
  activationType?: 'uint8' | 'int8';
  reduceRange?: boolean;
  format?: 'qdq' | 'qoperator';
  exclude?: string[];
  override?: Record<string, { min?: number; max?: number; type?: 'uint8' | 'int8' }>;
  opTypes?: string[];
  maxAccuracyDrop?: number;
  data?: string;
  evalSamples?: number;
  bits?: '8' | '4';
  latency?: 'auto' | 'off';
  latencyClock?: 'wall' | 'cpu';
  ep: ExecutionProvider;
  threads?: number;
  batch?: number[];
  maxTrials?: number;
  timeBudget?: number;
  seed?: number;
  json?: boolean;
}

/**
 * Thrown after the result was written and printed, when the accuracy goal was not met: main.ts turns it into
 * exit code 1 without printing anything more.
 */
export class GoalNotMet extends Error {
  readonly exitCode = 1;
}

/** Parses a non-negative number (`--max-accuracy-drop 0.3`). */
function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('Expected a non-negative number.');
  return n;
}

/** Parses a comma-separated list of positive integers (`--batch 1,32`). */
function positiveList(value: string): number[] {
  return value.split(',').map((v) => positiveInteger(v.trim()));
}

/** Collects comma-separated, repeatable list flags (`--exclude a,b --exclude c`). */
function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/**
 * Collects `--override <tensor>=<min>:<max>[:<type>]` (or `<tensor>=<type>`), repeatable, into `overrides`. The
 * tensor name is what comes before the last `=` (names may hold `/`, `.` or `:`); either bound may be left empty
 * (`relu1=:6`).
 */
export function overrideFlag(value: string, previous: QuantizeCommandOptions['override'] = {}): NonNullable<QuantizeCommandOptions['override']> {
  const at = value.lastIndexOf('=');
  const name = value.slice(0, at), spec = value.slice(at + 1);
  const bad = (why: string) => new InvalidArgumentError(`${why} in "${value}": expected <tensor>=<min>:<max>[:uint8|int8] or <tensor>=uint8|int8`);
  if (at <= 0 || spec === '') throw bad('no tensor name or no range');
  const parts = spec.split(':');
  const entry: { min?: number; max?: number; type?: 'uint8' | 'int8' } = {};
  const last = parts[parts.length - 1]!;
  if (last === 'uint8' || last === 'int8') {
    entry.type = last;
    parts.pop();
  }
  if (parts.length === 2) {
    const num = (t: string, which: string) => {
      if (t.trim() === '') return undefined;
      const n = Number(t);
      if (!Number.isFinite(n)) throw bad(`${which} "${t}" is not a number`);
      return n;
    };
    const min = num(parts[0]!, 'min'), max = num(parts[1]!, 'max');
    if (min !== undefined) entry.min = min;
    if (max !== undefined) entry.max = max;
    if (min !== undefined && max !== undefined && min > max) throw bad(`min ${min} is above max ${max}`);
  } else if (parts.length !== 0) {
    throw bad('a range needs both ends separated by ":"');
  }
  if (!Object.keys(entry).length) throw bad('nothing to override');
  return { ...previous, [name]: entry };
}

/** The `quantize()` options a command line asks for; nothing given is left to the library's defaults. */
export function toQuantizeOptions(o: QuantizeCommandOptions): QuantizeOptions {
  const out: Record<string, unknown> = { mode: o.mode, ep: o.ep };
  const set = (k: string, v: unknown) => {
    if (v !== undefined) out[k] = v;
  };
  set('calibration', o.calibration);
  set('samples', o.samples);
  set('method', o.method);
  set('percentile', o.percentile);
  set('movingAverage', o.movingAverage);
  set('perChannel', o.perChannel);
  set('activationType', o.activationType);
  set('reduceRange', o.reduceRange);
  set('format', o.format);
  set('exclude', o.exclude);
  set('overrides', o.override);
  set('opTypes', o.opTypes);
  set('maxAccuracyDrop', o.maxAccuracyDrop);
  set('evalData', o.data);
  set('evalSamples', o.evalSamples);
  set('bits', o.bits === undefined ? undefined : Number(o.bits));
  set('latency', o.latency);
  set('latencyClock', o.latencyClock);
  set('threads', o.threads);
  set('batch', o.batch === undefined ? undefined : o.batch.length === 1 ? o.batch[0] : o.batch);
  set('maxTrials', o.maxTrials);
  set('timeBudgetSeconds', o.timeBudget);
  set('seed', o.seed);
  return out as QuantizeOptions;
}

const STAGE_LABEL: Record<QuantizeStage, string> = { calibrate: 'calibrating', evaluate: 'evaluating', sqnr: 'measuring SQNR', latency: 'timing placements' };

/** Runs `quantize`. */
export async function quantizeCommand(modelPath: string, o: QuantizeCommandOptions): Promise<void> {
  if (o.data !== undefined && o.maxAccuracyDrop === undefined) {
    throw new OptionsError('--data is the evaluation set of --max-accuracy-drop: give both, or neither');
  }
  if (o.bits !== undefined && o.mode !== 'weight-only') throw new OptionsError(`--bits applies to --mode weight-only, not ${o.mode}`);
  const options = toQuantizeOptions(o);
  const model = await loadModel(modelPath);
  const before = await fileSize(modelPath);
  let bar: Progress | undefined;
  let stage: QuantizeStage | undefined;
  const onProgress = (s: QuantizeStage, done: number, total: number) => {
    if (s !== stage) {
      bar?.stop();
      stage = s;
      bar = progress(STAGE_LABEL[s], o);
    }
    bar!.update(done, total);
  };
  let result;
  try {
    result = await quantize(model, options, { onProgress });
  } finally {
    bar?.stop();
  }
  const { model: out, report } = result;
  const saved = await saveModel(out, o.output);
  const after = saved.bytes + (saved.externalBytes ?? 0);
  if (o.json) {
    printJson({ model: modelPath, output: o.output, bytes: { before: before ?? null, after, ratio: before ? after / before : null }, report });
  } else {
    const size = before ? `${formatBytes(before)} → ${formatBytes(after)} (${(after / before).toFixed(2)}×)` : formatBytes(after);
    const lines = [`Model  ${modelPath}`, `Output ${o.output}`, `Size   ${size}`, `Time   ${report.seconds.total.toFixed(1)} s`, '', formatQuantizeReport(report)];
    if (!report.goalMet) lines.push('', `Accuracy goal not met: wrote the best model found to ${o.output}.`);
    printText(lines.join('\n'));
  }
  if (!report.goalMet) throw new GoalNotMet('accuracy goal not met');
}

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('quantize a model to int8 (static or dynamic) or int8/4-bit weights; falls back to float where int8 costs accuracy or speed')
    .argument('<model>', 'ONNX model file')
    .requiredOption('-o, --output <file>', 'where to write the quantized model')
    .addOption(new Option('--mode <mode>', 'static (calibrated), dynamic or weight-only').choices(['static', 'dynamic', 'weight-only']).default('static'))
    .option('--calibration <descriptor.json>', 'calibration dataset descriptor (static mode)')
    .option('--samples <n>', 'calibration samples (default 512)', positiveInteger)
    .addOption(new Option('--method <method>', 'activation range method (default minmax)').choices(['minmax', 'percentile', 'entropy', 'mse']))
    .option('--percentile <p>', 'percentile for --method percentile (default 99.999)', nonNegative)
    .option('--moving-average', 'minmax: moving-average min/max of the batches instead of the extremes over all')
    .option('--per-channel', 'one weight scale per output channel (default)')
    .option('--no-per-channel', 'one weight scale per tensor')
    .addOption(new Option('--activation-type <type>', 'activation type (default: decided from the CPU and EP)').choices(['uint8', 'int8']))
    .option('--reduce-range', '7-bit weights (default: decided from the CPU)')
    .option('--no-reduce-range', 'full 8-bit weights')
    .addOption(new Option('--format <format>', 'QDQ pairs or QLinear ops (default qdq)').choices(['qdq', 'qoperator']))
    .option('--exclude <names>', 'node names, op types or patterns to keep in float (comma-separated, repeatable)', list)
    .option('--override <tensor=range>', 'a tensor\'s range and/or type instead of the calibrated one: name=min:max[:uint8|int8] or name=int8 (repeatable)', overrideFlag)
    .option('--op-types <types>', 'only quantize these op types (comma-separated)', list)
    .option('--max-accuracy-drop <pp>', 'largest accepted top-1 drop in percentage points (needs --data)', nonNegative)
    .option('--data <descriptor.json>', 'evaluation dataset for --max-accuracy-drop (labels: top-1; none: agreement with float)')
    .option('--eval-samples <n>', 'evaluate on the first n samples of --data', positiveInteger)
    .addOption(new Option('--bits <bits>', 'weight-only: 8 or 4 bits').choices(['8', '4']))
    .addOption(new Option('--latency <mode>', 'auto: time placements, never return a model slower than float').choices(['auto', 'off']))
    .addOption(new Option('--latency-clock <clock>', 'wall time, or process CPU time (steadier on a busy machine; use with --threads 1)').choices(['wall', 'cpu']))
    .addOption(new Option('--ep <provider>', 'execution provider').choices(EXECUTION_PROVIDERS).default('cpu'))
    .option('--threads <n>', 'intra-op threads (default: one per physical core)', positiveInteger)
    .option('--batch <n,…>', 'batch size(s) latency is measured at; with several, int8 must win at each (default 32)', positiveList)
    .option('--max-trials <n>', 'accuracy trials / greedy latency steps, each at most (default 16)', positiveInteger)
    .option('--time-budget <seconds>', 'time budget of the searches (default 600)', positiveInteger)
    .option('--seed <n>', 'seed for synthesized timing inputs', (v) => (v === '0' ? 0 : positiveInteger(v)))
    .option('--json', 'print one JSON document instead of text')
    .addHelpText('after', `
Examples:
  $ optimize quantize model.onnx -o model.int8.onnx --calibration calib.json
  $ optimize quantize model.onnx -o m.int8.onnx --calibration calib.json --max-accuracy-drop 0.5 --data val.json
  $ optimize quantize model.onnx -o m.int8.onnx --calibration calib.json --override relu6_out=0:6 --override logits=int8
  $ optimize quantize bert.onnx -o bert.int8.onnx --mode dynamic
  $ optimize quantize llm.onnx -o llm.q4.onnx --mode weight-only --bits 4
  $ optimize quantize model.onnx -o m.int8.onnx --calibration calib.json --method minmax --latency off --json
`)
    .action(quantizeCommand);
}
