/**
 * bench/gate: the two promises of the latency gate, checked on a real (busy) machine:
 *
 * | run | what | target |
 * |---|---|---|
 * | A/A | a fixture gated against itself, 20 times | never "fail" (pass or inconclusive) in 20/20 |
 * | +20% | the same fixture with ~20% more multiply-adds, 20 times, budget 5% | "fail" in ≥ 19/20 |
 *
 * The +20% candidate is built honestly: a 3×3 Conv with random weights reads the input of the model's largest
 * Conv and adds k output channels' worth of multiply-adds (k chosen for +20% of the model's Conv/Gemm/MatMul
 * MACs); a 1×1 Conv with zero weights folds them into one channel of zeros, which is added to that input. The
 * result is the same function (outputs unchanged), but onnxruntime cannot skip the work: it never looks at weight
 * values, and no input of the new Convs is constant. How much slower the candidate really is gets measured
 * separately (each model alone, in alternating rounds) and printed, so the "+20%" is a measured claim.
 *
 * Only the latency check decides here: size and accuracy are left out (the extra weights make the file ~1%
 * larger, which the size check would catch on its own).
 *
 *   npm run bench:gate
 *   node dist/bench/gate.js resnet8                   # another fixture (cnn, resnet8, mobilenet)
 *   BENCH_RUNS=20 BENCH_TIME_LIMIT=25 BENCH_BATCH=1 BENCH_EXTRA=0.2 BENCH_CLOCK=wall node dist/bench/gate.js
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { syntheticFeeds } from '../src/eval/feeds.js';
import { gate, type GateResult } from '../src/eval/gate.js';
import { machineInfo } from '../src/eval/machine.js';
import { attr, type Model, type Node } from '../src/onnx/ir.js';
import { loadModel, saveModel } from '../src/onnx/io.js';
import { Runner } from '../src/onnx/runner.js';
import { Tensor } from '../src/onnx/tensor.js';
import { mulberry32 } from '../src/util/random.js';
import { median } from '../src/util/stats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const TIME_LIMIT = Number(process.env.BENCH_TIME_LIMIT ?? 25);
const BATCH = Number(process.env.BENCH_BATCH ?? 1);
const EXTRA = Number(process.env.BENCH_EXTRA ?? 0.2);
const CLOCK = (process.env.BENCH_CLOCK ?? 'auto') as 'auto' | 'wall' | 'cpu';
const BUDGET = 0.05;
const FIXTURES: Record<string, string> = { cnn: 'fmnist-cnn.onnx', resnet8: 'fmnist-resnet8.onnx', mobilenet: 'fmnist-mobilenet.onnx' };


const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Multiply-adds of one sample for each Conv, Gemm and MatMul, from the shapes onnxruntime computes at batch 1. */
async function macsOf(model: Model): Promise<{ total: number; byNode: Map<Node, number>; shapes: Map<string, readonly number[]> }> {
  const nodes = model.graph.nodes.filter((n) => ['Conv', 'Gemm', 'MatMul'].includes(n.opType));
  const names = [...new Set(nodes.flatMap((n) => [n.input(0).name, n.output().name]))].filter((n) => !model.graph.outputs.some((o) => o.name === n));
  const runner = await Runner.create(model, { extraOutputs: names });
  const out = await runner.run(syntheticFeeds(model, { batch: 1 }));
  await runner.release();
  const shapes = new Map(Object.entries(out).map(([k, v]) => [k, v.dims]));
  const byNode = new Map<Node, number>();
  for (const n of nodes) {
    const w = n.input(1).initializer;
    const y = shapes.get(n.output().name);
    if (!w || !y) throw new Error(`${n.opType} ${n.name}: needs an initializer weight and a known output shape`);
    // Conv: every output element costs (Cin/group)·kh·kw; Gemm: K·N; MatMul: every output element costs K
    const macs = n.opType === 'Conv' ? product(y.slice(1)) * product(w.dims.slice(1)) : n.opType === 'Gemm' ? product(w.dims) : product(y.slice(1)) * w.dims[0]!;
    byNode.set(n, macs);
  }
  return { total: [...byNode.values()].reduce((a, b) => a + b, 0), byNode, shapes };
}

