/**
 * `optimize run` and `optimize demo`, in process: the program main.ts builds (with `run` added if it is not
 * registered yet), its output captured and its errors mapped to exit codes as `main()` does.
 */
import { expect } from 'chai';
import { CommanderError } from 'commander';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerRun } from '../../src/cli/commands/run.js';
import { GoalNotMet } from '../../src/cli/commands/quantize.js';
import { makeProgram } from '../../src/cli/main.js';
import { EXIT, reportError } from '../../src/cli/output.js';
import { footprintSchema, reportSchema } from '../../src/eval/schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CNN = join(ROOT, 'fixtures/fmnist-cnn.onnx');
const DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs `optimize …args` in this process, as main() would, capturing stdout and stderr. */
async function optimize(...args: string[]): Promise<Run> {
  const program = makeProgram();
  if (!program.commands.some((c) => c.name() === 'run')) registerRun(program);
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  let status: number = EXIT.ok;
  try {
    await program.parseAsync(['node', 'optimize', ...args]);
  } catch (e) {
    if (e instanceof CommanderError && e.code === 'commander.help') status = EXIT.usage;
    else if (e instanceof GoalNotMet) status = EXIT.gateFailed;
    else status = reportError(e, { json: args.includes('--json') });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { status, stdout, stderr };
}

describe('cli: optimize run', function () {
  this.timeout(120_000);
  let tmp: string;
  let config: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-run-'));
    config = join(tmp, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        model: relative(tmp, CNN),
        data: relative(tmp, DATA),
        calibration: relative(tmp, DATA),
        outDir: 'out',
        variants: [
          { name: 'int8', passes: [{ type: 'quantize', mode: 'static', samples: 64 }] },
          { name: 'pruned', passes: [{ type: 'prune', method: 'channels', sparsity: 0.3 }] },
        ],
        evaluate: { samples: 64, latency: { ep: ['cpu'], batch: [1], time: 50, maxTime: 100 } },
      }),
    );
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('--dry-run prints the resolved config: defaults filled, paths resolved against the config’s folder', async () => {
    const r = await optimize('run', config, '--dry-run');
    expect(r.status, r.stderr).to.equal(0);
    const c = JSON.parse(r.stdout) as { model: string; outDir: string; seed: number; evaluate: { data: string; latency: { threads: number[] } }; variants: { passes: Record<string, unknown>[] }[] };
    expect(c.model).to.equal(CNN);
    expect(c.outDir).to.equal(join(tmp, 'out'));
    expect(c.seed).to.equal(0);
    expect(c.evaluate.data).to.equal(DATA);
    expect(c.evaluate.latency.threads).to.deep.equal([0]);
    expect(c.variants[0]!.passes[0]).to.include({ type: 'quantize', mode: 'static', samples: 64, calibration: DATA, latency: 'off', method: 'minmax' });
    expect(c.variants[1]!.passes[0]).to.include({ type: 'prune', method: 'channels', sparsity: 0.3, plan: 'uniform' });
    expect(existsSync(join(tmp, 'out'))).to.equal(false);
  });

  it('the example config validates', async () => {
    const r = await optimize('run', join(ROOT, 'examples/sweep.json'), '--dry-run');
    expect(r.status, r.stderr).to.equal(0);
    const names = (JSON.parse(r.stdout) as { variants: { name: string }[] }).variants.map((v) => v.name);
    expect(names).to.deep.equal(['int8', 'pruned-0.3', 'pruned-0.5', 'pruned-0.7', 'pruned-int8-0.3', 'pruned-int8-0.5', 'pruned-int8-0.7']);
  });

  it('a bad config exits 2 with the field’s path; so do bad JSON, a missing file and a bad --shard', async () => {
    const bad = join(tmp, 'bad.json');
    await writeFile(bad, JSON.stringify({ model: CNN, variants: [{ name: 'a', passes: [{ type: 'hygiene' }] }, { name: 'b', passes: [{ type: 'prune', method: 'channels', sparsity: -1 }] }] }));
    let r = await optimize('run', bad);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/^optimize: error: Invalid config .*bad\.json: variants\[1\]\.passes\[0\]\.sparsity: Too small: expected number to be >=0\n/);
    r = await optimize('run', bad, '--json');
    expect(r.status).to.equal(2);
    expect((JSON.parse(r.stdout) as { error: { kind: string } }).error.kind).to.equal('options');
    await writeFile(bad, '{"model": ');
    r = await optimize('run', bad);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/bad\.json: not valid JSON/);
    r = await optimize('run', join(tmp, 'nope.json'));
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/nope\.json: no such file/);
    r = await optimize('run', config, '--shard', '3/2');
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--shard.*Expected i\/n with 1 ≤ i ≤ n/);
  });

  it('runs: --json prints one document; the second run reuses the cache and prints the report table', async () => {
    let r = await optimize('run', config, '--json');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.equal('');
    const doc = JSON.parse(r.stdout) as { footprint: string; report: { html: string }; failed: string[]; variants: { name: string }[] };
    expect(doc.footprint).to.equal(join(tmp, 'out/footprint.json'));
    expect(doc.failed).to.deep.equal([]);
    expect(doc.variants.map((v) => v.name)).to.deep.equal(['float', 'int8', 'pruned']);
    footprintSchema.parse(JSON.parse(await readFile(doc.footprint, 'utf8')));
    reportSchema.parse(JSON.parse(await readFile(join(tmp, 'out/report.json'), 'utf8')));
    expect(existsSync(doc.report.html)).to.equal(true);

    r = await optimize('run', config);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| Variant \| Provider \| Batch \| Top-1 \|/);
    expect(r.stdout).to.match(/\| pruned \| cpu \| 1 \|/);
    expect(r.stdout).to.match(/Report: +.*report\.html/);
    expect(r.stderr).to.match(/\[\d\/3\] int8: model reused from the cache/);
    expect(r.stderr).not.to.match(/making the model/);
  });

  it('--shard writes footprint-i-of-n.json and prints the shard’s rows', async () => {
    const r = await optimize('run', config, '--shard', '2/2');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^variant +parent/);
    expect(r.stdout).to.match(/\npruned +float/);
    expect(r.stdout).not.to.match(/\nint8 /);
    expect(r.stdout).to.match(/optimize report /);
    const f = footprintSchema.parse(JSON.parse(await readFile(join(tmp, 'out/footprint-2-of-2.json'), 'utf8')));
    expect(f.variants.map((v) => v.name)).to.deep.equal(['float', 'pruned']);
  });

  it('a failed variant exits 1, names it, and records the others', async () => {
    const failing = join(tmp, 'failing.json');
    await writeFile(
      failing,
      JSON.stringify({
        model: CNN,
        data: DATA,
        outDir: join(tmp, 'failing'),
        variants: [
          { name: 'bad', passes: [{ type: 'distill', data: DATA, student: join(ROOT, 'fixtures/fmnist-mlp.onnx'), epochs: 1 }] },
          { name: 'ok', passes: [{ type: 'hygiene' }] },
        ],
        evaluate: { samples: 32, latency: false },
      }),
    );
    const r = await optimize('run', failing);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/optimize: variant bad failed: passes\[0\] \(distill\)/);
    const f = footprintSchema.parse(JSON.parse(await readFile(join(tmp, 'failing/footprint.json'), 'utf8')));
    expect(f.variants.map((v) => [v.name, !!v.error])).to.deep.equal([
      ['float', false],
      ['bad', true],
      ['ok', false],
    ]);
  });
});

