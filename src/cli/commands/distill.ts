/**
 * `optimize distill --teacher <t.onnx> (--student <s.onnx> | --student-width <f>) --data <descriptor> -o <out.onnx>`:
 * builds `distill()` options from the flags, trains with a progress bar (loss and samples/s, on a terminal), writes
 * the student atomically (a failed run leaves no output file), optionally writes a checkpoint after every epoch
 * (atomically) and resumes from one, and prints the per-epoch history.
 *
 * Exit codes: 0 done; 1 the student's validation top-1 is below --min-top1 (the student is still written);
 * 2 bad usage or input (unreadable model or data, a teacher outside the built-in family without --student, a
 * checkpoint from another run).
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { distill, type DistillFunctionOptions, type DistillReport, type HintSpec } from '../../distill/index.js';
import { LoadError, OptionsError } from '../../errors.js';
import { loadDataset } from '../../eval/datasets.js';
import { formatCount, formatPercent, formatTable } from '../../onnx/inspect.js';
import { loadModel, saveModel } from '../../onnx/io.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { decodeCheckpoint, encodeCheckpoint } from '../../train/checkpoint.js';
import type { TrainProgress, TrainState } from '../../train/loop.js';
import { OPTIMIZERS, SCHEDULES } from '../../train/optim.js';
import { positiveInteger, printJson, printText } from '../output.js';
import { GoalNotMet } from './quantize.js';

export interface DistillCommandOptions {
  teacher: string;
  student?: string;
  studentWidth?: number;
  studentDepth?: number;
  data: string;
  val?: string;
  output: string;
  epochs?: number;
  batch?: number;
  temperature?: number;
  alpha?: number;
  lr?: number;
  optimizer?: (typeof OPTIMIZERS)[number];
  weightDecay?: number;
  schedule?: (typeof SCHEDULES)[number];
  warmup?: number;
  cropPadding?: number;
  flip?: boolean;
  patience?: number;
  seed?: number;
  ep: ExecutionProvider;
  threads?: number;
  checkpoint?: string;
  resume?: string;
  minTop1?: number;
  hint?: HintSpec[];
  json?: boolean;
}

/**
 * Parses `--hint teacherTensor=studentTensor[:weight]` and adds it to the list (the flag repeats). A suffix after
 * the last `:` that reads as a number is the weight; a tensor whose own name ends in `:<digits>` (TensorFlow style)
 * therefore needs an explicit weight: `t=conv:0:1`.
 */
export function parseHint(value: string, previous: HintSpec[] = []): HintSpec[] {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1) throw new InvalidArgumentError(`Expected teacherTensor=studentTensor[:weight] but received "${value}".`);
  const teacher = value.slice(0, eq);
  let student = value.slice(eq + 1);
  let weight: number | undefined;
  const colon = student.lastIndexOf(':');
  if (colon >= 0) {
    const w = student.slice(colon + 1);
    if (w.trim() !== '' && Number.isFinite(Number(w))) {
      weight = Number(w);
      student = student.slice(0, colon);
      if (!(weight > 0)) throw new InvalidArgumentError(`Expected a positive hint weight but received ${w} in "${value}".`);
      if (!student) throw new InvalidArgumentError(`Expected teacherTensor=studentTensor[:weight] but received "${value}".`);
    }
  }
  return [...previous, { teacher, student, ...(weight !== undefined ? { weight } : {}) }];
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('Expected a positive number.');
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('Expected a number from 0 to 1.');
  return n;
}

function nonNegativeInteger(value: string): number {
  return value === '0' ? 0 : positiveInteger(value);
}

/** Writes bytes to a temporary file beside `path` and renames it into place, so a checkpoint is never half-written. */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new LoadError(`Cannot write checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function readCheckpoint(path: string): Promise<TrainState> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LoadError(code === 'ENOENT' ? `Checkpoint not found: ${path}` : `Cannot read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  return decodeCheckpoint<TrainState>(bytes, path);
}

/** A progress bar with loss and samples/s on stderr, only on a terminal and without --json. */
function trainingBar(json: boolean | undefined): { update: (p: TrainProgress) => void; stop: () => void } {
  if (json || !process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  let shownEpoch = 0;
  return {
    update(p) {
      const payload = { epoch: `${p.epoch}/${p.epochs}`, loss: p.loss.toFixed(4), rate: Math.round(p.samplesPerSec) };
      if (!bar || shownEpoch !== p.epoch) {
        bar?.stop();
        shownEpoch = p.epoch;
        bar = new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'epoch {epoch} [{bar}] {value}/{total} | loss {loss} | {rate} samples/s | {eta_formatted} left',
            clearOnComplete: true,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.stepsPerEpoch, p.step, payload);
      } else bar.update(p.step, payload);
    },
    stop() {
      bar?.stop();
    },
  };
}