/** The same model with about `fraction` more multiply-adds (see the file comment); returns the MACs added. */
async function addCompute(model: Model, fraction: number, seed = 7): Promise<{ added: number; total: number; channels: number; at: string }> {
  const { total, byNode, shapes } = await macsOf(model);
  const target = [...byNode].filter(([n]) => n.opType === 'Conv').sort((a, b) => b[1] - a[1])[0]?.[0];
  if (!target) throw new Error('no Conv to widen');
  const x = target.input(0);
  const [, cin, h, w] = shapes.get(x.name) ?? model.graph.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : 1));
  const perChannel = (cin as number) * (h as number) * (w as number) * 9;
  const k = Math.max(1, Math.round((fraction * total) / perChannel));
  const rand = mulberry32(seed);
  const g = model.graph;
  const w3 = g.addInitializer(g.uniqueName('gate_extra_w'), Tensor.from('float32', [k, cin as number, 3, 3], Float32Array.from({ length: k * (cin as number) * 9 }, () => rand() * 0.2 - 0.1)));
  const w1 = g.addInitializer(g.uniqueName('gate_zero_w'), Tensor.from('float32', [1, k, 1, 1], new Float32Array(k)));
  const extra = g.addNode({ opType: 'Conv', name: g.uniqueNodeName('gate_extra'), inputs: [x, w3], attributes: { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) }, before: target });
  const zero = g.addNode({ opType: 'Conv', name: g.uniqueNodeName('gate_zero'), inputs: [extra.output(), w1], attributes: { kernel_shape: attr.ints([1, 1]) }, before: target });
  const sum = g.addNode({ opType: 'Add', name: g.uniqueNodeName('gate_sum'), inputs: [x, zero.output()], before: target });
  target.setInput(0, sum.output());
  const added = k * perChannel + k * (h as number) * (w as number);
  return { added, total, channels: k, at: target.name };
}

/**
 * Each model alone, the slowdown the gate should see: rounds of ~200 ms of one model then ~200 ms of the other
 * (order alternating), timed on the wall clock and on the process CPU clock (1 thread: the CPU clock leaves out
 * the time other jobs held the CPU). The slowdown is the median over rounds of candidate/baseline time per run,
 * so a load change between rounds does not count.
 */
async function timeAlone(paths: [string, string], batch: number, rounds = 20): Promise<Record<'wall' | 'cpu', { base: number; cand: number; ratio: number }>> {
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const models = await Promise.all(paths.map((p) => loadModel(p)));
  const runners = await Promise.all(paths.map((p) => Runner.create(p, { threads: 1 })));
  const feeds = models.map((m) => syntheticFeeds(m, { batch, seed: 1 }));
  for (let i = 0; i < 10; i++) for (let j = 0; j < 2; j++) await runners[j]!.run(feeds[j]!);
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await runners[0]!.run(feeds[0]!);
  const n = Math.max(1, Math.ceil(200 / ((performance.now() - t0) / 10)));
  const per = { wall: [[], []] as number[][], cpu: [[], []] as number[][] };
  for (let r = 0; r < rounds; r++) {
    for (const j of r % 2 ? [1, 0] : [0, 1]) {
      const s = performance.now();
      const c = cpuNow();
      for (let i = 0; i < n; i++) await runners[j]!.run(feeds[j]!);
      per.wall[j]!.push((performance.now() - s) / n);
      per.cpu[j]!.push((cpuNow() - c) / n);
    }
  }
  await Promise.all(runners.map((r) => r.release()));
  const summary = (x: number[][]) => ({ base: median(x[0]!), cand: median(x[1]!), ratio: median(x[1]!.map((c, i) => c / x[0]![i]!)) });
  return { wall: summary(per.wall), cpu: summary(per.cpu) };
}

