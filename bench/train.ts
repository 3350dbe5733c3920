/**
 * bench/train: samples per second of one training step — forward, distillation loss, backward and an SGD update —
 * of the Fashion-MNIST CNN (the fixture's layout without BatchNormalization: Conv 1→16 3×3 + Relu + MaxPool,
 * Conv 16→32 3×3 + Relu + MaxPool, Flatten, Gemm 1568→128 + Relu, Gemm 128→10), batch 128, CPU:
 *
 * | side | step |
 * |---|---|
 * | onnxruntime | `buildTrainingGraph` step graph (graphOptimizationLevel `extended`, spinning off), then w −= lr·g in TypeScript on the Float32Arrays |
 * | PyTorch 1.13 | the same net, weights, batch and loss in eager mode, `loss.backward()`, `torch.optim.SGD` |
 *
 * Both run at 1 and 2 threads, measured side by side in one run: PyTorch in a child process
 * (Debian's /usr/bin/python3, OMP_WAIT_POLICY=PASSIVE), rounds interleaved (onnxruntime, PyTorch, PyTorch,
 * onnxruntime, …), medians reported, with the ratio onnxruntime / PyTorch (goal ≥ 1.0×). The first step's loss of
 * both sides is printed to show they compute the same thing.
 *
 *   npm run bench:train
 *   BENCH_ROUNDS=15 BENCH_STEPS=8 node dist/bench/train.js
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { attr, Model, type Value } from '../src/onnx/ir.js';
import { Runner } from '../src/onnx/runner.js';
import { Tensor } from '../src/onnx/tensor.js';
import { buildTrainingGraph } from '../src/train/graph.js';
import { mulberry32 } from '../src/util/random.js';

const PYTHON = '/usr/bin/python3';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const STEPS = Number(process.env.BENCH_STEPS ?? 5);
const BATCH = 128;
const LR = 0.01;
const LOSS = { useLabels: true, useTeacher: true, temperature: 4, alpha: 0.5 };

/** The project's seeded generator (mulberry32), so every run sees the same data. */
const rng = mulberry32;

/** The CNN with PyTorch's default initialization (uniform ±1/√fan_in), as a Model and as plain arrays. */
function makeNet(): { model: Model; weights: Map<string, Tensor> } {
  const r = rng(1);
  const model = new Model();
  model.irVersion = 8;
  model.opsetImports.set('', 17);
  const g = model.graph;
  g.name = 'fmnist_cnn';
  const weights = new Map<string, Tensor>();
  const w = (name: string, dims: number[], fanIn: number): Value => {
    const bound = 1 / Math.sqrt(fanIn);
    const t = Tensor.from('float32', dims, Float32Array.from({ length: dims.reduce((p, d) => p * d, 1) }, () => (r() * 2 - 1) * bound));
    weights.set(name, t);
    return g.addInitializer(name, t);
  };
  const x = g.declareValue('input');
  x.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', 1, 28, 28] };
  g.inputs.push(x);
  const op = (opType: string, inputs: Value[], attributes = {}, outputs?: string[]) => g.addNode({ opType, inputs, attributes, outputs }).output(0);
  const pool = { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) };
  const pads = { pads: attr.ints([1, 1, 1, 1]) };
  let h = op('Conv', [x, w('conv1.weight', [16, 1, 3, 3], 9), w('conv1.bias', [16], 9)], pads);
  h = op('MaxPool', [op('Relu', [h])], pool);
  h = op('Conv', [h, w('conv2.weight', [32, 16, 3, 3], 144), w('conv2.bias', [32], 144)], pads);
  h = op('MaxPool', [op('Relu', [h])], pool);
  h = op('Flatten', [h]);
  h = op('Relu', [op('Gemm', [h, w('fc1.weight', [128, 1568], 1568), w('fc1.bias', [128], 1568)], { transB: attr.int(1) })]);
  const logits = op('Gemm', [h, w('fc2.weight', [10, 128], 128), w('fc2.bias', [10], 128)], { transB: attr.int(1) }, ['logits']);
  g.outputs.push(logits);
  return { model, weights };
}

/** A batch: images in [-1, 1), one-hot labels, teacher logits. */
function makeBatch(): { x: Float32Array; labels: Float32Array; teacher: Float32Array } {
  const r = rng(2);
  const x = Float32Array.from({ length: BATCH * 784 }, () => r() * 2 - 1);
  const labels = new Float32Array(BATCH * 10);
  for (let i = 0; i < BATCH; i++) labels[i * 10 + Math.floor(r() * 10)] = 1;
  const teacher = Float32Array.from({ length: BATCH * 10 }, () => r() * 6 - 3);
  return { x, labels, teacher };
}

const PY = String.raw`
import json, sys, time, torch
import torch.nn.functional as F
init = json.loads(sys.stdin.readline())
W = {k: torch.tensor(v['data'], dtype=torch.float32).reshape(v['dims']).requires_grad_(True) for k, v in init['weights'].items()}
x = torch.tensor(init['x'], dtype=torch.float32).reshape(-1, 1, 28, 28)
y = torch.tensor(init['labels'], dtype=torch.float32).reshape(-1, 10)
te = torch.tensor(init['teacher'], dtype=torch.float32).reshape(-1, 10)
T, alpha, lr = init['T'], init['alpha'], init['lr']
opt = torch.optim.SGD(list(W.values()), lr=lr)
def step():
    opt.zero_grad(set_to_none=True)
    h = F.max_pool2d(F.relu(F.conv2d(x, W['conv1.weight'], W['conv1.bias'], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, W['conv2.weight'], W['conv2.bias'], padding=1)), 2)
    h = F.relu(F.linear(torch.flatten(h, 1), W['fc1.weight'], W['fc1.bias']))
    s = F.linear(h, W['fc2.weight'], W['fc2.bias'])
    B = s.shape[0]
    ce = -(y * F.log_softmax(s, 1)).sum() / B
    lpt = F.log_softmax(te / T, 1)
    kl = (lpt.exp() * (lpt - F.log_softmax(s / T, 1))).sum() / B
    loss = alpha * ce + (1 - alpha) * T * T * kl
    loss.backward()
    opt.step()
    return loss.item()
print(json.dumps({'loss0': step()}), flush=True)
for line in sys.stdin:
    threads, steps = map(int, line.split())
    torch.set_num_threads(threads)
    step(); step()
    t0 = time.perf_counter()
    for _ in range(steps): step()
    print(json.dumps({'seconds': time.perf_counter() - t0}), flush=True)
`;
import { median } from '../src/util/stats.js';

