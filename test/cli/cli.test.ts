/** The built CLI (`node dist/src/cli/main.js`), spawned as a user would run it. */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveModel } from '../../src/onnx/io.js';
import { Model } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const CNN = 'fixtures/fmnist-cnn.onnx';
const CNN_DATA = 'fixtures/fmnist-test-256/cnn.json';
const ref = (JSON.parse(readFileSync(join(ROOT, 'fixtures/reference.json'), 'utf8')) as { models: Record<string, Record<string, unknown>> }).models[
  'fmnist-cnn.onnx'
] as {
  parameters: number;
  initializerElements: number;
  bnRunningStatElements: number;
  fileBytes: number;
  opTypes: Record<string, number>;
  slice256: { top1: { correct: number }; top5: { correct: number } };
};

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function optimize(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** stdout must be exactly one JSON document. */
function json<T = Record<string, unknown>>(r: Run): T {
  return JSON.parse(r.stdout) as T;
}

/** A JavaScript stack frame (native libraries may print their own `at operator() (file.cpp:12)` lines). */
const JS_STACK = /\n\s+at .*(file:|node:|\.js:\d)/;

/** A usage or input error: exit code 2, one `optimize: error:` line first, no stack trace. */
function expectBadInput(r: Run, message: RegExp): void {
  expect(r.status, r.stderr).to.equal(2);
  expect(r.stderr).to.match(/^optimize: error: /);
  expect(r.stderr).to.match(message);
  expect(r.stderr).not.to.match(JS_STACK);
}

describe('cli: optimize', function () {
  this.timeout(120_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-cli-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('--help lists exactly the commands that exist', () => {
    const r = optimize('--help');
    expect(r.status).to.equal(0);
    const commands = r.stdout.split('Commands:')[1]!.split('\n').map((l) => /^ {2}(\S+)/.exec(l)?.[1]).filter(Boolean);
    // one file per command in src/cli/commands: each must be registered, and nothing else may be
    const files = readdirSync(new URL('../../src/cli/commands/', import.meta.url)).filter((f) => f.endsWith('.js')).map((f) => f.replace(/\.js$/, ''));
    expect([...commands].sort()).to.deep.equal([...files, 'help'].sort());
  });

  it('every command’s --help shows its options and at least one example that names the command', () => {
    const files = readdirSync(new URL('../../src/cli/commands/', import.meta.url)).filter((f) => f.endsWith('.js')).map((f) => f.replace(/\.js$/, ''));
    for (const c of files) {
      const r = optimize(c, '--help');
      expect(r.status, c).to.equal(0);
      expect(r.stdout, c).to.match(/Options:/);
      expect(r.stdout, c).to.match(new RegExp(`Examples:\\n\\s+\\$ optimize ${c}\\b`));
    }
  });

  it('without a command prints the usage and exits 2', () => {
    const r = optimize();
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/Usage: optimize/);
  });

  describe('inspect', () => {
    it('--json describes the fixture CNN as reference.json does', () => {
      const r = optimize('inspect', CNN, '--json');
      expect(r.status, r.stderr).to.equal(0);
      const s = json<{
        file: string;
        ops: { opType: string; domain: string; count: number }[];
        parameters: number;
        batchNormStats: number;
        fileBytes: number;
        nodes: number;
        inputs: unknown[];
        outputs: unknown[];
        opsetImports: unknown[];
        quantization: Record<string, number>;
        zeroWeights: { zeros: number; total: number };
      }>(r);
      const hist = Object.fromEntries(s.ops.map((o) => [o.opType, o.count]));
      expect(hist).to.include({ BatchNormalization: 2, Conv: 2 });
      expect(hist).to.deep.equal(ref.opTypes);
      expect(s.ops.map((o) => o.count)).to.deep.equal([...s.ops.map((o) => o.count)].sort((a, b) => b - a));
      // every float initializer counts (BatchNormalization running statistics too); less those, PyTorch's count
      expect(s.parameters).to.equal(ref.initializerElements);
      expect(s.batchNormStats).to.equal(ref.bnRunningStatElements);
      expect(s.parameters - s.batchNormStats).to.equal(ref.parameters);
      expect(s.fileBytes).to.equal(ref.fileBytes);
      expect(s.nodes).to.equal(12);
      expect(s.opsetImports).to.deep.equal([{ domain: '', version: 13 }]);
      expect(s.inputs).to.deep.equal([{ name: 'input', dtype: 'float32', shape: ['batch', 1, 28, 28] }]);
      expect(s.outputs).to.deep.equal([{ name: 'logits', dtype: 'float32', shape: ['batch', 10] }]);
      expect(s.quantization).to.deep.equal({ ops: 0, opShare: 0, computeOps: 4, quantizedComputeOps: 0, weightOnlyComputeOps: 0 });
      expect(s.zeroWeights.total).to.equal(ref.initializerElements);
      expect(r.stderr).to.equal('');
    });

    it('prints the inputs, outputs and op histogram for humans', () => {
      const r = optimize('inspect', CNN);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/Inputs:\n\s+input\s+float32\s+\[batch, 1, 28, 28\]/);
      expect(r.stdout).to.match(/Outputs:\n\s+logits\s+float32\s+\[batch, 10\]/);
      expect(r.stdout).to.match(/BatchNormalization\s+2/);
      expect(r.stdout).to.match(/Parameters\s+106,058 \(96 of them BatchNormalization running statistics\)/);
    });

    it('counts quantization ops and which compute ops run quantized', async () => {
      // x → Q → DQ ─┐
      //  DQ(int8 W1) ─ MatMul (quantized) ; MatMul(x, DQ(int8 W2)) (weight only) ; Gemm(x, float W3) (float)
      const m = new Model();
      m.irVersion = 8;
      m.opsetImports.set('', 13);
      const g = m.graph;
      const x = g.declareValue('x');
      x.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 4] };
      g.inputs.push(x);
      const scale = g.addInitializer('scale', Tensor.from('float32', [], [0.1]));
      const zp = g.addInitializer('zp', Tensor.from('int8', [], [0]));
      const w1 = g.addInitializer('w1', Tensor.from('int8', [4, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
      const w2 = g.addInitializer('w2', Tensor.from('int8', [4, 3], new Array(12).fill(1)));
      const w3 = g.addInitializer('w3', Tensor.from('float32', [4, 3], [0, 0, 0, 1, 2, 3, 0, 0, 0, 1, 2, 3]));
      const shape = g.addInitializer('shape', Tensor.from('int64', [2], [-1n, 3n]));
      const q = g.addNode({ opType: 'QuantizeLinear', inputs: [x, scale, zp] }).output();
      const dq = g.addNode({ opType: 'DequantizeLinear', inputs: [q, scale, zp] }).output();
      const dw1 = g.addNode({ opType: 'DequantizeLinear', inputs: [w1, scale, zp] }).output();
      const dw2 = g.addNode({ opType: 'DequantizeLinear', inputs: [w2, scale, zp] }).output();
      const a = g.addNode({ opType: 'MatMul', inputs: [dq, dw1] }).output();
      const b = g.addNode({ opType: 'MatMul', inputs: [x, dw2] }).output();
      const c = g.addNode({ opType: 'Gemm', inputs: [x, w3] }).output();
      const k = g.addNode({ opType: 'Constant', attributes: { value: { type: 'tensor', value: Tensor.from('float32', [3], [0, 1, 2]) } } }).output();
      const s1 = g.addNode({ opType: 'Sum', inputs: [a, b, c, k] }).output();
      const y = g.addNode({ opType: 'Reshape', inputs: [s1, shape], outputs: ['y'] }).output();
      y.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 3] };
      g.outputs.push(y);
      const file = join(tmp, 'qdq.onnx');
      await saveModel(m, file);

      const r = optimize('inspect', file, '--json');
      expect(r.status, r.stderr).to.equal(0);
      const s = json<{ quantization: Record<string, number>; parameters: number; zeroWeights: Record<string, number>; nodes: number; constantTensors: number }>(r);
      expect(s.nodes).to.equal(10);
      expect(s.quantization).to.deep.equal({ ops: 4, opShare: 0.4, computeOps: 3, quantizedComputeOps: 1, weightOnlyComputeOps: 1 });
      // int8 weights read by DequantizeLinear (24) + scale (1) + float Gemm weight (12) + Constant (3); not zp, not shape
      expect(s.parameters).to.equal(24 + 1 + 12 + 3);
      expect(s.zeroWeights).to.deep.equal({ zeros: 7, total: 16, fraction: 7 / 16 });
      expect(s.constantTensors).to.equal(1);
    });
  });

  describe('eval', () => {
    it('--json gives PyTorch’s counts on the 256-image slice', () => {
      const r = optimize('eval', CNN, '--data', CNN_DATA, '--json', '--threads', '1');
      expect(r.status, r.stderr).to.equal(0);
      const e = json<{ samples: number; correct: { top1: number; top5: number }; confusion: number[][]; ep: string; model: string }>(r);
      expect(e.samples).to.equal(256);
      expect(e.correct).to.deep.equal({ top1: ref.slice256.top1.correct, top5: ref.slice256.top5.correct });
      expect(e.confusion).to.have.length(10);
      expect(e.ep).to.equal('cpu');
      expect(e.model).to.equal(CNN);
    });

    it('prints accuracy and a per-class table for humans, honouring --limit and --batch-size', () => {
      const r = optimize('eval', CNN, '--data', CNN_DATA, '--limit', '100', '--batch-size', '7');
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/Samples\s+100\s+10 classes, output "logits", cpu, batch 7/);
      expect(r.stdout).to.match(/Top-1\s+\d+\.\d\d%\s+\d+ \/ 100/);
      expect(r.stdout).to.match(/Per class:\n\s+class\s+precision\s+recall\s+f1\s+support/);
    });

    it('says that webgpu is unavailable (exit 2), or runs on it when it is there', () => {
      const r = optimize('eval', CNN, '--data', CNN_DATA, '--ep', 'webgpu', '--json');
      if (r.status === 0) {
        expect(json<{ ep: string }>(r).ep).to.equal('webgpu');
        return;
      }
      expect(r.status, r.stderr).to.equal(2);
      // the GPU runtime may print its own warnings first (e.g. about Vulkan)
      expect(r.stderr).to.match(/^optimize: error: Execution provider "webgpu" is unavailable here/m);
      expect(r.stderr).not.to.match(JS_STACK);
      expect(json<{ error: { kind: string; message: string } }>(r).error).to.include({ kind: 'evaluation' });
    });

    it('rejects an unknown provider, a bad number and a missing --data as usage errors', () => {
      expectBadInput(optimize('eval', CNN, '--data', CNN_DATA, '--ep', 'tpu'), /argument 'tpu' is invalid. Allowed choices are cpu, webgpu, cuda/);
      expectBadInput(optimize('eval', CNN, '--data', CNN_DATA, '--threads', '0'), /'--threads <n>' argument '0' is invalid. Expected a positive integer/);
      expectBadInput(optimize('eval', CNN), /required option '--data <descriptor.json>' not specified/);
    });

    it('names the input and both shapes when the data does not fit the model', () => {
      expectBadInput(optimize('eval', CNN, '--data', 'fixtures/fmnist-test-256/mlp.json'), /model expects \[batch, 1, 28, 28\] float32 but the data is \[N, 784\]/);
    });
  });

  describe('bad input', () => {
    it('a missing model file', () => {
      expectBadInput(optimize('inspect', 'no/such/model.onnx'), /no\/such\/model\.onnx: no such file/);
    });

    it('a corrupt model file (random bytes), with a JSON error document under --json', async () => {
      let seed = 12345;
      const bytes = new Uint8Array(4096).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255);
      const file = join(tmp, 'corrupt.onnx');
      await writeFile(file, bytes);
      const r = optimize('inspect', file, '--json');
      expectBadInput(r, /corrupt\.onnx: not a valid ONNX model/);
      expect(json<{ error: { kind: string } }>(r).error.kind).to.equal('load');
      expectBadInput(optimize('eval', file, '--data', CNN_DATA), /not a valid ONNX model/);
    });

    it('a missing dataset descriptor', () => {
      expectBadInput(optimize('eval', CNN, '--data', 'no-such-descriptor.json'), /Dataset descriptor not found: .*no-such-descriptor\.json/);
    });

    it('an unknown option', () => {
      expectBadInput(optimize('inspect', CNN, '--frobnicate'), /unknown option '--frobnicate'/);
    });

    it('--debug adds the stack trace', () => {
      const r = optimize('inspect', 'no/such/model.onnx', '--debug');
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/^optimize: error: no\/such\/model\.onnx: no such file\nLoadError: .*\n\s+at /);
    });
  });

  it('demo exits 0 and prints the accuracy, the same as PyTorch’s', () => {
    const r = optimize('demo', '--out', join(tmp, 'demo'));
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Top-1\s+91\.80%\s+\(235 \/ 256\)\s+PyTorch: 235 \/ 256, the same/);
    expect(r.stdout).to.match(/Top-5\s+100\.00%\s+\(256 \/ 256\)/);
    expect(r.stdout).to.match(/Takes\s+input float32 \[batch, 1, 28, 28\]/);
  });

  it('demo works from any folder (fixtures are found from the package root)', () => {
    const r = spawnSync(process.execPath, [CLI, 'demo', '--json', '--out', join(tmp, 'demo-json')], { cwd: tmpdir(), encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const d = JSON.parse(r.stdout) as { result: { correct: { top1: number } }; pytorch: { top1: { correct: number } } };
    expect(d.result.correct.top1).to.equal(d.pytorch.top1.correct);
  });
});
