/**
 * `optimize prune <model> -o <out>`: builds `prune()` options from the flags, runs it, writes the model atomically
 * (a failed run leaves no output file) and prints the per-layer table and totals.
 *
 * `--finetune <train.json> --epochs N` fine-tunes the pruned model by distillation from the original
 * (`finetunePruned`: magnitude and n:m zeros held at every step, BatchNormalization inserted for training and folded
 * back). `--schedule polynomial --steps N` reaches the sparsity over N prune → fine-tune steps.
 *
 * Exit codes: 0 done; 1 the goal could not be met (nothing prunable, no channel group could shrink, or the n:m
 * pattern does not hold everywhere it can) — the model is still written; 2 bad usage or input.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { formatBytes } from '../../onnx/inspect.js';
import { loadModel, saveModel } from '../../onnx/io.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { PRUNE_METHODS, PRUNE_SCHEDULES, checkNM, formatPruneReport, parsePattern, prune, type PruneMethod, type PruneOptions } from '../../prune/index.js';
import { fileSize, positiveInteger, printJson, printText, progress } from '../output.js';
import { GoalNotMet } from './quantize.js';

export interface PruneCommandOptions {
  output: string;
  sparsity?: number;
  method: PruneMethod;
  pattern?: string;
  scope?: 'global' | 'layer';
  exclude?: string[];
  excludeFirstLast?: boolean;
  criterion?: 'l1' | 'l2' | 'activation';
  channelMultiple?: number;
  calibration?: string;
  finetune?: string;
  epochs?: number;
  lr?: number;
  plan: 'uniform' | 'sensitivity';
  schedule: 'oneshot' | 'polynomial';
  steps?: number;
  data?: string;
  samples?: number;
  sparseStorage?: 'auto' | 'on' | 'off';
  sparseIndices?: 'auto' | 'int64' | 'bitmask' | 'compact';
  ep: ExecutionProvider;
  threads?: number;
  json?: boolean;
}

/** Parses a number in [0, 1] (`--sparsity 0.5`). */
function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('Expected a number from 0 to 1.');
  return n;
}

/** Parses a positive number (`--lr 0.003`). */
function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('Expected a positive number.');
  return n;
}

/** Collects comma-separated, repeatable list flags (`--exclude a,b --exclude c`). */
function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** The `prune()` options a command line asks for; what is not given is left to the library's defaults. */
export function toPruneOptions(o: PruneCommandOptions): PruneOptions {
  const out: Record<string, unknown> = { method: o.method, plan: o.plan };
  const set = (k: string, v: unknown) => {
    if (v !== undefined) out[k] = v;
  };
  set('sparsity', o.sparsity);
  set('pattern', o.pattern);
  set('scope', o.scope);
  set('exclude', o.exclude);
  set('excludeFirstLast', o.excludeFirstLast);
  set('criterion', o.criterion);
  set('channelMultiple', o.channelMultiple);
  set('calibration', o.calibration);
  // magnitude uses calibration data only to score by activation
  if (o.method === 'magnitude' && o.calibration !== undefined) set('score', 'activation');
  set('data', o.data);
  if (o.schedule !== 'oneshot') set('schedule', o.schedule);
  set('steps', o.steps);
  set('sensitivitySamples', o.samples);
  // pruned weights go sparse where that is smaller, unless told otherwise; channel pruning leaves no zeros
  set('sparseStorage', o.sparseStorage ?? (o.method === 'channels' ? undefined : 'auto'));
  set('sparseIndices', o.sparseIndices);
  if (o.plan === 'sensitivity' || o.calibration !== undefined) {
    set('ep', o.ep);
    set('threads', o.threads);
  }
  return out as PruneOptions;
}