/** The PyTorch side: a child process answering "threads steps" lines with the seconds those steps took. */
async function startTorch(init: unknown): Promise<{ loss0: number; time: (threads: number, steps: number) => Promise<number>; stop: () => void }> {
  const child = spawn(PYTHON, ['-c', PY], { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const l = await lines.next();
    if (l.done) throw new Error('the PyTorch child process ended early (is torch installed for /usr/bin/python3?)');
    return JSON.parse(l.value) as { loss0?: number; seconds?: number };
  };
  child.stdin.write(JSON.stringify(init) + '\n');
  const { loss0 } = await next();
  return {
    loss0: loss0!,
    time: async (threads, steps) => {
      child.stdin.write(`${threads} ${steps}\n`);
      return (await next()).seconds!;
    },
    stop: () => child.stdin.end(),
  };
}


async function main(): Promise<void> {
  const { model, weights } = makeNet();
  const batch = makeBatch();
  const tg = buildTrainingGraph(model, { loss: LOSS });
  const params = tg.params.map((p) => ({ ...p, data: Float32Array.from(weights.get(p.name)!.data<Float32Array>()) }));
  const fixed = {
    input: Tensor.from('float32', [BATCH, 1, 28, 28], batch.x),
    labels: Tensor.from('float32', [BATCH, 10], batch.labels),
    teacher_logits: Tensor.from('float32', [BATCH, 10], batch.teacher),
  };
  const feeds: Record<string, Tensor> = { ...fixed };
  for (const p of params) feeds[p.name] = Tensor.from('float32', p.init.dims, p.data);
  const fetch = ['loss', ...params.map((p) => p.gradOutput)];
  const runners = new Map<number, Runner>();
  for (const t of [1, 2]) runners.set(t, await Runner.create(tg.model, { threads: t, graphOptimizationLevel: 'extended' }));

  /** One step: run the graph, then SGD on the Float32Arrays the feeds wrap. */
  const step = async (runner: Runner): Promise<number> => {
    const out = await runner.run(feeds, fetch);
    for (const p of params) {
      const g = out[p.gradOutput]!.data as Float32Array;
      const w = p.data;
      for (let i = 0; i < w.length; i++) w[i] -= LR * g[i]!;
    }
    return (out.loss!.data as Float32Array)[0]!;
  };

  const init = {
    weights: Object.fromEntries([...weights].map(([k, t]) => [k, { dims: t.dims, data: Array.from(t.data<Float32Array>()) }])),
    x: Array.from(batch.x),
    labels: Array.from(batch.labels),
    teacher: Array.from(batch.teacher),
    T: LOSS.temperature,
    alpha: LOSS.alpha,
    lr: LR,
  };
  const torch = await startTorch(init);
  const ortLoss0 = await step(runners.get(1)!);
  console.log(`first-step loss: onnxruntime ${ortLoss0.toFixed(6)}, PyTorch ${torch.loss0.toFixed(6)}`);
  console.log(`step graph: ${tg.model.graph.nodes.length} nodes, ${params.length} parameters (${params.reduce((s, p) => s + p.data.length, 0)} values); batch ${BATCH}, ${STEPS} steps per measurement, ${ROUNDS} rounds\n`);

  const ort = new Map<number, number[]>([[1, []], [2, []]]);
  const pt = new Map<number, number[]>([[1, []], [2, []]]);
  const ratios = new Map<number, number[]>([[1, []], [2, []]]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const t of [1, 2]) {
      const runner = runners.get(t)!;
      const timeOrt = async () => {
        await step(runner);
        const t0 = performance.now();
        for (let i = 0; i < STEPS; i++) await step(runner);
        return (performance.now() - t0) / 1000;
      };
      // alternate which side goes first, so that neither always gets the quieter moment
      let a: number, b: number;
      if (round % 2 === 0) {
        a = await timeOrt();
        b = await torch.time(t, STEPS);
      } else {
        b = await torch.time(t, STEPS);
        a = await timeOrt();
      }
      const [sa, sb] = [(STEPS * BATCH) / a, (STEPS * BATCH) / b];
      ort.get(t)!.push(sa);
      pt.get(t)!.push(sb);
      ratios.get(t)!.push(sa / sb);
      console.log(`round ${round + 1} threads ${t}: onnxruntime ${sa.toFixed(0)} samples/s, PyTorch ${sb.toFixed(0)} samples/s, ratio ${(sa / sb).toFixed(2)}×`);
    }
  }
  torch.stop();
  for (const r of runners.values()) await r.release();

  console.log('\n| threads | onnxruntime samples/s | PyTorch 1.13 samples/s | ratio (median of rounds) | goal |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const t of [1, 2]) {
    console.log(`| ${t} | ${median(ort.get(t)!).toFixed(0)} | ${median(pt.get(t)!).toFixed(0)} | ${median(ratios.get(t)!).toFixed(2)}× | ≥ 1.0× |`);
  }
}

await main();
