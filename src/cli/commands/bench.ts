/**
 * `optimize bench <model...>`: what each model costs — size on disk and gzip, parameters, zero share, multiply-adds
 * — and how fast it runs: p50/p90/p99 latency, throughput and peak memory for every execution provider × batch
 * size × thread count asked for, on a machine described at the top (CPU model and instruction sets, onnxruntime).
 *
 * A provider that is not available here, or a batch size the model cannot take, is a row with the reason, not an
 * error. Exit codes: 0 measured (rows may be unavailable); 2 bad usage or input (missing or malformed model,
 * unknown provider, bad list).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { measureLatency } from '../../eval/latency.js';
import { machineInfo } from '../../eval/machine.js';
import { latencyRowSchema, machineInfoSchema, sizeMetricsSchema, type LatencyRow, type MachineInfo, type SizeMetrics } from '../../eval/schema.js';
import { measureSize } from '../../eval/size.js';
import { loadModel } from '../../onnx/io.js';
import { formatBytes, formatCount, formatPercent, formatTable } from '../../onnx/inspect.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../onnx/runner.js';
import { positiveInteger, printJson, printText, progress } from '../output.js';

/** What `optimize bench --json` prints. */
export const benchResultSchema = z.object({
  machine: machineInfoSchema,
  models: z.array(z.object({ model: z.string(), size: sizeMetricsSchema, latency: z.array(latencyRowSchema) })),
});
export type BenchResult = z.infer<typeof benchResultSchema>;

export interface BenchCommandOptions {
  ep: ExecutionProvider[];
  batch: number[];
  threads: number[];
  time: number;
  dims?: Record<string, number>;
  seed: number;
  json?: boolean;
}

/** `--ep cpu,webgpu`: a comma-separated list of known providers. */
function providerList(value: string): ExecutionProvider[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError(`Expected a comma-separated list of ${EXECUTION_PROVIDERS.join(', ')}.`);
  for (const ep of list) {
    if (!EXECUTION_PROVIDERS.includes(ep as ExecutionProvider)) throw new InvalidArgumentError(`Unknown execution provider "${ep}": expected ${EXECUTION_PROVIDERS.join(', ')}.`);
  }
  return list as ExecutionProvider[];
}

/** `--batch 1,32`: a comma-separated list of positive integers. */
function positiveList(value: string): number[] {
  return value.split(',').map((v) => positiveInteger(v.trim()));
}

/** `--threads 0,1`: a comma-separated list of non-negative integers (0: onnxruntime's choice). */
function threadList(value: string): number[] {
  return value.split(',').map((v) => {
    const s = v.trim();
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new InvalidArgumentError('Expected non-negative integers (0: onnxruntime’s choice), comma-separated.');
    return Number(s);
  });
}

/** `--time 500`: milliseconds, positive. */
function milliseconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('Expected a positive number of milliseconds.');
  return n;
}

/** `--dims sequence=128,heads=8`: sizes of symbolic dimensions. */
function dimList(value: string, previous: Record<string, number> = {}): Record<string, number> {
  const out = { ...previous };
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=]+)=(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1) throw new InvalidArgumentError(`Expected name=size pairs such as "sequence=128", got "${part}".`);
    out[m[1]!.trim()] = Number(m[2]);
  }
  return out;
}

/**
 * The machine as one line.
 *
 * @example
 * ```ts
 * formatMachine(machineInfo()); // "AMD EPYC 7B13, 2 cores, x64 (avx avx2 fma f16c), linux 6.1.0, Node v20.11.0, onnxruntime 1.30.0"
 * ```
 */
export function formatMachine(m: MachineInfo): string {
  const flags = m.flags.length ? ` (${m.flags.join(' ')})` : '';
  return `${m.cpu}, ${m.cores} cores, ${m.arch}${flags}, ${m.os}, Node ${m.node}, onnxruntime ${m.onnxruntime}${m.gpus?.length ? `, GPUs: ${m.gpus.join('; ')}` : ''}`;
}

/** A count in k/M/G steps (MACs). */
function formatScaled(n: number): string {
  if (n < 1e3) return String(n);
  const [div, unit] = n >= 1e9 ? [1e9, 'G'] : n >= 1e6 ? [1e6, 'M'] : [1e3, 'k'];
  return `${(n / div).toFixed(2)} ${unit}`;
}

/**
 * Size as one line.
 *
 * @example
 * ```ts
 * formatSize(await measureSize(model)); // "417.1 KiB, 385.6 KiB gzip · 106,058 parameters, 0.00% zero · 1.12 M MACs per sample"
 * ```
 */
