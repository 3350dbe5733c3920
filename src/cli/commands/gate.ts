/**
 * `optimize gate --baseline <model.onnx | report.json> --candidate <model.onnx>`: the CI regression gate. Checks
 * size, accuracy (with --data) and latency against budgets, prints a table, and optionally writes it as Markdown
 * (for a pull-request comment) and JUnit XML (for the CI's test view), atomically.
 *
 * Exit codes: 0 every check passed; 1 a check failed; 4 latency could not be decided within the time limit and
 * nothing failed; 2 bad usage or input (missing file, bad percentage, a baseline report without its model when
 * latency is asked).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { formatGateResult, gate, gateJunit, gateMarkdown, parsePercent, type GateOptions } from '../../eval/gate.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { writeFilesAtomic } from '../../util/fs.js';
import { EXIT, positiveInteger, printJson, printText, progress, type Progress } from '../output.js';
import { GoalNotMet } from './quantize.js';

export interface GateCommandOptions {
  baseline: string;
  candidate: string;
  data?: string;
  baselineVariant?: string;
  maxSizeIncrease: number;
  maxLatencyIncrease: number;
  maxAccuracyDrop: number;
  latency: boolean;
  ep: ExecutionProvider;
  batch: number;
  threads: number;
  clock: 'auto' | 'wall' | 'cpu';
  timeLimit: number;
  minPairs?: number;
  markdown?: string;
  junit?: string;
  json?: boolean;
  seed: number;
}

/**
 * Thrown after the result was printed and written, when latency could not be decided: the CLI exits with
 * EXIT.inconclusive (4) without printing anything more.
 */
export class GateInconclusive extends Error {
  readonly exitCode = EXIT.inconclusive;
}

/** Commander parser for a percentage budget ("5%" or "5"); returns a fraction. */
function percent(value: string): number {
  try {
    return parsePercent(value, 'the budget');
  } catch {
    throw new InvalidArgumentError('Expected a percentage such as "5%" or "5" (above -100%).');
  }
}

/** Commander parser for percentage points ("0.5" or "0.5pp"). */
function points(value: string): number {
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*(pp)?\s*$/.exec(value);
  if (!m) throw new InvalidArgumentError('Expected percentage points such as "0.5" or "0.5pp".');
  return Number(m[1]);
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, min: 60, h: 3600 };

/** Parses a duration in seconds: "60s", "500ms", "2m", or a plain number of seconds. */
export function parseDuration(value: string): number {
  const m = /^\s*(\d+\.?\d*|\.\d+)\s*(ms|s|m|min|h)?\s*$/.exec(value);
  const seconds = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? 's']! : NaN;
  if (!(seconds > 0) || !Number.isFinite(seconds)) throw new InvalidArgumentError('Expected a duration such as "60s", "500ms" or "2m".');
  return seconds;
}

/** The `gate()` options a command line asks for. */
export function toGateOptions(o: GateCommandOptions): GateOptions {
  const out: GateOptions = {
    baseline: o.baseline,
    candidate: o.candidate,
    maxSizeIncrease: o.maxSizeIncrease,
    maxLatencyIncrease: o.maxLatencyIncrease,
    maxAccuracyDrop: o.maxAccuracyDrop,
    latency: o.latency,
    ep: o.ep,
    batch: o.batch,
    threads: o.threads,
    clock: o.clock,
    timeLimitSeconds: o.timeLimit,
    seed: o.seed,
  };
  if (o.data !== undefined) out.data = o.data;
  if (o.baselineVariant !== undefined) out.baselineVariant = o.baselineVariant;
  if (o.minPairs !== undefined) out.minPairs = o.minPairs;
  return out;
}