function checkerVerdict(path: string): string {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(python, ['-c', 'import sys, onnx; onnx.checker.check_model(onnx.load(sys.argv[1])); print("ok")', path], { encoding: 'utf8' });
  return r.status === 0 ? 'passes the ONNX checker' : `ONNX checker: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
}

interface Tally {
  pass: number;
  fail: number;
  inconclusive: number;
  seconds: number[];
  pairs: number[];
  ratios: number[];
}

async function series(label: string, baseline: string, candidate: string): Promise<Tally> {
  const t: Tally = { pass: 0, fail: 0, inconclusive: 0, seconds: [], pairs: [], ratios: [] };
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    const r: GateResult = await gate({ baseline, candidate, batch: BATCH, threads: 1, maxLatencyIncrease: BUDGET, timeLimitSeconds: TIME_LIMIT, seed: i, maxSizeIncrease: 1, clock: CLOCK });
    const lat = r.checks.find((c) => c.name === 'latency')!;
    t[lat.verdict]++;
    t.seconds.push((performance.now() - s) / 1000);
    t.pairs.push(lat.latency!.pairs);
    t.ratios.push(lat.latency!.ratio);
    const ci = lat.interval!;
    console.log(
      `  ${label} ${String(i + 1).padStart(2)}: ${lat.verdict.padEnd(12)} ratio ${lat.latency!.ratio.toFixed(3)} [${(1 + ci.low).toFixed(3)}, ${(1 + ci.high).toFixed(3)}]  ${String(lat.latency!.pairs).padStart(4)} pairs × ${lat.latency!.runsPerBlock} runs  ${t.seconds.at(-1)!.toFixed(1)} s`,
    );
  }
  return t;
}

async function main(): Promise<void> {
  const key = process.argv[2] ?? 'cnn';
  const file = FIXTURES[key];
  if (!file) throw new Error(`unknown fixture "${key}" (one of: ${Object.keys(FIXTURES).join(', ')})`);
  const base = join(ROOT, 'fixtures', file);
  const tmp = await mkdtemp(join(tmpdir(), 'onnxpress-bench-gate-'));
  try {
    const model = await loadModel(base);
    const plus = await addCompute(model, EXTRA);
    const cand = join(tmp, `${key}-plus${Math.round(EXTRA * 100)}.onnx`);
    await saveModel(model, cand);
    const m = machineInfo();
    console.log(`bench/gate on ${m.cpu} (${m.cores} logical cores), onnxruntime ${m.onnxruntime}, node ${m.node}`);
    console.log(`baseline  ${file}: ${plus.total.toLocaleString('en-US')} MACs per sample`);
    console.log(
      `candidate +${plus.channels} channels of 3×3 Conv on the input of ${plus.at}: +${plus.added.toLocaleString('en-US')} MACs = +${((plus.added / plus.total) * 100).toFixed(1)}%; ${checkerVerdict(cand)}`,
    );
    const alone = await timeAlone([base, cand], BATCH);
    for (const clock of ['wall', 'cpu'] as const) {
      const { base: tb, cand: tc, ratio } = alone[clock];
      console.log(`alone, batch ${BATCH}, 1 thread, ${clock} clock: baseline ${tb.toFixed(4)} ms, candidate ${tc.toFixed(4)} ms per run; median round ratio: measured +${((ratio - 1) * 100).toFixed(1)}%`);
    }
    console.log(`gate: budget +${BUDGET * 100}%, time limit ${TIME_LIMIT} s, batch ${BATCH}, 1 thread, ${CLOCK} clock, ${RUNS} runs each`);
    const aa = await series('A/A ', base, base);
    const ab = await series(`+${Math.round(EXTRA * 100)}%`, base, cand);
    const row = (name: string, t: Tally) =>
      `${name.padEnd(6)} pass ${String(t.pass).padStart(2)}  fail ${String(t.fail).padStart(2)}  inconclusive ${String(t.inconclusive).padStart(2)}  median ${median(t.seconds).toFixed(1)} s per gate, ${median(t.pairs)} pairs, median ratio ${median(t.ratios).toFixed(3)}`;
    console.log('\nresults');
    console.log(row('A/A', aa));
    console.log(row(`+${Math.round(EXTRA * 100)}%`, ab));
    const ok = aa.fail === 0 && ab.fail >= Math.ceil(RUNS * 0.95);
    console.log(`targets (A/A never fails; +20% fails in ≥ 95% of runs): ${ok ? 'met' : 'NOT met'}`);
    if (!ok) process.exitCode = 1;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
