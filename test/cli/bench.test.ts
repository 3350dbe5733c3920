/**
 * `optimize bench`, run in-process on a program with only this command registered (as main.ts will register it),
 * with main.ts's error handling: exit codes from `reportError`.
 */
import { expect } from 'chai';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { benchResultSchema, registerBench } from '../../src/cli/commands/bench.js';
import { EXIT, reportError } from '../../src/cli/output.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CNN = join(ROOT, 'fixtures/fmnist-cnn.onnx');
const MLP = join(ROOT, 'fixtures/fmnist-mlp.onnx');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function optimize(...args: string[]): Promise<Run> {
  const program = new Command('optimize')
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`optimize: ${str}`) });
  registerBench(program);
  let stdout = '', stderr = '';
  const out = process.stdout.write, err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  let code: number = EXIT.ok;
  try {
    await program.parseAsync(['node', 'optimize', ...args]);
  } catch (e) {
    code = reportError(e, { json: args.includes('--json') });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { code, stdout, stderr };
}

describe('cli: optimize bench', function () {
  this.timeout(60_000);

  it('--json: one document that fits the schemas, a row per ep × batch × threads, sizes of the files', async () => {
    const r = await optimize('bench', CNN, MLP, '--ep', 'cpu,cuda', '--batch', '1,2', '--threads', '1', '--time', '20', '--json');
    expect(r.code, r.stderr).to.equal(0);
    const result = benchResultSchema.parse(JSON.parse(r.stdout));
    expect(result.models.map((m) => m.model)).to.deep.equal([CNN, MLP]);
    for (const m of result.models) {
      expect(m.size.bytes).to.equal(statSync(m.model).size);
      expect(m.latency.map((x) => `${x.ep}/${x.batch}/${x.threads}`)).to.deep.equal(['cpu/1/1', 'cpu/2/1', 'cuda/1/1', 'cuda/2/1']);
      expect(m.latency.filter((x) => x.ep === 'cpu').every((x) => x.available)).to.equal(true);
    }
    expect(result.machine.node).to.equal(process.version);
  });

  it('text: machine line, size line and table, unavailable rows pointing to their reason', async () => {
    const r = await optimize('bench', MLP, '--ep', 'cpu,cuda', '--time', '20');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Machine {2}.+, \d+ cores, /);
    expect(r.stdout).to.match(/Size {5}398\.1 KiB, .* gzip · 101,770 parameters, 0\.00% zero · 101\.63 k MACs per sample/);
    expect(r.stdout).to.match(/\ncpu +1 +auto +[\d.]+ +[\d.]+ +[\d.]+ +[\d,]+ +\d+ +[\d.]+ MiB\n/);
    if (/\ncuda +1 +auto +unavailable \[1\]/.test(r.stdout)) expect(r.stdout).to.match(/\n\[1\] Execution provider "cuda" is unavailable here/);
  });

  it('a missing model file exits 2 naming it, before any timing', async () => {
    const r = await optimize('bench', MLP, 'no/such/model.onnx', '--json');
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/no\/such\/model\.onnx: no such file/);
    expect(JSON.parse(r.stdout)).to.have.nested.property('error.kind', 'load');
  });

  it('an unknown --ep, a bad --batch or --threads exits 2', async () => {
    for (const args of [['--ep', 'cpu,tpu'], ['--batch', '0'], ['--threads', '-1'], ['--time', 'soon']]) {
      const r = await optimize('bench', MLP, ...args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(new RegExp(`optimize: error: option '${args[0]}`));
    }
    expect((await optimize('bench', MLP, '--ep', 'tpu')).stderr).to.match(/Unknown execution provider "tpu": expected cpu, webgpu, cuda/);
  });

  it('--help shows the options and examples', async () => {
    const r = await optimize('bench', '--help');
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/--ep <providers>/);
    expect(r.stdout).to.match(/Examples:\n {2}\$ optimize bench model\.onnx/);
  });
});