/** The text summary: sizes, loss, and the per-epoch table. */
export function formatDistillReport(r: DistillReport): string {
  const lines = [
    `Teacher ${formatCount(r.teacher.parameters)} parameters${r.teacher.valTop1 !== undefined ? `, val top-1 ${formatPercent(r.teacher.valTop1)}` : ''}`,
    `Student ${formatCount(r.student.parameters)} parameters (${(r.parameterRatio * 100).toFixed(1)}% of the teacher, ${r.student.source})${r.student.valTop1 !== undefined ? `, val top-1 ${formatPercent(r.student.valTop1)}` : ''}`,
    `Loss    ${r.loss.useTeacher ? `KD at T=${r.loss.temperature}` : ''}${r.loss.useTeacher && r.loss.useLabels ? ` + CE (alpha ${r.loss.alpha})` : r.loss.useLabels ? 'CE on labels' : ' (no labels)'}${(r.loss.hints ?? []).map((h) => ` + ${h.weight}·hint ${h.teacher}→${h.student}`).join('')}`,
    `Trained ${r.epochs} epoch(s), ${r.steps} steps, ${r.seconds.toFixed(1)} s; kept epoch ${r.epoch}${r.stoppedEarly ? ' (stopped early)' : ''}`,
    '',
  ];
  const rows: string[][] = [['epoch', 'loss', 'val', 'samples/s', 'seconds']];
  for (const h of r.history) {
    rows.push([String(h.epoch), h.loss.toFixed(4), h.val === undefined ? '-' : `${formatPercent(h.val)}${h.valMetric === 'teacherAgreement' ? ' agr' : ''}`, String(Math.round(h.samplesPerSec)), h.seconds.toFixed(1)]);
  }
  lines.push(formatTable(rows, { right: [0, 1, 2, 3, 4] }));
  return lines.join('\n');
}

/** Runs `distill`. */
export async function distillCommand(o: DistillCommandOptions): Promise<void> {
  if (o.student !== undefined && (o.studentWidth !== undefined || o.studentDepth !== undefined)) {
    throw new OptionsError('Give either --student or --student-width/--student-depth, not both');
  }
  if (o.student === undefined && o.studentWidth === undefined) throw new OptionsError('Give --student <model.onnx> or --student-width <factor> (e.g. 0.25)');
  if (o.minTop1 !== undefined && o.val === undefined) throw new OptionsError('--min-top1 checks the validation top-1: give --val too');
  const teacher = await loadModel(o.teacher);
  const student = o.student === undefined ? undefined : await loadModel(o.student);
  const inputNames = teacher.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
  const data = await loadDataset(o.data, { inputNames });
  const val = o.val === undefined ? undefined : await loadDataset(o.val, { inputNames });
  const resumeFrom = o.resume === undefined ? undefined : await readCheckpoint(o.resume);

  const optimizer: Record<string, unknown> = { kind: o.optimizer ?? 'adam' };
  if (o.lr !== undefined) optimizer.lr = o.lr;
  if (o.weightDecay !== undefined) optimizer.weightDecay = o.weightDecay;
  if (o.schedule !== undefined || o.warmup !== undefined) optimizer.schedule = { kind: o.schedule ?? 'constant', warmupSteps: o.warmup ?? 0 };
  const options: Record<string, unknown> = { data, ep: o.ep, optimizer };
  const set = (k: string, v: unknown) => {
    if (v !== undefined) options[k] = v;
  };
  set('val', val);
  set('student', student);
  set('studentWidth', o.studentWidth);
  set('studentDepth', o.studentDepth);
  set('epochs', o.epochs);
  set('batchSize', o.batch);
  set('temperature', o.temperature);
  set('alpha', o.alpha);
  set('seed', o.seed);
  set('threads', o.threads);
  set('patience', o.patience);
  set('hints', o.hint);
  if (o.cropPadding !== undefined || o.flip) options.augment = { cropPadding: o.cropPadding ?? 0, flip: !!o.flip };

  const bar = trainingBar(o.json);
  let result;
  try {
    result = await distill(teacher, {
      ...(options as DistillFunctionOptions),
      onProgress: bar.update,
      ...(o.checkpoint ? { onCheckpoint: (state: TrainState) => writeAtomic(o.checkpoint!, encodeCheckpoint(state)) } : {}),
      ...(resumeFrom ? { resumeFrom } : {}),
    });
  } finally {
    bar.stop();
  }
  await saveModel(result.model, o.output);
  const gateFailed = o.minTop1 !== undefined && (result.report.student.valTop1 ?? 0) < o.minTop1;
  if (o.json) printJson({ teacher: o.teacher, output: o.output, report: result.report, notes: result.notes, ...(o.minTop1 !== undefined ? { goalMet: !gateFailed } : {}) });
  else {
    const lines = [`Teacher ${o.teacher}`, `Output  ${o.output}`, '', formatDistillReport(result.report)];
    for (const n of result.notes) lines.push(`note: ${n}`);
    if (gateFailed) lines.push('', `Validation top-1 ${formatPercent(result.report.student.valTop1 ?? 0)} is below --min-top1 ${formatPercent(o.minTop1!)}: wrote the student anyway.`);
    printText(lines.join('\n'));
  }
  if (gateFailed) throw new GoalNotMet('validation top-1 below --min-top1');
}

