/**
 * Per-node kernel times from onnxruntime's profiler, attributed to the nodes of the model as the user wrote it.
 *
 * onnxruntime runs an optimized copy of the graph, whose nodes are renamed when they are fused or re-laid out, so
 * the profiler's names are mapped back:
 * - `X` — a node kept its name (Gemm, QGemm, QLinearAdd, …);
 * - `X_token_N` — the QDQ fusions name the integer kernel after the float node it replaced (QLinearConv);
 * - `V_nchwc` — the NCHWc transformer names a blocked Conv after its output value V, which, when an activation
 *   or an Add was fused into it, is that node's output: the Conv is found by walking up from V's producer.
 * Kernel times of nodes that map to nothing (Reorder, Transpose, Q/DQ left unfused) are summed under `''`.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Model, Node } from './ir.js';
import { Runner, type ExecutionProvider, type RunTensor } from './runner.js';
import { median } from '../util/stats.js';

/** Ops the NCHWc transformer and the Conv fusions fold into a Conv (its output then names the fused node). */
const FUSED_AFTER_CONV: ReadonlySet<string> = new Set(['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'Tanh', 'Add', 'Sum', 'BatchNormalization']);


/** The model node an onnxruntime profiler node name stands for, if any. */
export function attributeNode(model: Model, ortName: string): Node | undefined {
  const g = model.graph;
  const byName = (name: string) => g.nodes.find((n) => n.name === name);
  const direct = byName(ortName);
  if (direct) return direct;
  const token = /^(.*)_token_\d+$/.exec(ortName);
  if (token && byName(token[1]!)) return byName(token[1]!);
  const nchwc = /^(.*)_nchwc$/.exec(ortName);
  if (nchwc) {
    let node = g.values.get(nchwc[1]!)?.producer;
    for (let steps = 0; node && steps < 3 && node.opType !== 'Conv' && FUSED_AFTER_CONV.has(node.opType); steps++) {
      node = node.inputs.map((v) => v?.producer).find((p) => p?.opType === 'Conv') ?? node.inputs[0]?.producer;
    }
    return node;
  }
  return undefined;
}

/**
 * Runs `model` `runs` times on `feeds` under onnxruntime's profiler and returns the median kernel time per run, in
 * microseconds, of each node of `model` (by name; `''` collects what maps to no node).
 *
 * @example
 * ```ts
 * const times = await profileNodes(model, feeds, { runs: 20 });
 * times.get('/layer1/conv1/Conv'); // 412.5
 * ```
 */
export async function profileNodes(model: Model, feeds: Record<string, RunTensor>, options: { ep?: ExecutionProvider; threads?: number; runs?: number } = {}): Promise<Map<string, number>> {
  const runs = options.runs ?? 10;
  const dir = await mkdtemp(join(tmpdir(), 'onnxpress-profile-'));
  try {
    const runner = await Runner.create(model, { ep: options.ep, threads: options.threads, profile: join(dir, 'p') });
    try {
      await runner.run(feeds); // warm-up: not counted below (the first run's events are dropped)
      for (let i = 0; i < runs; i++) await runner.run(feeds);
      runner.endProfiling();
    } finally {
      await runner.release();
    }
    const file = (await readdir(dir)).find((f) => f.endsWith('.json'));
    if (!file) return new Map();
    const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as { cat?: string; name?: string; dur?: number; args?: { op_name?: string } }[];
    // the profiler logs every run's kernels in order; the warm-up run's come first and are dropped. Per node, the
    // median over runs: a run that the scheduler interrupted should not move a node's time (shared machines)
    const kernel = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time'));
    const perRun = kernel.length / (runs + 1);
    if (!Number.isInteger(perRun) || perRun === 0) return new Map();
    const cache = new Map<string, string>();
    const samples = new Map<string, number[]>();
    for (let r = 1; r <= runs; r++) {
      const inRun = new Map<string, number>();
      for (const e of kernel.slice(r * perRun, (r + 1) * perRun)) {
        const ortName = e.name!.slice(0, -'_kernel_time'.length);
        let name = cache.get(ortName);
        if (name === undefined) {
          name = attributeNode(model, ortName)?.name ?? '';
          cache.set(ortName, name);
        }
        inRun.set(name, (inRun.get(name) ?? 0) + (e.dur ?? 0));
      }
      for (const [name, us] of inRun) samples.set(name, [...(samples.get(name) ?? []), us]);
    }
    const out = new Map<string, number>();
    for (const [name, xs] of samples) out.set(name, median(xs));
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