/** Runs `gate`: prints the result, writes --markdown/--junit, and ends with the verdict's exit code. */
export async function gateCommand(o: GateCommandOptions): Promise<void> {
  if (o.markdown !== undefined && o.markdown === o.junit) throw new OptionsError(`--markdown and --junit name the same file ${o.markdown}`);
  const bars: Partial<Record<string, Progress>> = {};
  let result;
  try {
    result = await gate({
      ...toGateOptions(o),
      onProgress: (stage, done, total) => {
        for (const [k, b] of Object.entries(bars)) if (k !== stage) b?.stop();
        (bars[stage] ??= progress(stage === 'latency' ? 'timing (seconds of the limit)' : 'evaluating', o)).update(Math.round(done), Math.round(total));
      },
    });
  } finally {
    for (const b of Object.values(bars)) b?.stop();
  }
  // both reports appear, or neither (a CI step that reads gate.md must not find a stale one beside a new gate.xml)
  const files: { path: string; data: string }[] = [];
  if (o.markdown !== undefined) files.push({ path: o.markdown, data: gateMarkdown(result) });
  if (o.junit !== undefined) files.push({ path: o.junit, data: gateJunit(result) });
  if (files.length) await writeFilesAtomic(files);
  if (o.json) printJson(result);
  else printText(formatGateResult(result));
  if (result.verdict === 'fail') throw new GoalNotMet('gate failed');
  if (result.verdict === 'inconclusive') throw new GateInconclusive('gate inconclusive');
}

export function registerGate(program: Command): void {
  program
    .command('gate')
    .description('CI regression gate: fail when a candidate model is bigger, slower or less accurate than a baseline beyond budgets')
    .requiredOption('--baseline <model.onnx|report.json>', 'the baseline: a model, or a committed report.json (its reference variant; the model it names is re-timed)')
    .requiredOption('--candidate <model.onnx>', 'the candidate model')
    .option('--data <descriptor.json>', 'labelled dataset for the accuracy check (no accuracy check without it)')
    .option('--baseline-variant <name>', "variant of a baseline report to compare with (default: the report's reference)")
    .option('--max-size-increase <percent>', 'largest accepted size increase', percent, 0.01)
    .option('--max-latency-increase <percent>', 'largest accepted increase of the median latency', percent, 0.05)
    .option('--max-accuracy-drop <pp>', 'largest accepted top-1 drop, in percentage points', points, 0.5)
    .option('--no-latency', 'skip the latency check')
    .addOption(new Option('--ep <provider>', 'execution provider').choices(EXECUTION_PROVIDERS).default('cpu'))
    .option('--batch <n>', 'batch size latency is measured at', positiveInteger, 1)
    .option('--threads <n>', 'intra-op threads while timing (1 is the steadiest on a shared runner)', positiveInteger, 1)
    .addOption(
      new Option('--clock <clock>', 'time blocks by process CPU time (steady on a busy runner) or wall time; auto: cpu with 1 thread, else wall')
        .choices(['auto', 'wall', 'cpu'])
        .default('auto'),
    )
    .option('--time-limit <duration>', 'time the latency check may take before it is called inconclusive ("60s", "2m")', parseDuration, 60)
    .option('--min-pairs <n>', 'interleaved pairs measured before latency may be decided (default 20)', positiveInteger)
    .option('--markdown <file>', 'write the result as a Markdown table (for a pull-request comment)')
    .option('--junit <file>', 'write the result as JUnit XML (one test case per check)')
    .option('--json', 'print one JSON document instead of text')
    .option('--seed <n>', 'seed of the synthetic timing inputs and of the bootstrap', (v) => (v === '0' ? 0 : positiveInteger(v)), 0)
    .addHelpText(
      'after',
      `
Exit codes: 0 pass, 1 a check failed, 4 latency inconclusive (nothing failed), 2 bad usage or input.

Latency: baseline and candidate run interleaved in this process (A B, B A, …); the gate fails only when the whole
95% bootstrap interval of the median time ratio is above the budget, passes when it is at or below, and measures
more otherwise, up to --time-limit.

Examples:
  $ optimize gate --baseline baseline.onnx --candidate model.onnx
  $ optimize gate --baseline baseline/report.json --candidate model.onnx --data test.json \\
      --max-latency-increase 5% --max-accuracy-drop 0.5 --markdown gate.md --junit gate.xml
  $ optimize gate --baseline baseline/report.json --candidate model.onnx --no-latency --json`,
    )
    .action((o: GateCommandOptions) => gateCommand(o));
}
