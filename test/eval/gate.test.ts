import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadError, OptionsError } from '../../src/errors.js';
import { gate, gateJunit, gateMarkdown, measureInterleaved, parsePercent, formatGateResult, type GateResult } from '../../src/eval/gate.js';
import { REPORT_SCHEMA_ID, reportSchema, type Report } from '../../src/eval/schema.js';
import { loadModel, saveModel } from '../../src/onnx/io.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { mulberry32 } from '../../src/util/random.js';
import { PYTHON, hasPython } from '../helpers/python.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CNN = join(ROOT, 'fixtures/fmnist-cnn.onnx');
const CNN_DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');
/** PyTorch's top-1 of the CNN on the 256-image slice (fixtures/reference.json): 235 / 256. */
const CNN_TOP1 = 235 / 256;

/** A fast latency setting for tests: short blocks, few pairs; verdicts, never times, are asserted. */
const QUICK = { blockMs: 4, minPairs: 10, resamples: 500 };

/** A simulated clock and two workloads that advance it: deterministic timing for the interleaving logic. */
function simulated(baseMs: number, candMs: number, noise: number, seed: number) {
  let t = 0;
  const rand = mulberry32(seed);
  const log: ('b' | 'c')[] = [];
  const step = (ms: number) => (t += ms * Math.exp(noise * (rand() * 2 - 1)));
  return {
    now: () => t,
    log,
    baseline: async () => {
      log.push('b');
      step(baseMs);
    },
    candidate: async () => {
      log.push('c');
      step(candMs);
    },
  };
}