/** Runs `prune`. */
export async function pruneCommand(modelPath: string, o: PruneCommandOptions): Promise<void> {
  if (o.pattern !== undefined && !parsePattern(o.pattern)) throw new OptionsError(`--pattern: expected N:M such as 2:4 but received "${o.pattern}"`);
  if (o.samples !== undefined && o.plan !== 'sensitivity') throw new OptionsError('--samples applies to --plan sensitivity');
  if (o.epochs !== undefined && o.finetune === undefined) throw new OptionsError('--epochs applies to --finetune <train descriptor>');
  if (o.lr !== undefined && o.finetune === undefined) throw new OptionsError('--lr applies to --finetune <train descriptor>');
  if (o.steps !== undefined && o.schedule !== 'polynomial') throw new OptionsError('--steps applies to --schedule polynomial');
  const options = toPruneOptions(o);
  const model = await loadModel(modelPath);
  if (o.finetune !== undefined) {
    // distillation from the original (the teacher) into the pruned model, structure and zeros kept (finetunePruned)
    options.finetune = { data: o.finetune, ...(o.epochs !== undefined ? { epochs: o.epochs } : {}), ...(o.lr !== undefined ? { lr: o.lr } : {}), ep: o.ep, ...(o.threads ? { threads: o.threads } : {}) };
  }
  const before = await fileSize(modelPath);
  const bar = progress('measuring sensitivity', o);
  let result;
  try {
    result = await prune(model, options, { onProgress: (_s, d, t) => bar.update(d, t) });
  } finally {
    bar.stop();
  }
  const { model: out, report } = result;
  const saved = await saveModel(out, o.output);
  const after = saved.bytes + (saved.externalBytes ?? 0);
  let goalMet = true;
  let why = '';
  if (o.method === 'magnitude' && report.totals.prunableParams === 0) [goalMet, why] = [false, 'the model has no prunable weights'];
  if (o.method === 'n:m') {
    const { n, m } = parsePattern(o.pattern ?? '2:4')!;
    const check = checkNM(out, n, m, { exclude: o.exclude, excludeFirstLast: o.excludeFirstLast });
    if (!check.ok) [goalMet, why] = [false, `the ${n}:${m} pattern does not hold on every layer that can hold it`];
  }
  if (o.method === 'channels' && (o.sparsity ?? 0.5) > 0 && report.totals.channels && report.totals.channels[0] === report.totals.channels[1]) {
    [goalMet, why] = [false, 'no channel group could shrink (see the notes)'];
  }
  if (o.json) {
    printJson({ model: modelPath, output: o.output, bytes: { before: before ?? null, after, ratio: before ? after / before : null }, goalMet, report });
  } else {
    const size = before ? `${formatBytes(before)} → ${formatBytes(after)} (${(after / before).toFixed(2)}×)` : formatBytes(after);
    const lines = [`Model  ${modelPath}`, `Output ${o.output}`, `Method ${o.method}${o.method === 'n:m' ? ` ${o.pattern ?? '2:4'}` : ''}, plan ${o.plan}`, `Size   ${size}`, `Time   ${report.seconds.toFixed(1)} s`, '', formatPruneReport(report)];
    if (!goalMet) lines.push('', `Goal not met: ${why}. Wrote the model to ${o.output}.`);
    printText(lines.join('\n'));
  }
  if (!goalMet) throw new GoalNotMet(why);
}

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description('prune a model: unstructured (magnitude), semi-structured (n:m) or structured (channels, smaller and faster)')
    .argument('<model>', 'ONNX model file')
    .requiredOption('-o, --output <file>', 'where to write the pruned model')
    .option('--sparsity <s>', 'target sparsity from 0 to 1: weights zeroed (magnitude) or channels removed per group (channels); default 0.5', fraction)
    .addOption(new Option('--method <method>', 'magnitude, n:m or channels').choices(PRUNE_METHODS).default('magnitude'))
    .option('--pattern <n:m>', 'n:m pattern (default 2:4)')
    .addOption(new Option('--scope <scope>', 'magnitude: one threshold over all layers, or per layer (default global)').choices(['global', 'layer']))
    .option('--exclude <names>', 'node names, op types or patterns to leave as they are (comma-separated, repeatable)', list)
    .option('--exclude-first-last', 'leave the first and last prunable layers as they are')
    .option('--channel-multiple <n>', "channels: keep a multiple of n channels per group, for onnxruntime's blocked kernels (default 8; 1: no rounding)", positiveInteger)
    .addOption(new Option('--criterion <how>', "channels: how channels are ranked (default: activation with --calibration, else l1)").choices(['l1', 'l2', 'activation']))
    .option('--calibration <descriptor.json>', 'calibration data: channels ranked by activation with bias compensation (channels)')
    .option('--finetune <descriptor.json>', 'fine-tune the pruned model on this training data by distillation from the original')
    .option('--epochs <n>', 'fine-tuning epochs (per step with --schedule polynomial; default 3)', positiveInteger)
    .option('--lr <rate>', 'fine-tuning peak learning rate (Adam, warm-up then cosine; default 3e-3)', positiveNumber)
    .addOption(new Option('--schedule <kind>', 'oneshot, or polynomial: reach the sparsity over --steps prune → fine-tune steps').choices(PRUNE_SCHEDULES).default('oneshot'))
    .option('--steps <n>', 'prune → fine-tune steps of --schedule polynomial (default 4)', positiveInteger)
    .addOption(new Option('--plan <plan>', 'uniform, or per-layer sparsities from measured sensitivity (needs --data)').choices(['uniform', 'sensitivity']).default('uniform'))
    .option('--data <descriptor.json>', 'evaluation data for --plan sensitivity (labels: top-1; none: agreement with the original)')
    .option('--samples <n>', 'samples of --data per sensitivity trial (default 512)', positiveInteger)
    .addOption(new Option('--sparse-storage <mode>', 'magnitude, n:m: store pruned weights as their non-zeros where smaller (default auto)').choices(['auto', 'on', 'off']))
    .addOption(
      new Option('--sparse-indices <form>', "auto (bitmask from opset 11), bitmask (values + 1 bit per element, standard ops), int64 (sparse_initializer) or compact (sparse_initializer with small indices: onnxruntime reads it, onnx's checker does not)").choices([
        'auto',
        'int64',
        'bitmask',
        'compact',
      ]),
    )
    .addOption(new Option('--ep <provider>', 'execution provider for sensitivity runs').choices(EXECUTION_PROVIDERS).default('cpu'))
    .option('--threads <n>', 'intra-op threads for sensitivity runs', positiveInteger)
    .option('--json', 'print one JSON document instead of text')
    .addHelpText('after', `
Examples:
  $ optimize prune model.onnx -o sparse.onnx --sparsity 0.8                       # magnitude, global, stored compactly
  $ optimize prune model.onnx -o s24.onnx --method n:m --pattern 2:4
  $ optimize prune model.onnx -o small.onnx --method channels --sparsity 0.5 --calibration calib.json \\
      --finetune train.json --epochs 3                                             # structured: truly smaller and faster
  $ optimize prune model.onnx -o small.onnx --method channels --sparsity 0.5 --schedule polynomial --steps 3 --finetune train.json
  $ optimize prune model.onnx -o p.onnx --sparsity 0.5 --plan sensitivity --data val.json --json
`)
    .action(pruneCommand);
}