export function registerDistill(program: Command): void {
  program
    .command('distill')
    .description("train a smaller student on a teacher's soft targets (Hinton KD, optionally mixed with hard labels)")
    .requiredOption('--teacher <model.onnx>', 'the teacher model')
    .option('--student <model.onnx>', 'the student to train (any model with gradient rules for its ops)')
    .option('--student-width <factor>', 'built-in student: teacher channels and hidden widths × factor', positiveNumber)
    .option('--student-depth <factor>', 'built-in student: teacher conv blocks / hidden layers × factor (default 1)', positiveNumber)
    .requiredOption('--data <descriptor.json>', 'training data descriptor (labels optional: pure distillation without)')
    .option('--val <descriptor.json>', 'validation data descriptor, measured every epoch')
    .requiredOption('-o, --output <file>', 'where to write the student')
    .option('--epochs <n>', 'passes over the training data (default 10)', positiveInteger)
    .option('--batch <n>', 'samples per step (default 64)', positiveInteger)
    .option('--temperature <T>', 'distillation temperature (default 2)', positiveNumber)
    .option('--alpha <a>', 'weight of the hard-label loss, 0..1 (default 0.5)', fraction)
    .option('--lr <x>', 'learning rate (default 1e-3)', positiveNumber)
    .addOption(new Option('--optimizer <kind>', 'optimizer (default adam)').choices(OPTIMIZERS))
    .option('--weight-decay <x>', 'weight decay (default 0)', (v) => (v === '0' ? 0 : positiveNumber(v)))
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule (default constant)').choices(SCHEDULES))
    .option('--warmup <steps>', 'linear learning-rate warm-up steps', nonNegativeInteger)
    .option('--crop-padding <px>', 'augmentation: random crop with this padding', nonNegativeInteger)
    .option('--flip', 'augmentation: random horizontal flip')
    .option('--patience <n>', 'stop after n epochs without validation gain (needs --val)', positiveInteger)
    .option('--hint <teacher=student[:weight]>', 'hint loss (FitNets): MSE between a teacher tensor and a student tensor through a learned 1×1 adapter (repeatable; weight default 1)', parseHint)
    .option('--seed <n>', 'seed of initialization, shuffling and augmentation (default 0)', nonNegativeInteger)
    .addOption(new Option('--ep <provider>', 'execution provider').choices(EXECUTION_PROVIDERS).default('cpu'))
    .option('--threads <n>', 'intra-op threads (1 makes runs reproducible)', positiveInteger)
    .option('--checkpoint <file>', 'write a resumable checkpoint here after every epoch')
    .option('--resume <file>', 'resume from a checkpoint written by the same command')
    .option('--min-top1 <fraction>', 'exit 1 when the validation top-1 of the student is below this', fraction)
    .option('--json', 'print one JSON document instead of text')
    .addHelpText('after', `
Examples:
  $ optimize distill --teacher big.onnx --student-width 0.25 --data train.json --val val.json --epochs 5 -o small.onnx
  $ optimize distill --teacher big.onnx --student mine.onnx --data unlabelled.json --alpha 0 -o mine.kd.onnx   # soft targets only
  $ optimize distill --teacher big.onnx --student-width 0.5 --data train.json --hint relu2_out=relu2_out:1 -o s.onnx
  $ optimize distill --teacher big.onnx --student-width 0.25 --data train.json --checkpoint run.ckpt -o s.onnx   # resumable
`)
    .action(distillCommand);
}