function junitChecks(xml: string): { tests: number; failures: number; skipped: number; names: string[] } {
  const script = `import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
suite = root.find('testsuite')
cases = suite.findall('testcase')
print(json.dumps({'tests': int(suite.get('tests')), 'failures': len([c for c in cases if c.find('failure') is not None]),
  'skipped': len([c for c in cases if c.find('skipped') is not None]), 'names': [c.get('name') for c in cases],
  'props': {p.get('name'): p.get('value') for p in suite.find('properties')}}))`;
  const r = spawnSync(PYTHON, ['-c', script], { input: xml, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`not well-formed XML: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('eval/gate', function () {
  this.timeout(60_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-gate-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('measureInterleaved (simulated clock)', () => {
    it('alternates which side goes first, pair by pair, with equal blocks', async () => {
      const s = simulated(1, 1.3, 0.05, 1);
      const r = await measureInterleaved(s.baseline, s.candidate, { budget: 0.05, now: s.now, blockMs: 10, minPairs: 10, warmupRuns: 2, timeLimitSeconds: 1e6 });
      expect(r.candidateFirst.slice(0, 6)).to.deep.equal([false, true, false, true, false, true]);
      // after warm-up (2 × b c) and calibration (3 × b), blocks of runsPerBlock runs, the first side of each pair as recorded
      const blocks = s.log.slice(4 + 3);
      const n = r.runsPerBlock;
      expect(n).to.be.within(8, 12);
      for (let p = 0; p < r.ratios.length; p++) {
        const pair = blocks.slice(2 * p * n, 2 * (p + 1) * n);
        const first = r.candidateFirst[p] ? 'c' : 'b';
        const second = r.candidateFirst[p] ? 'b' : 'c';
        expect(pair.slice(0, n).every((x) => x === first) && pair.slice(n).every((x) => x === second), `pair ${p}`).to.equal(true);
      }
      expect(r.decision.verdict).to.equal('fail');
      expect(r.decision.median).to.be.closeTo(1.3, 0.05);
    });

    it('passes an equal pair and fails a slower one', async () => {
      const same = simulated(2, 2, 0.2, 2);
      expect((await measureInterleaved(same.baseline, same.candidate, { budget: 0.05, now: same.now, timeLimitSeconds: 1e6 })).decision.verdict).to.equal('pass');
      const slow = simulated(2, 2.4, 0.2, 3);
      expect((await measureInterleaved(slow.baseline, slow.candidate, { budget: 0.05, now: slow.now, timeLimitSeconds: 1e6 })).decision.verdict).to.equal('fail');
    });

    it('gives up undecided at the time limit when the candidate sits on the budget', async () => {
      const s = simulated(1, 1.05, 0.1, 4);
      const r = await measureInterleaved(s.baseline, s.candidate, { budget: 0.05, now: s.now, blockMs: 10, timeLimitSeconds: 5 });
      expect(r.decision.verdict).to.equal('undecided');
      expect(r.seconds).to.be.at.least(5);
      expect(r.ratios.length).to.be.above(100);
    });
  });

  describe('gate', () => {
    it('passes a model against itself, or is inconclusive, but never fails', async () => {
      const r = await gate({ baseline: CNN, candidate: CNN, timeLimitSeconds: 3, ...QUICK });
      expect(r.verdict).to.be.oneOf(['pass', 'inconclusive']);
      expect(r.checks.map((c) => c.name)).to.deep.equal(['size', 'latency']);
      const size = r.checks[0]!;
      expect(size).to.include({ verdict: 'pass', baseline: 427107, candidate: 427107, change: 0, baselineSource: 'model' });
      const lat = r.checks[1]!;
      expect(lat.verdict).not.to.equal('fail');
      expect(lat.latency!.clock).to.equal('cpu');
      expect(lat.latency!.threads).to.equal(1);
      expect(lat.interval!.low).to.be.at.most(lat.change);
      expect(lat.interval!.high).to.be.at.least(lat.change);
      expect(r.machine?.cores).to.be.a('number');
    });

    it('fails the size check of a candidate twice as big', async () => {
      const model = await loadModel(CNN);
      // the same function, plus an unused initializer as large as the file: more bytes to ship
      model.graph.addInitializer('padding', Tensor.from('uint8', [427107], new Uint8Array(427107).fill(7)));
      const big = join(tmp, 'big.onnx');
      await saveModel(model, big);
      const r = await gate({ baseline: CNN, candidate: big, latency: false });
      expect(r.verdict).to.equal('fail');
      const size = r.checks[0]!;
      expect(size.verdict).to.equal('fail');
      expect(size.candidate).to.equal((await stat(big)).size);
      expect(size.change).to.be.closeTo(1, 0.01);
      // the same candidate with a budget that allows it
      expect((await gate({ baseline: CNN, candidate: big, latency: false, maxSizeIncrease: 1.5 })).verdict).to.equal('pass');
    });

    it('fails the accuracy check of a candidate with perturbed weights', async () => {
      const model = await loadModel(CNN);
      const rand = mulberry32(3);
      for (const v of [...model.graph.initializers.values()]) {
        const t = v.initializer!;
        if (t.dtype !== 'float32' || t.dims.length !== 4) continue; // conv weights only
        const w = Float32Array.from(t.data() as Float32Array);
        for (let i = 0; i < w.length; i++) w[i] = w[i]! + (rand() * 2 - 1) * 0.25;
        model.graph.addInitializer(`${v.name}_noisy`, Tensor.from('float32', t.dims, w));
        v.replaceAllUsesWith(model.graph.value(`${v.name}_noisy`));
      }
      const noisy = join(tmp, 'noisy.onnx');
      await saveModel(model, noisy);
      const r = await gate({ baseline: CNN, candidate: noisy, data: CNN_DATA, latency: false });
      const acc = r.checks.find((c) => c.name === 'accuracy')!;
      // the baseline's top-1 is what PyTorch counted for this slice
      expect(acc.baseline).to.equal(CNN_TOP1);
      expect(acc.samples).to.equal(256);
      expect(acc.candidate).to.be.below(CNN_TOP1 - 0.005);
      expect(acc.change).to.be.closeTo((acc.candidate - CNN_TOP1) * 100, 1e-9);
      expect(acc.verdict).to.equal('fail');
      expect(r.verdict).to.equal('fail');
      // the same model against itself passes
      const same = await gate({ baseline: CNN, candidate: CNN, data: CNN_DATA, latency: false });
      expect(same.checks.find((c) => c.name === 'accuracy')).to.include({ verdict: 'pass', change: 0, candidate: CNN_TOP1 });
    });

    describe('with a report.json baseline', () => {
      let dir: string;
      const report = (over: { top1?: number; bytes?: number; samples?: number; model?: string } = {}): Report => {
        const size = { bytes: over.bytes ?? 427107, gzipBytes: 390000, parameters: 106058, zeroShare: 0, bytesByDtype: { float32: 424232 }, macs: 1117056, macsByOp: { Conv: 1016064 } };
        const accuracy = {
          samples: over.samples ?? 256,
          top1: over.top1 ?? CNN_TOP1,
          top5: 1,
          macro: { precision: 0.9, recall: 0.9, f1: 0.9 },
          perClass: [],
          confusion: [],
        };
        const variant = { name: 'float', passes: [], key: 'k0', model: over.model ?? 'float.onnx', size, accuracy, latency: [], timings: { passSeconds: 0, evaluateSeconds: 1 } };
        const machine = { cpu: 'elsewhere', cores: 64, arch: 'x64', flags: [], os: 'linux', node: 'v20', onnxruntime: '1.30.0' };
        return reportSchema.parse({ schema: REPORT_SCHEMA_ID, tool: { name: 'onnxpress', version: '0.1.0' }, createdAt: '2024-01-01T00:00:00Z', machine, reference: 'float', variants: [variant], frontier: ['float'] });
      };
      const writeReport = async (name: string, r: unknown) => {
        const p = join(dir, name);
        await writeFile(p, JSON.stringify(r));
        return p;
      };
      before(async () => {
        dir = await mkdtemp(join(tmp, 'baseline-'));
        await copyFile(CNN, join(dir, 'float.onnx'));
      });

      it('takes size and top-1 from the report, and re-times the model it names', async () => {
        // numbers that differ from the model's, so that using them shows
        const p = await writeReport('report.json', report({ top1: 0.99, bytes: 200000 }));
        const r = await gate({ baseline: p, candidate: CNN, data: CNN_DATA, timeLimitSeconds: 2, ...QUICK });
        expect(r.baseline).to.deep.include({ kind: 'report', variant: 'float', model: join(dir, 'float.onnx') });
        const [size, acc, lat] = r.checks;
        expect(size).to.include({ name: 'size', baseline: 200000, baselineSource: 'report', verdict: 'fail' });
        expect(acc).to.include({ name: 'accuracy', baseline: 0.99, candidate: CNN_TOP1, baselineSource: 'report', verdict: 'fail' });
        expect(lat).to.include({ name: 'latency', baselineSource: 'model' });
        expect(lat!.verdict).not.to.equal('fail');
      });

      it('evaluates the baseline model when the report measured accuracy on other data', async () => {
        const p = await writeReport('other-data.json', report({ top1: 0.5, samples: 10000 }));
        const r = await gate({ baseline: p, candidate: CNN, data: CNN_DATA, latency: false });
        expect(r.checks[1]).to.include({ name: 'accuracy', baseline: CNN_TOP1, baselineSource: 'model', verdict: 'pass' });
      });

      it('refuses latency when the model the report names is missing, and works without latency', async () => {
        const p = await writeReport('no-model.json', report({ model: 'gone.onnx' }));
        let err: unknown;
        try {
          await gate({ baseline: p, candidate: CNN });
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(OptionsError);
        expect((err as Error).message).to.match(/variant "float" names model gone\.onnx, which is not at .*gone\.onnx; latency is measured on the baseline model/);
        const r = await gate({ baseline: p, candidate: CNN, data: CNN_DATA, latency: false });
        expect(r.verdict).to.equal('pass');
      });

      it('refuses a malformed report, naming the field', async () => {
        const bad = report() as unknown as { variants: { size: { bytes: unknown } }[] };
        bad.variants[0]!.size.bytes = 'big';
        const p = await writeReport('bad.json', bad);
        let err: unknown;
        try {
          await gate({ baseline: p, candidate: CNN, latency: false });
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(LoadError);
        expect((err as Error).message).to.match(/bad\.json: field variants\.0\.size\.bytes/);
      });

      it('names the variants when --baseline-variant is unknown', async () => {
        const p = await writeReport('report2.json', report());
        let err: unknown;
        try {
          await gate({ baseline: p, candidate: CNN, latency: false, baselineVariant: 'int8' });
        } catch (e) {
          err = e;
        }
        expect((err as Error).message).to.match(/no variant "int8" \(one of: "float"\)/);
      });
    });

    it('refuses missing files and bad options before measuring', async () => {
      const reject = async (p: Promise<unknown>, type: new (...a: never[]) => Error, re: RegExp) => {
        let err: unknown;
        try {
          await p;
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(type);
        expect((err as Error).message).to.match(re);
      };
      await reject(gate({ baseline: join(tmp, 'nope.onnx'), candidate: CNN }), LoadError, /baseline .*nope\.onnx: no such file/);
      await reject(gate({ baseline: CNN, candidate: join(tmp, 'nope.onnx') }), LoadError, /nope\.onnx: no such file/);
      await reject(gate({ baseline: CNN, candidate: CNN, batch: 0 }), OptionsError, /gate option batch/);
      await reject(gate({ baseline: CNN, candidate: CNN, maxLatencyIncrease: -2 }), OptionsError, /gate option maxLatencyIncrease/);
    });
  });

  describe('outputs', () => {
    const result: GateResult = {
      verdict: 'fail',
      candidate: 'models/a&b<c>.onnx',
      baseline: { path: 'base|line.onnx', kind: 'model' },
      seconds: 12.5,
      checks: [
        { name: 'size', verdict: 'fail', baseline: 1000, candidate: 2000, unit: 'bytes', change: 1, budget: 0.01, baselineSource: 'model', summary: 'too big', seconds: 0 },
        {
          name: 'latency',
          verdict: 'inconclusive',
          baseline: 1,
          candidate: 1.05,
          unit: 'ms',
          change: 0.05,
          budget: 0.05,
          interval: { low: 0.01, high: 0.09, confidence: 0.95 },
          baselineSource: 'model',
          summary: 'straddles "5%" <noisy>',
          seconds: 10,
          latency: { ep: 'cpu', batch: 1, threads: 1, clock: 'cpu', pairs: 300, runsPerBlock: 50, ratio: 1.05, ratioLow: 1.01, ratioHigh: 1.09, confidence: 0.95, minPairs: 20, seconds: 10, timeLimitSeconds: 10 },
        },
        { name: 'accuracy', verdict: 'pass', baseline: 0.9, candidate: 0.899, unit: 'top1', change: -0.1, budget: 0.5, baselineSource: 'report', summary: 'fine', seconds: 1, samples: 256 },
      ],
    };

    it('markdown: a table with one row per check, escaped pipes', () => {
      const md = gateMarkdown(result);
      const lines = md.split('\n');
      expect(lines[0]).to.equal('### onnxpress gate: ❌ fail');
      expect(md).to.include('| Check | Baseline | Candidate | Change | Budget | Verdict |');
      const rows = lines.filter((l) => /^\| (size|latency|accuracy)/.test(l));
      expect(rows).to.have.length(3);
      expect(rows[0]).to.equal('| size | 1000 bytes | 2.0 KiB | +100.0% | ≤ +1% | ❌ fail |');
      expect(rows[1]).to.include('+5.0% (95% CI +1.0% … +9.0%)').and.include('⚠️ inconclusive');
      expect(rows[2]).to.include('−0.10 pp').and.include('drop ≤ 0.5 pp');
      // every row has the same number of cells as the header: the pipe in the baseline's name is escaped
      for (const r of rows) expect(r.replace(/\\\|/g, '').split('|').length).to.equal(8);
      expect(md).to.include('base\\|line.onnx');
    });

    it('text: the same table for a terminal', () => {
      const text = formatGateResult(result);
      expect(text).to.match(/^check\s+baseline\s+candidate\s+change\s+budget\s+verdict$/m);
      expect(text).to.match(/Verdict: fail \(size\)/);
    });

    it('junit: well-formed XML, a failure per failed check, skipped for inconclusive', function () {
      if (!hasPython('xml.etree.ElementTree')) this.skip();
      const xml = gateJunit(result);
      const parsed = junitChecks(xml) as ReturnType<typeof junitChecks> & { props: Record<string, string> };
      expect(parsed).to.deep.include({ tests: 3, failures: 1, skipped: 1, names: ['size', 'latency', 'accuracy'] });
      // the characters XML reserves come back intact
      expect(parsed.props.candidate).to.equal('models/a&b<c>.onnx');
      expect(xml).to.include('a&amp;b&lt;c&gt;');
    });
  });

  it('parsePercent reads "5%", "5" and "0.5%"', () => {
    expect(parsePercent('5%', 'x')).to.equal(0.05);
    expect(parsePercent('5', 'x')).to.equal(0.05);
    expect(parsePercent(' 0.5 % ', 'x')).to.equal(0.005);
    expect(parsePercent('-10%', 'x')).to.be.closeTo(-0.1, 1e-12);
    expect(() => parsePercent('five', 'x')).to.throw(OptionsError, /Expected a percentage .* for x but received "five"/);
    expect(() => parsePercent('-100%', 'x')).to.throw(OptionsError);
  });
});
