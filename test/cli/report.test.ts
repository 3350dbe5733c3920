/**
 * `optimize report`, run in-process through the program main.ts builds (with `registerReport` added when main.ts
 * does not list it yet), with main.ts's error handling: exit codes, stdout, stderr.
 */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CommanderError } from 'commander';
import { registerReport } from '../../src/cli/commands/report.js';
import { makeProgram } from '../../src/cli/main.js';
import { EXIT, reportError } from '../../src/cli/output.js';
import { buildReport, readReport, writeReport } from '../../src/eval/report.js';
import { MACHINE, footprint, fourVariants } from '../eval/report-fixtures.js';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** `optimize report …args`, as main() runs it, with stdout and stderr captured. */
async function optimizeReport(...args: string[]): Promise<Run> {
  const program = makeProgram();
  if (!program.commands.some((c) => c.name() === 'report')) registerReport(program);
  let stdout = '', stderr = '';
  const out = process.stdout.write, err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  let status: number;
  try {
    await program.parseAsync(['node', 'optimize', 'report', ...args]);
    status = EXIT.ok;
  } catch (e) {
    status = e instanceof CommanderError && e.code === 'commander.helpDisplayed' ? EXIT.ok : reportError(e, { json: args.includes('--json') });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  return { status, stdout, stderr };
}

const config = { variants: [{ name: 'int8' }, { name: 'pruned' }, { name: 'pruned-int8' }] };
const [float, int8, pruned, prunedInt8] = fourVariants() as [ReturnType<typeof fourVariants>[0], ReturnType<typeof fourVariants>[0], ReturnType<typeof fourVariants>[0], ReturnType<typeof fourVariants>[0]];
const shard1 = footprint([float, int8, prunedInt8], { shard: { index: 1, count: 2 }, config });
const shard2 = footprint([float, pruned], { shard: { index: 2, count: 2 }, config });

describe('cli: optimize report', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-cli-report-'));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('--help has examples', async () => {
    const r = await optimizeReport('--help');
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/Usage: optimize report \[options\] <inputs\.\.\.>/);
    expect(r.stdout).to.match(/Examples:\n {2}\$ optimize report out/);
  });

  it('merges the two footprints of a run folder, writes the three files and prints the table', async () => {
    const run = join(tmp, 'run');
    await mkdir(run);
    await writeFile(join(run, 'footprint-1.json'), JSON.stringify(shard1));
    await writeFile(join(run, 'footprint-2.json'), JSON.stringify(shard2));
    const r = await optimizeReport(run);
    expect(r.status, r.stderr).to.equal(0);
    for (const f of ['report.json', 'report.md', 'report.html']) expect(existsSync(join(run, f)), f).to.equal(true);
    const report = await readReport(join(run, 'report.json'));
    expect(report.variants.map((v) => v.name)).to.deep.equal(['float', 'int8', 'pruned', 'pruned-int8']);
    expect(report.frontier).to.deep.equal(['pruned-int8', 'int8', 'float']);
    expect(r.stdout).to.equal(await readFile(join(run, 'report.md'), 'utf8'));
    expect(r.stdout.split('\n').filter((l) => /^\| (float|int8|pruned|pruned-int8) \|/.test(l))).to.have.length(4);
    expect(r.stderr).to.match(/^wrote .*report\.json, .*report\.md, .*report\.html\n$/);
  });

  it('merges footprint files from two folders into -o, rebasing model paths; --json prints the report', async () => {
    await mkdir(join(tmp, 'a'));
    await mkdir(join(tmp, 'b'));
    await writeFile(join(tmp, 'a', 'footprint.json'), JSON.stringify(shard1));
    await writeFile(join(tmp, 'b', 'footprint.json'), JSON.stringify(shard2));
    const refused = await optimizeReport(join(tmp, 'a', 'footprint.json'), join(tmp, 'b', 'footprint.json'));
    expect(refused.status).to.equal(2);
    expect(refused.stderr).to.match(/^optimize: error: The inputs are in 2 folders .*: say where to write the report with -o <dir>/);

    const out = join(tmp, 'merged');
    const r = await optimizeReport(join(tmp, 'a', 'footprint.json'), join(tmp, 'b'), '-o', out, '--json', '--html', join(tmp, 'page.html'));
    expect(r.status, r.stderr).to.equal(0);
    const printed = JSON.parse(r.stdout) as { variants: { name: string; model: string }[] };
    expect(printed).to.deep.equal(await readReport(join(out, 'report.json')));
    expect(printed.variants.map((v) => [v.name, v.model])).to.deep.equal([
      ['float', '../a/float.onnx'],
      ['int8', '../a/int8.onnx'],
      ['pruned', '../b/pruned.onnx'],
      ['pruned-int8', '../a/pruned-int8.onnx'],
    ]);
    expect(existsSync(join(tmp, 'page.html'))).to.equal(true);
    expect(existsSync(join(out, 'report.html'))).to.equal(false);
  });

  it('re-renders a report.json in place', async () => {
    const report = buildReport({ variants: fourVariants(), machine: MACHINE, reference: 'float', createdAt: '2025-01-02T03:04:05.000Z', version: '0.1.0' });
    const paths = await writeReport(tmp, report);
    const before = await readFile(paths.html, 'utf8');
    await rm(paths.html);
    const r = await optimizeReport(relative(process.cwd(), paths.json));
    expect(r.status, r.stderr).to.equal(0);
    expect(await readFile(paths.html, 'utf8')).to.equal(before);
  });

  it('exits 2 naming a missing input, an invalid report, and shards of one name with two models', async () => {
    const missing = await optimizeReport(join(tmp, 'nope.json'));
    expect(missing.status).to.equal(2);
    expect(missing.stderr).to.match(/^optimize: error: Cannot read .*nope\.json: no such file or folder/);

    const bad = join(tmp, 'report.json');
    const doc = JSON.parse(JSON.stringify(buildReport({ variants: fourVariants(), machine: MACHINE, reference: 'float', version: '0.1.0' }))) as { variants: { latency: { p50Ms: unknown }[] }[] };
    doc.variants[2]!.latency[0]!.p50Ms = '3 ms';
    await writeFile(bad, JSON.stringify(doc));
    const invalid = await optimizeReport(bad);
    expect(invalid.status).to.equal(2);
    expect(invalid.stderr).to.contain(`${bad} is not a valid report: variants[2].latency[0]`);
    expect(existsSync(join(tmp, 'report.md')), 'a failed run writes nothing').to.equal(false);

    await writeFile(join(tmp, 'footprint-1.json'), JSON.stringify(shard1));
    await writeFile(join(tmp, 'footprint-2.json'), JSON.stringify(footprint([float, { ...pruned, name: 'int8' }])));
    const clash = await optimizeReport(tmp);
    expect(clash.status).to.equal(2);
    expect(clash.stderr).to.match(/Variant "int8" is two different models: key key-int8 in .*footprint-1\.json but key-pruned in .*footprint-2\.json/);

    const none = await optimizeReport();
    expect(none.status).to.equal(2);
    expect(none.stderr).to.match(/missing required argument 'inputs'/);
  });

  it('warns on stderr about a missing shard, and still writes the report', async () => {
    await writeFile(join(tmp, 'footprint.json'), JSON.stringify(shard2));
    const r = await optimizeReport(tmp);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/^optimize: warning: shard 1\/2 missing/);
    expect(existsSync(join(tmp, 'report.json'))).to.equal(true);
  });
});