describe('cli: optimize demo', function () {
  this.timeout(180_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-demo-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('tells the whole story into --out: prune, distill, quantize, evaluate, report.html; --json keeps part 1', async () => {
    const out = join(tmp, 'demo');
    const r = await optimize('demo', '--out', out, '--json');
    expect(r.status, r.stderr).to.equal(0);
    const d = JSON.parse(r.stdout) as {
      result: { correct: { top1: number } };
      pytorch: { top1: { correct: number } };
      report: { html: string };
      failed: string[];
      variants: { name: string; passes: { type: string }[]; accuracy?: { top1: number; samples: number } }[];
    };
    // part 1: onnxruntime agrees with PyTorch on the bundled CNN
    expect(d.result.correct.top1).to.equal(d.pytorch.top1.correct);
    // part 2
    expect(d.failed).to.deep.equal([]);
    expect(d.variants.map((v) => v.name)).to.deep.equal(['float', 'pruned', 'pruned-distilled', 'int8', 'pruned-distilled-int8', 'student', 'student-int8']);
    const v = new Map(d.variants.map((x) => [x.name, x]));
    expect(v.get('pruned-distilled')!.passes.map((p) => p.type)).to.deep.equal(['distill']);
    for (const x of d.variants) expect(x.accuracy!.samples).to.equal(128);
    // distillation from the original recovers part of what pruning lost (measured on images it did not train on)
    expect(v.get('pruned-distilled')!.accuracy!.top1).to.be.above(v.get('pruned')!.accuracy!.top1);
    expect(d.report.html).to.equal(join(out, 'report.html'));
    const html = await readFile(d.report.html, 'utf8');
    expect(html).to.match(/<svg/);
    expect(html).not.to.match(/<script[^>]+src=|<link[^>]+href="http/);
    // the config it ran is there to change and rerun
    const again = await optimize('run', join(out, 'config.json'), '--dry-run');
    expect(again.status, again.stderr).to.equal(0);
  });

  it('in text, keeps part 1’s lines, prints the table and where the report is; a rerun reuses the cache', async () => {
    const out = join(tmp, 'demo');
    await mkdir(out, { recursive: true });
    const r = await optimize('demo', '--out', out);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Top-1\s+91\.80%\s+\(235 \/ 256\)\s+PyTorch: 235 \/ 256, the same/);
    expect(r.stdout).to.match(/\| student-int8 \| cpu \| 32 \|/);
    expect(r.stdout).to.include(`Report:   ${join(out, 'report.html')}`);
    expect(r.stderr).not.to.match(/making the model/);
  });
});