export function formatSize(s: SizeMetrics): string {
  return `${formatBytes(s.bytes)}, ${formatBytes(s.gzipBytes)} gzip · ${formatCount(s.parameters)} parameters, ${formatPercent(s.zeroShare)} zero · ${formatScaled(s.macs)} MACs per sample`;
}

/**
 * Latency rows as a table; unavailable rows give their reason.
 *
 * @example
 * ```ts
 * console.log(formatLatency(await measureLatency(model, { batch: [1, 32] })));
 * ```
 */
export function formatLatency(rows: readonly LatencyRow[]): string {
  const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3));
  const table: string[][] = [['ep', 'batch', 'threads', 'p50 ms', 'p90 ms', 'p99 ms', 'samples/s', 'runs', 'peak RSS']];
  const notes: string[] = [];
  for (const r of rows) {
    const head = [r.ep, String(r.batch), r.threads === 0 ? 'auto' : String(r.threads)];
    if (r.available) {
      table.push([...head, ms(r.p50Ms), ms(r.p90Ms), ms(r.p99Ms), formatCount(Math.round(r.throughput)), String(r.samples), formatBytes(r.peakRssBytes)]);
    } else {
      // rows that fail for the same reason (a missing provider: every batch and thread count) share one note
      if (!notes.includes(r.reason)) notes.push(r.reason);
      table.push([...head, `unavailable [${notes.indexOf(r.reason) + 1}]`, '', '', '', '', '']);
    }
  }
  const text = formatTable(table, { right: [1, 2, 3, 4, 5, 6, 7, 8] });
  return notes.length ? `${text}\n${notes.map((n, i) => `[${i + 1}] ${n}`).join('\n')}` : text;
}

/** Runs `bench`: measures every model and prints the machine, a size line per model and its latency table. */
export async function benchCommand(modelPaths: string[], o: BenchCommandOptions): Promise<void> {
  // every model is read first: a bad path fails before minutes of timing
  const models = [];
  for (const path of modelPaths) models.push({ path, model: await loadModel(path) });
  const machine = machineInfo();
  const result: BenchResult = { machine, models: [] };
  if (!o.json) printText(`Machine  ${formatMachine(machine)}`);
  for (const { path, model } of models) {
    const size = await measureSize(model, { path });
    const bar = progress(`timing ${path}`, o);
    let latency: LatencyRow[];
    try {
      latency = await measureLatency(path, {
        ep: o.ep,
        batch: o.batch,
        threads: o.threads,
        time: o.time,
        dims: o.dims,
        seed: o.seed,
        onProgress: (done, total) => bar.update(done, total),
      });
    } finally {
      bar.stop();
    }
    result.models.push({ model: path, size, latency });
    if (!o.json) printText(`\n${path}\nSize     ${formatSize(size)}\n\n${formatLatency(latency)}`);
  }
  if (o.json) printJson(result);
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('measure models: size, gzip size, parameters, MACs, and p50/p90/p99 latency, throughput and peak memory per provider × batch × threads')
    .argument('<model...>', 'ONNX model files')
    .option('--ep <providers>', `execution providers, comma-separated (${EXECUTION_PROVIDERS.join(', ')})`, providerList, ['cpu'])
    .option('--batch <n,…>', 'batch sizes, comma-separated', positiveList, [1])
    .option('--threads <n,…>', 'intra-op thread counts, comma-separated; 0 is onnxruntime’s choice', threadList, [0])
    .option('--time <ms>', 'timing budget per configuration, in milliseconds (more when the median is not yet stable)', milliseconds, 1000)
    .option('--dims <name=n,…>', 'sizes of symbolic dimensions other than the batch (e.g. sequence=128)', dimList)
    .option('--seed <n>', 'seed of the synthetic inputs', (v) => (v === '0' ? 0 : positiveInteger(v)), 0)
    .option('--json', 'print one JSON document instead of text')
    .addHelpText(
      'after',
      `
Inputs are synthetic (random values of each input's type and shape); the first symbolic dimension is the batch.
A provider that is unavailable here, or a batch size a model cannot take, is a row saying why.

Examples:
  $ optimize bench model.onnx
  $ optimize bench model.onnx model.int8.onnx --batch 1,32 --threads 1,0
  $ optimize bench model.onnx --ep cpu,webgpu,cuda --time 2000 --json
  $ optimize bench bert.onnx --dims sequence=128`,
    )
    .action((paths: string[], o: BenchCommandOptions) => benchCommand(paths, o));
}
