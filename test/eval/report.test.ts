import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EvaluationError, LoadError } from '../../src/errors.js';
import { buildReport, collectRunFiles, frontiersOf, mergeFootprints, readFootprint, readReport, rebaseModelPaths, renderHtml, renderMarkdown, writeReport } from '../../src/eval/report.js';
import { reportSchema, type LatencyRow, type Report } from '../../src/eval/schema.js';
import { MACHINE, footprint, fourVariants, variant } from './report-fixtures.js';

const CREATED = '2025-01-02T03:04:05.000Z';
const build = (variants = fourVariants(), extra: Partial<Parameters<typeof buildReport>[0]> = {}) =>
  buildReport({ variants, machine: MACHINE, reference: 'float', createdAt: CREATED, version: '0.1.0', ...extra });

/** The data rows of the first Markdown table (header and alignment rows left out). */
function tableRows(md: string): string[][] {
  const lines = md.split('\n').filter((l) => l.startsWith('| '));
  return lines.slice(2).map((l) => l.slice(2, -2).split(' | '));
}

async function expectLoadError(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(LoadError);
    for (const re of patterns) expect((e as Error).message).to.match(re);
    return;
  }
  expect.fail('expected a LoadError');
}

describe('eval/report', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-report-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('buildReport', () => {
    it('makes a report that validates, with the frontier of the first provider and batch', () => {
      const report = build();
      expect(reportSchema.safeParse(report).success).to.equal(true);
      expect(report.schema).to.equal('onnxpress.report/1');
      expect(report.variants.map((v) => v.accuracy!.top1)).to.deep.equal([0.9, 0.88, 0.85, 0.8]);
      // batch 1 latencies 4, 2, 3, 1.5 ms: pruned (0.85, 3 ms) is beaten by int8 (0.88, 2 ms)
      expect(report.frontier).to.deep.equal(['pruned-int8', 'int8', 'float']);
    });

    it('has one frontier per provider and batch; the first is the reference’s first latency row', () => {
      const vs = fourVariants({ batches: [1, 32] });
      // at batch 32 pruned is faster than int8 here, so it joins the frontier there only
      vs[2]!.latency[1] = { ...(vs[2]!.latency[1] as Extract<LatencyRow, { available: true }>), p50Ms: 25 };
      const fs = frontiersOf({ variants: vs, reference: 'float' });
      expect(fs.map((f) => [f.group.label, f.names])).to.deep.equal([
        ['cpu · batch 1', ['pruned-int8', 'int8', 'float']],
        ['cpu · batch 32', ['pruned-int8', 'pruned', 'int8', 'float']],
      ]);
      expect(build(vs).frontier).to.deep.equal(['pruned-int8', 'int8', 'float']);
    });

    it('leaves failed variants and unavailable providers off the frontier', () => {
      const vs = fourVariants({ eps: ['cpu', 'webgpu'] });
      vs[3] = { ...vs[3]!, error: 'quantize failed: unsupported op' };
      const fs = frontiersOf({ variants: vs, reference: 'float' });
      expect(fs.map((f) => [f.group.ep, f.names])).to.deep.equal([
        ['cpu', ['int8', 'float']],
        ['webgpu', []],
      ]);
    });

    it('uses agreement with the reference when there are no labels (the reference agrees with itself)', () => {
      const vs = fourVariants().map((v) => {
        const { accuracy: _drop, ...rest } = v;
        return v.name === 'float' ? rest : { ...rest, agreement: { samples: 100, top1Agreement: v.accuracy!.top1 + 0.05, cosine: 0.99, sqnrDb: 30 } };
      });
      expect(build(vs).frontier).to.deep.equal(['pruned-int8', 'int8', 'float']);
      expect(renderMarkdown(build(vs))).to.match(/Top-1 agreement/);
    });

    it('refuses duplicate names and non-numbers, naming them', () => {
      expect(() => build([variant('a', { bytes: 1 }), variant('a', { bytes: 2 })])).to.throw(EvaluationError, /Two variants are named "a"/);
      const bad = fourVariants();
      (bad[1]!.latency[0] as { p50Ms: number }).p50Ms = NaN;
      expect(() => build(bad)).to.throw(EvaluationError, /variants\[1\]\.latency\[0\]\.p50Ms/);
    });

    it('is deterministic: the same input renders byte-identical files', () => {
      expect(renderHtml(build())).to.equal(renderHtml(build()));
      expect(renderMarkdown(build())).to.equal(renderMarkdown(build()));
    });
  });

  describe('renderMarkdown', () => {
    it('has one row per variant and provider/batch, with ratios to the reference', () => {
      const report = build(fourVariants({ batches: [1, 32], eps: ['cpu', 'webgpu'] }));
      const rows = tableRows(renderMarkdown(report));
      expect(rows).to.have.length(4 * 2 * 2);
      const at = (name: string, ep: string, batch: string) => rows.find((r) => r[0] === name && r[1] === ep && r[2] === batch)!;
      expect(at('float', 'cpu', '1')).to.deep.equal(['float', 'cpu', '1', '90.00% (ref)', '4.00 ms (ref)', '1.5 MiB (ref)', '1.4 MiB (ref)', '100.0k', '0.1%', '★']);
      const int8 = at('int8', 'cpu', '1');
      expect(int8[3]).to.equal('88.00% (−2.00 pp)');
      expect(int8[4]).to.equal('2.00 ms (0.50×)'); // 2 ms / 4 ms
      expect(int8[5]).to.equal('410.2 KiB (0.26×)'); // 420 000 / 1 600 000 = 0.2625
      expect(int8[9]).to.equal('★');
      expect(at('pruned', 'cpu', '1')[9]).to.equal(''); // dominated by int8
      expect(at('pruned', 'cpu', '1')[8]).to.equal('50.0%');
      expect(at('int8', 'cpu', '32')[4]).to.equal('30.0 ms (0.50×)'); // ratio to float at batch 32, not batch 1
      expect(at('int8', 'webgpu', '1')[4]).to.equal('unavailable: webgpu: no adapter found');
    });

    it('lists the frontier per provider and batch, failures and the machine', () => {
      const vs = fourVariants();
      vs[2] = { ...vs[2]!, error: 'prune failed' };
      const md = renderMarkdown(build(vs));
      expect(md).to.match(/- cpu · batch 1: pruned-int8, int8, float/);
      expect(md).to.match(/Failed variants:\n- \*\*pruned\*\*: prune failed/);
      expect(md).to.match(/Machine: Test CPU 9000 · 8 cores · x64 \(avx2, fma, avx512\\_vnni\) · linux 6\.1\.0 · Node v20\.19\.0 · onnxruntime 1\.30\.0/);
    });

    it('escapes names that would break the table or inject HTML', () => {
      const vs = [...fourVariants(), variant('<script>alert(1)</script>|x', { top1: 0.5, p50: [9], bytes: 10 })];
      const md = renderMarkdown(build(vs));
      expect(md).not.to.contain('<script>');
      expect(md).to.contain('&lt;script&gt;alert(1)&lt;/script&gt;\\|x');
      expect(tableRows(md)).to.have.length(5);
      for (const r of tableRows(md)) expect(r).to.have.length(10);
    });
  });

  describe('renderHtml', () => {
    it('escapes a hostile variant name everywhere', () => {
      const evil = '<script>alert("x")</script>';
      const html = renderHtml(build([...fourVariants(), variant(evil, { top1: 0.5, p50: [9], bytes: 10, parent: evil })]));
      expect(html).not.to.contain('<script');
      expect(html).to.contain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
      expect(html).to.contain(`data-variant="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"`);
    });

    it('draws one SVG point per variant and available provider, and a frontier line per provider', () => {
      const html = renderHtml(build(fourVariants({ eps: ['cpu', 'cuda', 'webgpu'] })));
      const points = [...html.matchAll(/<g class="point" data-variant="([^"]*)" data-ep="([^"]*)" data-batch="(\d+)"/g)].map((m) => `${m[1]}@${m[2]}/${m[3]}`);
      expect(points.sort()).to.deep.equal(['float', 'int8', 'pruned', 'pruned-int8'].flatMap((n) => [`${n}@cpu/1`, `${n}@cuda/1`]).sort());
      expect(html.match(/<polyline /g)).to.have.length(2);
      expect(html).to.match(/Not plotted: webgpu: unavailable \(webgpu: no adapter found\)\./);
      // self-contained: nothing fetched
      expect(html).not.to.match(/<script|<link|src=|url\(|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    });

    it('has a chart per batch size, per-class metrics and confusion matrices in <details>, and the machine', () => {
      const html = renderHtml(build(fourVariants({ batches: [1, 32] })));
      expect(html.match(/<svg class="chart"/g)).to.have.length(2);
      expect(html.match(/data-variant=/g)).to.have.length(8);
      expect(html.match(/<details>/g)).to.have.length(4);
      expect(html).to.match(/<summary>int8: top-1 88\.00%/);
      expect(html.match(/<table class="cm">/g)).to.have.length(4);
      expect(html).to.contain('<dd>Test CPU 9000</dd>');
    });

    it('plots a single variant at 100% without ticks above 100%', () => {
      const html = renderHtml(build([variant('float', { top1: 1, p50: [0.05], bytes: 1000 })]));
      expect(html.match(/data-variant=/g)).to.have.length(1);
      const yTicks = [...html.matchAll(/text-anchor="end">([\d.]+)<\/text>/g)].map((m) => Number(m[1]));
      expect(yTicks.length).to.be.greaterThan(2);
      expect(Math.max(...yTicks)).to.equal(100);
    });

    it('says there is nothing to plot when no accuracy was measured', () => {
      const vs = fourVariants().map(({ accuracy: _a, ...v }) => v);
      const html = renderHtml(build(vs));
      expect(html).not.to.contain('data-variant=');
      expect(html).to.match(/No accuracy was measured/);
      expect(build(vs).frontier).to.deep.equal([]);
    });
  });

  describe('readReport / readFootprint', () => {
    let good: Report;
    before(() => {
      good = build();
    });

    it('reads back what writeReport wrote, and writes all three files', async () => {
      const dir = join(tmp, 'write');
      const paths = await writeReport(dir, good);
      expect(paths.json).to.equal(join(dir, 'report.json'));
      expect((await readdir(dir)).sort()).to.deep.equal(['report.html', 'report.json', 'report.md']);
      expect(await readReport(paths.json)).to.deep.equal(good);
      expect(await readFile(paths.md, 'utf8')).to.equal(renderMarkdown(good));
      const custom = await writeReport(dir, good, { html: join(tmp, 'elsewhere', 'index.html') });
      expect(await readFile(custom.html, 'utf8')).to.equal(renderHtml(good));
    });

    it('names the file and the bad field', async () => {
      const path = join(tmp, 'bad-field.json');
      const doc = JSON.parse(JSON.stringify(good)) as { variants: { size: { bytes: unknown } }[] };
      doc.variants[1]!.size.bytes = 'big';
      await writeFile(path, JSON.stringify(doc));
      await expectLoadError(readReport(path), new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a valid report`), /variants\[1\]\.size\.bytes: .*expected number/);
    });

    it('refuses duplicate variant names, naming both entries', async () => {
      const path = join(tmp, 'dup.json');
      const doc = JSON.parse(JSON.stringify(good)) as { variants: { name: string }[] };
      doc.variants[3]!.name = 'int8';
      await writeFile(path, JSON.stringify(doc));
      await expectLoadError(readReport(path), /dup\.json is not a valid report: variants\[3\]\.name: "int8" is the name of variants\[1\] too/);
    });

    it('names a missing file, bad JSON, and a footprint given as a report', async () => {
      await expectLoadError(readReport(join(tmp, 'nope.json')), /nope\.json: no such file/);
      const notJson = join(tmp, 'not.json');
      await writeFile(notJson, '{"schema": ');
      await expectLoadError(readReport(notJson), /not\.json is not valid JSON/);
      const fp = join(tmp, 'fp.json');
      await writeFile(fp, JSON.stringify(footprint(fourVariants())));
      await expectLoadError(readReport(fp), /fp\.json is a footprint/);
      expect((await readFootprint(fp)).variants).to.have.length(4);
      const other = join(tmp, 'other.json');
      await writeFile(other, JSON.stringify({ schema: 'something/2' }));
      await expectLoadError(readReport(other), /expected "schema": "onnxpress\.report\/1" but found "something\/2"/);
    });
  });

  describe('mergeFootprints', () => {
    // the unsharded run, and the same run in two shards (round-robin over the config's variants)
    const config = { variants: [{ name: 'int8' }, { name: 'pruned' }, { name: 'pruned-int8' }] };
    const all = fourVariants();
    const [float, int8, pruned, prunedInt8] = all as [typeof all[0], typeof all[0], typeof all[0], typeof all[0]];
    const shard1 = footprint([float, int8, prunedInt8], { shard: { index: 1, count: 2 }, config, createdAt: '2025-01-02T03:04:05.000Z' });
    const shard2 = footprint([float, pruned], { shard: { index: 2, count: 2 }, config, createdAt: '2025-01-02T03:09:00.000Z' });

    it('two shards give the unsharded report’s variants, in config order, whatever order they come in', () => {
      const warnings: string[] = [];
      const merged = mergeFootprints([shard2, shard1], { onWarning: (m) => warnings.push(m) });
      const whole = build(all, { createdAt: '2025-01-02T03:09:00.000Z' });
      expect(merged.variants).to.deep.equal(whole.variants);
      expect(merged).to.deep.equal(whole);
      expect(warnings).to.deep.equal([]);
    });

    it('warns about a missing shard', () => {
      const warnings: string[] = [];
      const merged = mergeFootprints([shard1], { onWarning: (m) => warnings.push(m) });
      expect(merged.variants.map((v) => v.name)).to.deep.equal(['float', 'int8', 'pruned-int8']);
      expect(warnings).to.deep.equal(['shard 2/2 missing: the report holds only the variants of the others']);
    });

    it('refuses one name for two different models, naming both inputs', () => {
      const other = footprint([float, { ...pruned, name: 'int8', key: 'different' }]);
      expect(() => mergeFootprints([shard1, other], { sources: ['a/footprint.json', 'b/footprint.json'] })).to.throw(
        LoadError,
        'Variant "int8" is two different models: key key-int8 in a/footprint.json but different in b/footprint.json (rename one, or merge footprints of one run only)',
      );
    });

    it('refuses inputs of different runs (different references), and an empty list', () => {
      const other = { ...footprint([float]), reference: 'fp32' };
      expect(() => mergeFootprints([shard1, other], { sources: ['a.json', 'b.json'] })).to.throw(LoadError, /b\.json and a\.json are not from the same run: their reference variants are "fp32" and "float"/);
      expect(() => mergeFootprints([])).to.throw(LoadError, /Nothing to merge/);
    });

    it('keeps the first machine, and notes variants measured on another', () => {
      const warnings: string[] = [];
      const elsewhere = footprint([float, pruned], { shard: { index: 2, count: 2 }, config, machine: { ...MACHINE, cpu: 'Other CPU', cores: 2 } });
      const merged = mergeFootprints([shard1, elsewhere], { sources: ['s1.json', 's2.json'], onWarning: (m) => warnings.push(m) });
      expect(merged.machine).to.deep.equal(MACHINE);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/^s2\.json was measured on another machine \(Other CPU, 2 cores\)/);
      expect(merged.variants.find((v) => v.name === 'pruned')!.notes).to.deep.equal(["measured on Other CPU (2 cores, onnxruntime 1.30.0), not on the report's machine"]);
      expect(merged.variants.find((v) => v.name === 'float')!.notes).to.equal(undefined); // the first shard's copy
    });

    it('finds the footprints of run folders, and rebases model paths', async () => {
      const d1 = join(tmp, 'run-1'), d2 = join(tmp, 'run-2');
      await writeReport(d1, build()); // a report.json only: used when there is no footprint
      await writeFile(join(d1, 'footprint-1-of-2.json'), JSON.stringify(shard1));
      await mkdir(d2);
      await writeFile(join(d2, 'footprint.json'), JSON.stringify(shard2));
      const files = await collectRunFiles([d1, d2]);
      expect(files.map((f) => [f.path, f.kind])).to.deep.equal([
        [join(d1, 'footprint-1-of-2.json'), 'footprint'],
        [join(d2, 'footprint.json'), 'footprint'],
      ]);
      expect(rebaseModelPaths(shard2.variants, d2, tmp).map((v) => v.model)).to.deep.equal(['run-2/float.onnx', 'run-2/pruned.onnx']);
      const onlyReport = join(tmp, 'run-3');
      await writeReport(onlyReport, build());
      expect((await collectRunFiles([onlyReport])).map((f) => f.kind)).to.deep.equal(['report']);
      await expectLoadError(collectRunFiles([join(tmp, 'missing')]), /missing: no such file or folder/);
      await expectLoadError(collectRunFiles([tmp]), /holds no footprint\*\.json and no report\.json/);
    });
  });
});
