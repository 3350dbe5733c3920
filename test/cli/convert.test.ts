/**
 * `optimize convert`, driven through commander as main.ts will drive it (registerConvert on a fresh program):
 * the three targets, the text and JSON summaries, exit code 2 for bad input, and no output left on failure.
 * Numerics of the conversions themselves are checked in test/convert/tfjs.test.ts against onnxruntime and tfjs.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { registerConvert } from '../../src/cli/commands/convert.js';
import { EXIT, exitCodeFor } from '../../src/cli/output.js';
import { Model, loadModel, saveModel } from '../../src/index.js';
import { Runner } from '../../src/onnx/runner.js';

const tmp = mkdtempSync(join(tmpdir(), 'onnxpress-cli-convert-'));

/** Runs `optimize convert …` in-process; returns the exit code and what went to stdout. */
async function optimize(...args: string[]): Promise<{ code: number; stdout: string; error?: string }> {
  const program = new Command('optimize').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerConvert(program);
  let stdout = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'optimize', 'convert', ...args]);
    return { code: EXIT.ok, stdout };
  } catch (e) {
    return { code: exitCodeFor(e), stdout, error: (e as Error).message };
  } finally {
    process.stdout.write = write;
  }
}

async function logits(model: Model | string): Promise<Float32Array> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    const x = Float32Array.from({ length: 2 * 784 }, (_, i) => Math.sin(i * 0.1));
    const out = await r.run({ input: { dtype: 'float32', dims: [2, 1, 28, 28], data: x } });
    return out.logits!.data as Float32Array;
  } finally {
    await r.release();
  }
}

describe('cli: optimize convert', function () {
  this.timeout(60_000);
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('--to tfjs writes a graph model folder and prints a summary; --to onnx brings it back', async () => {
    const dir = join(tmp, 'cnn-web');
    const r = await optimize('fixtures/fmnist-cnn.onnx', '--to', 'tfjs', '-o', dir);
    expect(r.code, r.error).to.equal(0);
    expect(r.stdout).to.match(/Output\s+.*cnn-web \(TensorFlow.js graph model\)/);
    expect(r.stdout).to.include('tf.loadGraphModel');
    expect(readdirSync(dir).sort()).to.deep.equal(['group1-shard1of1.bin', 'model.json']);
    expect(JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')).format).to.equal('graph-model');

    const back = join(tmp, 'cnn-back.onnx');
    const j = await optimize(dir, '--to', 'onnx', '-o', back, '--json');
    expect(j.code, j.error).to.equal(0);
    const doc = JSON.parse(j.stdout) as { to: string; output: string; files: string[]; bytes: { after: number } };
    expect(doc).to.include({ to: 'onnx', output: back });
    expect(doc.bytes.after).to.be.greaterThan(100_000);
    const want = await logits('fixtures/fmnist-cnn.onnx');
    const got = await logits(back);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).to.be.below(1e-4));
  });

  it('--to fp16 --keep-io-types halves the file and keeps float32 inputs', async () => {
    const out = join(tmp, 'cnn.fp16.onnx');
    const r = await optimize('fixtures/fmnist-cnn.onnx', '--to', 'fp16', '--keep-io-types', '-o', out, '--json');
    expect(r.code, r.error).to.equal(0);
    const doc = JSON.parse(r.stdout) as { bytes: { ratio: number }; clamped: unknown[] };
    expect(doc.bytes.ratio).to.be.below(0.6);
    expect(doc.clamped).to.deep.equal([]);
    const m = await loadModel(out);
    expect(m.graph.inputs[0]!.elemType).to.equal('float32');
  });

  it('bad input exits 2 and leaves no output behind', async () => {
    // an op TensorFlow.js has no equivalent for
    const m = new Model();
    m.opsetImports.set('', 13);
    const g = m.graph;
    const x = g.declareValue('x');
    x.type = { kind: 'tensor', elemType: 'float32', shape: [1, 4] };
    g.inputs.push(x);
    const y = g.addNode({ opType: 'Erf', name: 'erf0', inputs: [x], outputs: ['y'] }).output();
    y.type = { kind: 'tensor', elemType: 'float32', shape: [1, 4] };
    g.outputs.push(y);
    const bad = join(tmp, 'erf.onnx');
    await saveModel(m, bad);
    const dir = join(tmp, 'erf-web');
    const r = await optimize(bad, '--to', 'tfjs', '-o', dir);
    expect(r.code).to.equal(2);
    expect(r.error).to.include('Erf (node "erf0")');
    expect(existsSync(dir)).to.equal(false);

    const missing = await optimize(join(tmp, 'nope'), '--to', 'onnx', '-o', join(tmp, 'nope.onnx'));
    expect(missing.code).to.equal(2);
    expect(missing.error).to.include('no such file or folder');
    expect(existsSync(join(tmp, 'nope.onnx'))).to.equal(false);

    const misuse = await optimize('fixtures/fmnist-mlp.onnx', '--to', 'tfjs', '--keep-io-types', '-o', join(tmp, 'x'));
    expect(misuse.code).to.equal(2);
    expect(misuse.error).to.include('--keep-io-types and --block-ops apply to --to fp16');

    const noTarget = await optimize('fixtures/fmnist-mlp.onnx', '-o', join(tmp, 'y'));
    expect(noTarget.code).to.equal(2);
    const wrong = await optimize('fixtures/fmnist-mlp.onnx', '--to', 'tflite', '-o', join(tmp, 'y'));
    expect(wrong.code).to.equal(2);
  });
});
