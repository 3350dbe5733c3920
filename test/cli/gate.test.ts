/**
 * `optimize gate`, run in-process on a program holding only this command, with the exit-code mapping main.ts
 * applies (GoalNotMet → 1, GateInconclusive → 4, errors → reportError's code).
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { GateInconclusive, parseDuration, registerGate } from '../../src/cli/commands/gate.js';
import { GoalNotMet } from '../../src/cli/commands/quantize.js';
import { EXIT, reportError } from '../../src/cli/output.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { Tensor } from '../../src/onnx/tensor.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CNN = join(ROOT, 'fixtures/fmnist-cnn.onnx');
const CNN_DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `optimize gate …` and captures what it prints. */
async function optimize(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write;
  let code: number = EXIT.ok;
  try {
    const program = new Command('optimize')
      .exitOverride()
      .configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s), outputError: (s, write) => write(`optimize: ${s}`) });
    registerGate(program);
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && e.code === 'commander.helpDisplayed') code = EXIT.ok;
    else if (e instanceof GoalNotMet) code = EXIT.gateFailed;
    else if (e instanceof GateInconclusive) code = EXIT.inconclusive;
    else code = reportError(e, { json: args.includes('--json') });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { code, stdout, stderr };
}

describe('cli: optimize gate', function () {
  this.timeout(60_000);
  let tmp: string;
  let big: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-cli-gate-'));
    const model = await loadModel(CNN);
    model.graph.addInitializer('padding', Tensor.from('uint8', [427107], new Uint8Array(427107)));
    big = join(tmp, 'big.onnx');
    await saveModel(model, big);
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('--help shows the options, exit codes and examples', async () => {
    const r = await optimize('gate', '--help');
    expect(r.code).to.equal(0);
    for (const s of ['--baseline', '--candidate', '--max-size-increase', '--max-latency-increase', '--max-accuracy-drop', '--time-limit', '--markdown', '--junit', '--clock', 'Examples:', '4 latency inconclusive']) {
      expect(r.stdout).to.include(s);
    }
  });

  it('exit 0: a model against itself (size and accuracy), table on stdout', async () => {
    const r = await optimize('gate', '--baseline', CNN, '--candidate', CNN, '--data', CNN_DATA, '--no-latency');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^check\s+baseline\s+candidate\s+change\s+budget\s+verdict$/m);
    expect(r.stdout).to.match(/^size\s+417\.1 KiB\s+417\.1 KiB\s+\+0\.00%\s+≤ \+1%\s+pass$/m);
    expect(r.stdout).to.match(/^accuracy \(top-1, 256 samples\)\s+91\.80%\s+91\.80%\s+\+0\.00 pp\s+drop ≤ 0\.5 pp\s+pass$/m);
    expect(r.stdout).to.match(/Verdict: pass/);
  });

  it('exit 1: a candidate twice as big; --json prints one document; --markdown and --junit are written', async () => {
    const md = join(tmp, 'out', 'gate.md');
    const xml = join(tmp, 'out', 'gate.xml');
    const r = await optimize('gate', '--baseline', CNN, '--candidate', big, '--no-latency', '--json', '--markdown', md, '--junit', xml, '--max-size-increase', '50%');
    expect(r.code, r.stderr).to.equal(1);
    const doc = JSON.parse(r.stdout) as { verdict: string; checks: { name: string; verdict: string; budget: number }[] };
    expect(doc.verdict).to.equal('fail');
    expect(doc.checks[0]).to.include({ name: 'size', verdict: 'fail', budget: 0.5 });
    expect(readFileSync(md, 'utf8')).to.match(/^### onnxpress gate: ❌ fail/).and.include('| size |');
    expect(readFileSync(xml, 'utf8')).to.include('<failure');
    // no temporary files left beside them
    expect((await readdir(join(tmp, 'out'))).sort()).to.deep.equal(['gate.md', 'gate.xml']);
  });

  it('exit 4: latency that cannot be decided in the time limit (too short for the minimum of pairs)', async () => {
    const xml = join(tmp, 'inconclusive.xml');
    const r = await optimize('gate', '--baseline', CNN, '--candidate', CNN, '--time-limit', '1ms', '--junit', xml);
    expect(r.code, r.stderr).to.equal(4);
    expect(r.stdout).to.match(/^latency: inconclusive: .*pairs needed fit in the 0\.001 s time limit/m);
    expect(r.stdout).to.match(/Verdict: inconclusive/);
    expect(readFileSync(xml, 'utf8')).to.include('<skipped message="inconclusive: ');
  });

  it('exit 1 wins over inconclusive when another check failed', async () => {
    const r = await optimize('gate', '--baseline', CNN, '--candidate', big, '--time-limit', '1ms');
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stdout).to.match(/Verdict: fail \(size\)/);
  });

  describe('exit 2: bad usage or input', () => {
    const bad = async (message: RegExp, ...args: string[]) => {
      const r = await optimize('gate', ...args);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(message);
      expect(r.stdout).to.equal('');
    };
    it('a missing file', async () => {
      await bad(/optimize: error: baseline .*missing\.onnx: no such file/, '--baseline', join(tmp, 'missing.onnx'), '--candidate', CNN, '--no-latency');
      await bad(/optimize: error: .*missing\.onnx: no such file/, '--baseline', CNN, '--candidate', join(tmp, 'missing.onnx'), '--no-latency');
    });
    it('a bad percentage, duration or count', async () => {
      await bad(/option '--max-size-increase <percent>' argument 'lots' is invalid/, '--baseline', CNN, '--candidate', CNN, '--max-size-increase', 'lots');
      await bad(/option '--max-latency-increase <percent>' argument '-200%' is invalid/, '--baseline', CNN, '--candidate', CNN, '--max-latency-increase', '-200%');
      await bad(/option '--time-limit <duration>' argument 'soon' is invalid/, '--baseline', CNN, '--candidate', CNN, '--time-limit', 'soon');
      await bad(/option '--batch <n>' argument '0' is invalid/, '--baseline', CNN, '--candidate', CNN, '--batch', '0');
    });
    it('a missing required option', async () => {
      await bad(/required option '--candidate <model.onnx>' not specified/, '--baseline', CNN);
    });
    it('the same file for --markdown and --junit, and nothing is written', async () => {
      const f = join(tmp, 'same.out');
      await bad(/--markdown and --junit name the same file/, '--baseline', CNN, '--candidate', CNN, '--no-latency', '--markdown', f, '--junit', f);
      expect(existsSync(f)).to.equal(false);
    });
  });

  it('parseDuration reads s, ms, m and plain seconds', () => {
    expect(parseDuration('60s')).to.equal(60);
    expect(parseDuration('500ms')).to.equal(0.5);
    expect(parseDuration('2m')).to.equal(120);
    expect(parseDuration('30')).to.equal(30);
    expect(() => parseDuration('0s')).to.throw(/Expected a duration/);
  });
});
