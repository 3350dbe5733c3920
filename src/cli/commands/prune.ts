/**
 * `optimize prune <model> -o <out>`: builds `prune()` options from the flags, runs it, writes the model atomically
 * (a failed run leaves no output file) and prints the per-layer table and totals.
 *
 * `--finetune <train.json> --epochs N` fine-tunes the pruned model by distillation from the original (`distill()`
 * with the pruned model as the student); magnitude and n:m zeros are applied again afterwards.
 *
 * Exit codes: 0 done; 1 the goal could not be met (nothing prunable, no channel group could shrink, or the n:m
 * pattern does not hold everywhere it can) — the model is still written; 2 bad usage or input.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { formatBytes } from '../../onnx/inspect.js';
import { loadModel, saveModel } from '../../onnx/io.js';
import { distill } from '../../distill/index.js';
import { loadDataset } from '../../eval/datasets.js';
import type { Model } from '../../onnx/ir.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { PRUNE_METHODS, checkNM, formatPruneReport, parsePattern, prune, type PruneMethod, type PruneOptions } from '../../prune/index.js';
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
  calibration?: string;
  finetune?: string;
  epochs?: number;
  plan: 'uniform' | 'sensitivity';
  data?: string;
  samples?: number;
  sparseStorage?: 'auto' | 'on' | 'off';
  sparseIndices?: 'int64' | 'compact';
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
  set('calibration', o.calibration);
  // magnitude uses calibration data only to score by activation
  if (o.method === 'magnitude' && o.calibration !== undefined) set('score', 'activation');
  set('data', o.data);
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
  const options = toPruneOptions(o);
  const model = await loadModel(modelPath);
  if (o.finetune !== undefined) {
    const inputNames = model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
    const data = await loadDataset(o.finetune, { inputNames });
    const epochs = o.epochs ?? 1;
    // the original is the teacher; the pruned model is the student, trained as it is (structure kept)
    options.finetune = async (pruned: Model, original: Model) => (await distill(original, { data, student: pruned, epochs, ep: o.ep, ...(o.threads ? { threads: o.threads } : {}) })).model;
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
    .addOption(new Option('--criterion <how>', "channels: how channels are ranked (default: activation with --calibration, else l1)").choices(['l1', 'l2', 'activation']))
    .option('--calibration <descriptor.json>', 'calibration data: channels ranked by activation with bias compensation (channels)')
    .option('--finetune <descriptor.json>', 'fine-tune the pruned model on this training data by distillation from the original')
    .option('--epochs <n>', 'fine-tuning epochs (default 1)', positiveInteger)
    .addOption(new Option('--plan <plan>', 'uniform, or per-layer sparsities from measured sensitivity (needs --data)').choices(['uniform', 'sensitivity']).default('uniform'))
    .option('--data <descriptor.json>', 'evaluation data for --plan sensitivity (labels: top-1; none: agreement with the original)')
    .option('--samples <n>', 'samples of --data per sensitivity trial (default 512)', positiveInteger)
    .addOption(new Option('--sparse-storage <mode>', 'magnitude, n:m: write pruned weights as sparse_initializer where smaller (default auto)').choices(['auto', 'on', 'off']))
    .addOption(new Option('--sparse-indices <type>', "int64 (standard) or compact (smallest integer type: onnxruntime reads it, onnx's checker does not)").choices(['int64', 'compact']))
    .addOption(new Option('--ep <provider>', 'execution provider for sensitivity runs').choices(EXECUTION_PROVIDERS).default('cpu'))
    .option('--threads <n>', 'intra-op threads for sensitivity runs', positiveInteger)
    .option('--json', 'print one JSON document instead of text')
    .action(pruneCommand);
}
