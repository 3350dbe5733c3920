/**
 * `optimize convert <in> --to tfjs|onnx|fp16 -o <out>`: format conversions.
 *
 * - `--to tfjs`: an ONNX model → a TensorFlow.js graph model folder (`model.json` + 4 MB weight shards);
 * - `--to onnx`: a TensorFlow.js model (its folder or its `model.json`; graph or layers model) → an ONNX file;
 * - `--to fp16`: an ONNX model → the same model with float16 weights and compute (`--keep-io-types` keeps the
 *   graph inputs and outputs float32).
 *
 * Outputs are written atomically: a failed conversion leaves nothing behind. Exit codes: 0 done; 2 bad usage or
 * input (unreadable model, unsupported ops — the message names every one of them and their nodes).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { OptionsError } from '../../errors.js';
import { toFloat16 } from '../../convert/fp16.js';
import { loadTfjs, saveTfjs } from '../../convert/tfjs/index.js';
import { formatBytes } from '../../onnx/inspect.js';
import { loadModel, saveModel } from '../../onnx/io.js';
import { positiveInteger, printJson, printText } from '../output.js';

export const CONVERT_TARGETS = ['tfjs', 'onnx', 'fp16'] as const;
export type ConvertTarget = (typeof CONVERT_TARGETS)[number];

export interface ConvertCommandOptions {
  to: ConvertTarget;
  output: string;
  keepIoTypes?: boolean;
  blockOps?: string[];
  shardMb?: number;
  json?: boolean;
}

/** What a conversion reports, in `--json` and in the text summary. */
export interface ConvertSummary {
  input: string;
  output: string;
  to: ConvertTarget;
  bytes: { before: number | null; after: number; ratio: number | null };
  files: string[];
  notes: string[];
  clamped?: { name: string; count: number; maxAbs: number }[];
}

function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/** Bytes of a file, or of the files directly inside a folder. */
async function pathBytes(path: string): Promise<number | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of await readdir(path, { withFileTypes: true })) if (e.isFile()) n += (await stat(join(path, e.name))).size;
  return n;
}

/**
 * Runs a conversion and returns its summary (the CLI prints it; tests call this directly).
 *
 * @example
 * ```ts
 * await convert('fixtures/fmnist-cnn.onnx', { to: 'tfjs', output: 'web/cnn' });
 * ```
 */
export async function convert(input: string, o: ConvertCommandOptions): Promise<ConvertSummary> {
  if (!CONVERT_TARGETS.includes(o.to)) throw new OptionsError(`--to must be one of ${CONVERT_TARGETS.join(', ')}, not "${String(o.to)}"`);
  if (o.to !== 'fp16' && (o.keepIoTypes || o.blockOps?.length)) throw new OptionsError(`--keep-io-types and --block-ops apply to --to fp16, not --to ${o.to}`);
  if (o.to !== 'tfjs' && o.shardMb !== undefined) throw new OptionsError(`--shard-mb applies to --to tfjs, not --to ${o.to}`);
  const before = (await pathBytes(input)) ?? null;
  const outStat = await stat(o.output).catch(() => undefined);
  const notes: string[] = [];
  let after: number;
  let files: string[];
  let clamped: ConvertSummary['clamped'];
  if (o.to === 'tfjs') {
    if (outStat && !outStat.isDirectory()) throw new OptionsError(`--to tfjs writes a folder, but ${o.output} is a file`);
    const model = await loadModel(input);
    const saved = await saveTfjs(model, o.output, o.shardMb ? { shardBytes: o.shardMb * 1024 * 1024 } : {});
    after = saved.bytes;
    files = saved.files.map((f) => join(o.output, f.path));
    notes.push(...saved.notes);
  } else {
    if (outStat?.isDirectory()) throw new OptionsError(`--to ${o.to} writes an ONNX file, but ${o.output} is a folder`);
    let model;
    if (o.to === 'onnx') {
      model = await loadTfjs(input);
    } else {
      const r = toFloat16(await loadModel(input), { keepIoTypes: o.keepIoTypes ?? false, blockOps: o.blockOps ?? [] });
      model = r.model;
      notes.push(...r.notes);
      clamped = r.clamped;
    }
    const saved = await saveModel(model, o.output);
    after = saved.bytes + (saved.externalBytes ?? 0);
    files = [saved.path, ...(saved.externalDataFile ? [saved.externalDataFile] : [])];
  }
  const summary: ConvertSummary = { input, output: o.output, to: o.to, bytes: { before, after, ratio: before ? after / before : null }, files, notes };
  if (clamped) summary.clamped = clamped;
  return summary;
}

/** The text summary. */
export function formatConvertSummary(s: ConvertSummary): string {
  const size = s.bytes.before ? `${formatBytes(s.bytes.before)} → ${formatBytes(s.bytes.after)} (${(s.bytes.after / s.bytes.before).toFixed(2)}×)` : formatBytes(s.bytes.after);
  const lines = [`Input   ${s.input}`, `Output  ${s.output} (${s.to === 'tfjs' ? 'TensorFlow.js graph model' : s.to === 'onnx' ? 'ONNX' : 'ONNX float16'})`, `Size    ${size}`, `Files   ${s.files.length}`];
  for (const n of s.notes) lines.push(`Note    ${n}`);
  for (const c of s.clamped ?? []) lines.push(`Clamped ${c.name}: ${c.count} values beyond ±65504 (max |x| ${c.maxAbs.toExponential(3)})`);
  if (s.to === 'tfjs') lines.push('', `Load it with: await tf.loadGraphModel('${s.output.replace(/\\/g, '/')}/model.json')`);
  return lines.join('\n');
}

/** The action: converts, then prints the summary (text or JSON). */
export async function convertCommand(input: string, o: ConvertCommandOptions): Promise<void> {
  const s = await convert(input, o);
  if (o.json) printJson(s);
  else printText(formatConvertSummary(s));
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert between ONNX and TensorFlow.js, or an ONNX model to float16')
    .argument('<in>', 'ONNX model file (--to tfjs, fp16) or TensorFlow.js model folder / model.json (--to onnx)')
    .addOption(new Option('--to <format>', 'target format').choices(CONVERT_TARGETS).makeOptionMandatory())
    .requiredOption('-o, --output <path>', 'output: a folder for tfjs, an .onnx file otherwise')
    .option('--keep-io-types', 'fp16: keep graph inputs and outputs float32 (Cast nodes at the borders)')
    .option('--block-ops <types>', 'fp16: op types to keep in float32 (comma-separated, repeatable)', list)
    .option('--shard-mb <n>', 'tfjs: largest weight shard in MiB (default 4)', positiveInteger)
    .option('--json', 'print one JSON document instead of text')
    .addHelpText(
      'after',
      `
Examples:
  $ optimize convert model.onnx --to tfjs -o web/model       # web/model/model.json + group1-shard*.bin
  $ optimize convert web/model --to onnx -o model.onnx        # graph or layers model back to ONNX
  $ optimize convert model.onnx --to fp16 --keep-io-types -o model.fp16.onnx`,
    )
    .action(convertCommand);
}
