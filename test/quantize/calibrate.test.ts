/**
 * Streaming calibration (src/quantize/calibrate/), checked against direct computations, numpy over all the values
 * (Debian's /usr/bin/python3; only those comparisons are skipped without it) and onnxruntime, not against itself:
 * - minmax: the true min and max; moving average: the recurrence computed directly from the batches;
 * - the streaming histogram: numpy.histogram of all the values on the same final grid, after the range grew;
 * - percentile: numpy.percentile of all the values, within one bin width, with data that widens across batches;
 * - entropy and mse: properties (inside [min, max], clipping outliers, lower measured 8-bit error than minmax on
 *   heavy-tailed data) and straightforward numpy re-implementations of the same searches over all the values;
 * - the fixture CNN on Fashion-MNIST t10k: observers keep the same bytes for 1000 and 10000 samples, the process
 *   does not grow with the samples, and every Conv/Gemm range holds what onnxruntime computes;
 * - errors: unknown tensors, NaN/Inf, empty data, bad options.
 */
import { expect } from 'chai';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EvaluationError, OptionsError } from '../../src/errors.js';
import { loadDataset, type Dataset, type IdxDescriptor } from '../../src/eval/datasets.js';
import { loadModel } from '../../src/onnx/io.js';
import { Model, attr } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import {
  EntropyObserver,
  Histogram,
  MinMaxObserver,
  MseObserver,
  PercentileObserver,
  TailObserver,
  calibrate,
  makeObserver,
  measureCalibrationMemory,
  quantizationError,
  sqnr,
  type Observer,
} from '../../src/quantize/calibrate/index.js';
import type { Feeds } from '../../src/quantize/types.js';
import { hasPython, runPython } from '../helpers/python.js';
import { conformanceCases } from '../helpers/conformance.js';
import { loadTensor } from '../../src/onnx/tensorfile.js';
import { rejects } from '../helpers/assert.js';
import { mulberry32 } from '../../src/util/random.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/', import.meta.url));
const FASHION = '/usr/share/datasets/fashion-mnist';
const hasFashion = existsSync(`${FASHION}/t10k-images-idx3-ubyte.gz`);

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** The project's seeded generator (mulberry32), so every run sees the same data. */
const rng = mulberry32;

function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function laplace(r: () => number, scale: number): number {
  const u = r() - 0.5;
  return -scale * Math.sign(u) * Math.log(1 - 2 * Math.abs(u));
}

/** Batches that widen: narrow normal values first, then shifted Laplace with outliers on both sides. */
function wideningBatches(seed: number): Float32Array[] {
  const r = rng(seed);
  const out: Float32Array[] = [];
  for (let b = 0; b < 24; b++) {
    const a = new Float32Array(5000);
    for (let i = 0; i < a.length; i++) {
      if (b < 4) a[i] = 0.05 * normal(r);
      else if (b < 10) a[i] = 0.5 + laplace(r, 0.7);
      else a[i] = r() < 0.001 ? (r() < 0.3 ? -40 : 60) * r() : 0.5 + laplace(r, 1.5);
    }
    out.push(a);
  }
  return out;
}

/**
 * Laplace(1) values with one outlier of 30..60 in `every` values, or a ReLU of them (half exact zeros). Outliers
 * are rare: with one in 2000, keeping them costs less squared error than clipping them would.
 */
function heavyTailed(seed: number, n = 400_000, relu = false, every = 200_000): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = i % every === 7 ? (i % (2 * every) === 7 ? -1 : 1) * (30 + 30 * r()) : laplace(r, 1);
    if (relu) v = Math.max(0, v);
    a[i] = v;
  }
  return a;
}

function concat(batches: Float32Array[]): Float32Array {
  const out = new Float32Array(batches.reduce((s, b) => s + b.length, 0));
  let o = 0;
  for (const b of batches) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

function feed(o: Observer, batches: Float32Array[]): void {
  for (const b of batches) o.update(b);
}

function split(a: Float32Array, size: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < a.length; i += size) out.push(a.subarray(i, i + size));
  return out;
}

function b64(a: Float32Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

/** 8-bit asymmetric quantization as ONNX QuantizeLinear/DequantizeLinear do it (uint8, range widened to hold 0). */
function fakeQuantUint8(x: Float32Array, min: number, max: number): Float32Array {
  const lo = Math.min(min, 0), hi = Math.max(max, 0);
  const scale = (hi - lo) / 255;
  const zp = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const q = Math.min(255, Math.max(0, roundHalfEven(x[i]! / scale) + zp));
    out[i] = (q - zp) * scale;
  }
  return out;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v), d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

function mseOf(x: Float32Array, dq: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i]! - dq[i]!) ** 2;
  return s / x.length;
}


/** y = Sqrt(x) with x [n, 3]: NaN for negative inputs. */
function sqrtModel(): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  const x = m.graph.declareValue('x');
  x.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 3] };
  m.graph.inputs.push(x);
  const n = m.graph.addNode({ opType: 'Sqrt', inputs: [x], outputs: ['y'] });
  n.output().type = { kind: 'tensor', elemType: 'float32', shape: ['n', 3] };
  m.graph.outputs.push(n.output());
  return m;
}

/**
 * x [n, 8, 3, 3] → r = Relu(x), c = Clip(x, 0, 6), s = Sqrt(x) → t = Relu(s) → o = Sub(t, 1): r, c and t are
 * known to be ≥ 0; Sqrt makes NaN of negative inputs, which Relu passes on to o.
 */
function signsModel(): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  const g = m.graph;
  const x = g.declareValue('x');
  x.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 8, 3, 3] };
  g.inputs.push(x);
  const zero = g.addInitializer('zero', Tensor.from('float32', [], [0]));
  const six = g.addInitializer('six', Tensor.from('float32', [], [6]));
  const one = g.addInitializer('one', Tensor.from('float32', [], [1]));
  const r = g.addNode({ opType: 'Relu', inputs: [x], outputs: ['r'] }).output();
  const c = g.addNode({ opType: 'Clip', inputs: [x, zero, six], outputs: ['c'] }).output();
  const sq = g.addNode({ opType: 'Sqrt', inputs: [x], outputs: ['s'] }).output();
  const t = g.addNode({ opType: 'Relu', inputs: [sq], outputs: ['t'] }).output();
  const o = g.addNode({ opType: 'Sub', inputs: [t, one], outputs: ['o'] }).output();
  for (const v of [r, c, o]) {
    v.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 8, 3, 3] };
    g.outputs.push(v);
  }
  return m;
}

function rowsFeed(rows: number[][]): Feeds {
  return { x: { dtype: 'float32', dims: [rows.length, rows[0]!.length], data: Float32Array.from(rows.flat()) } };
}

/** The t10k test set with the fixtures' preprocessing (see fixtures/README.md and fmnist-test-256/cnn.json). */
function t10k(layout: 'NCHW' | 'flat'): IdxDescriptor {
  return {
    format: 'idx',
    images: `${FASHION}/t10k-images-idx3-ubyte.gz`,
    labels: `${FASHION}/t10k-labels-idx1-ubyte.gz`,
    input: { layout, scale: 0.00392156862745098, mean: [0.286], std: [0.353] },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// minmax

describe('calibrate: minmax observer', () => {
  it('gives the true min and max over all the batches', () => {
    const batches = wideningBatches(1);
    const o = new MinMaxObserver();
    feed(o, batches);
    const all = concat(batches);
    let mn = Infinity, mx = -Infinity;
    for (const v of all) {
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    expect(o.range()).to.deep.equal({ min: mn, max: mx });
    expect(o.count).to.equal(all.length);
    expect(o.retainedBytes()).to.equal(0);
  });

  it('finds extremes anywhere, of any sign, including -0 and subnormals', () => {
    const o = new MinMaxObserver();
    o.update(new Float32Array([-0, 1e-45, -1e-45]));
    expect(o.range()).to.deep.equal({ min: Math.fround(-1e-45), max: Math.fround(1e-45) });
    const p = new MinMaxObserver();
    p.update(new Float32Array([5, 4, 3, 2, 1]));
    p.update(new Float32Array([-7, -8]));
    expect(p.range()).to.deep.equal({ min: -8, max: 5 });
    const q = new MinMaxObserver();
    q.update(new Float32Array([3.4e38, -3.4e38]));
    expect(q.range()).to.deep.equal({ min: Math.fround(-3.4e38), max: Math.fround(3.4e38) });
  });

  it('skips NaN and ±Infinity and counts them', () => {
    const o = new MinMaxObserver();
    o.update(new Float32Array([1, NaN, -2, Infinity, 3, -Infinity, -NaN]));
    expect(o.range()).to.deep.equal({ min: -2, max: 3 });
    expect(o.nonFinite).to.equal(4);
    expect(o.count).to.equal(3);
    const none = new MinMaxObserver();
    none.update(new Float32Array([NaN]));
    expect(() => none.range()).to.throw(EvaluationError, /no finite values/);
  });

  it('moving average matches the recurrence computed directly from the batch extremes', () => {
    const batches = wideningBatches(2);
    for (const c of [true, 0.1, 0.5] as const) {
      const o = new MinMaxObserver({ movingAverage: c });
      feed(o, batches);
      const k = c === true ? 0.01 : c;
      let mn = 0, mx = 0;
      batches.forEach((b, i) => {
        let bmn = Infinity, bmx = -Infinity;
        for (const v of b) {
          if (v < bmn) bmn = v;
          if (v > bmx) bmx = v;
        }
        if (i === 0) [mn, mx] = [bmn, bmx];
        else [mn, mx] = [mn + k * (bmn - mn), mx + k * (bmx - mx)];
      });
      const r = o.range();
      expect(r.min).to.be.closeTo(mn, 1e-12);
      expect(r.max).to.be.closeTo(mx, 1e-12);
    }
    expect(() => new MinMaxObserver({ movingAverage: 2 })).to.throw(OptionsError, /Expected a number in \(0, 1\] for movingAverage but received 2/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// histogram and percentile

describe('calibrate: streaming histogram and percentile', function () {
  this.timeout(120_000);
  const batches = wideningBatches(3);
  const all = concat(batches);

  it('keeps fixed memory while the range grows, and its counts equal numpy.histogram of all values on its grid', function () {
    const h = new Histogram(2048);
    const bytes = h.retainedBytes();
    const sizes: number[] = [];
    for (const b of batches) {
      expect(h.add(b)).to.equal(0);
      sizes.push(h.retainedBytes());
    }
    expect(h.growths).to.be.greaterThan(2);
    expect(new Set(sizes)).to.deep.equal(new Set([bytes]));
    expect(h.total).to.equal(all.length);
    expect(h.lo).to.be.at.most(h.min);
    expect(h.hi).to.be.at.least(h.max);
    // growing by powers of two keeps the data on a good part of the bins
    expect((h.max - h.min) / (h.hi - h.lo)).to.be.greaterThan(0.25);
    if (!hasPython('numpy')) this.skip();
    const counts = runPython<number[]>(
      `import sys, json, base64, numpy as np
d = json.load(sys.stdin)
x = np.frombuffer(base64.b64decode(d['x']), dtype=np.float32).astype(np.float64)
edges = d['lo'] + np.arange(d['bins'] + 1) * d['width']
idx = np.clip(np.searchsorted(edges, x, side='right') - 1, 0, d['bins'] - 1)
print(json.dumps(np.bincount(idx, minlength=d['bins']).tolist()))`,
      { x: b64(all), lo: h.lo, width: h.width, bins: h.bins },
    );
    let diff = 0;
    counts.forEach((c, i) => (diff += Math.abs(c - h.counts[i]!)));
    // only values within rounding of a bin edge may land on the other side
    expect(diff).to.be.at.most(4);
  });

  it('percentile ranges are within one bin width of numpy.percentile over all values, with data widening across batches', function () {
    if (!hasPython('numpy')) this.skip();
    const ps = [90, 99, 99.9, 99.99, 99.999];
    const ref = runPython<{ lo: number[]; hi: number[]; abs: number[] }>(
      `import sys, json, base64, numpy as np
d = json.load(sys.stdin)
x = np.frombuffer(base64.b64decode(d['x']), dtype=np.float32).astype(np.float64)
ps = np.array(d['ps'])
print(json.dumps({'lo': np.percentile(x, (100 - ps) / 2).tolist(), 'hi': np.percentile(x, 100 - (100 - ps) / 2).tolist(),
                  'abs': np.percentile(np.abs(x), ps).tolist()}))`,
      { x: b64(all), ps },
    );
    ps.forEach((p, i) => {
      const o = new PercentileObserver({ percentile: p });
      feed(o, batches);
      const w = o.histogram.width;
      const r = o.range();
      expect(Math.abs(r.min - ref.lo[i]!), `p=${p} low`).to.be.at.most(w);
      expect(Math.abs(r.max - ref.hi[i]!), `p=${p} high`).to.be.at.most(w);
      const s = new PercentileObserver({ percentile: p, symmetric: true });
      feed(s, batches);
      const rs = s.range();
      expect(Math.abs(rs.max - Math.min(ref.abs[i]!, s.max)), `p=${p} symmetric`).to.be.at.most(s.histogram.width);
      expect(Math.abs(rs.min - Math.max(-ref.abs[i]!, s.min)), `p=${p} symmetric`).to.be.at.most(s.histogram.width);
    });
  });

  it('percentile 100 gives min and max; ranges stay inside [min, max]', () => {
    const o = new PercentileObserver({ percentile: 100 });
    feed(o, batches);
    expect(o.range()).to.deep.equal({ min: o.min, max: o.max });
    const one = new PercentileObserver();
    one.update(new Float32Array([2, 2, 2]));
    expect(one.range()).to.deep.equal({ min: 2, max: 2 });
  });
});

describe('calibrate: exact percentiles from the tails (TailObserver, TopK inside the graph)', function () {
  this.timeout(120_000);
  const batches = wideningBatches(5);
  const all = concat(batches);
  const ps = [90, 99, 99.9, 99.99, 99.999];
  let ref: { lo: number[]; hi: number[] } | undefined;
  before(function () {
    if (!hasPython('numpy')) this.skip();
    ref = runPython<{ lo: number[]; hi: number[] }>(
      `import sys, json, base64, numpy as np
d = json.load(sys.stdin)
x = np.frombuffer(base64.b64decode(d['x']), dtype=np.float32).astype(np.float64)
ps = np.array(d['ps'])
print(json.dumps({'lo': np.percentile(x, (100 - ps) / 2).tolist(), 'hi': np.percentile(x, 100 - (100 - ps) / 2).tolist()}))`,
      { x: b64(all), ps },
    );
  });

  it('equals numpy.percentile over all values (to float32 rounding), fed whole batches or only their tails', () => {
    ps.forEach((p, i) => {
      const whole = new TailObserver({ percentile: p, expected: all.length });
      feed(whole, batches);
      const tails = new TailObserver({ percentile: p, expected: all.length });
      for (const b of batches) {
        // what TopK gives: each batch's k largest (descending) and k smallest (ascending)
        const sorted = Float32Array.from(b).sort();
        const k = Math.min(tails.capacity, sorted.length);
        tails.updateTails(sorted.slice(sorted.length - k).reverse(), sorted.slice(0, k), sorted.length);
      }
      for (const o of [whole, tails]) {
        const r = o.range();
        expect(r.min, `p=${p} low`).to.be.closeTo(ref!.lo[i]!, 1e-5 * Math.max(1, Math.abs(ref!.lo[i]!)));
        expect(r.max, `p=${p} high`).to.be.closeTo(ref!.hi[i]!, 1e-5 * Math.max(1, Math.abs(ref!.hi[i]!)));
      }
      // memory: the tails, not the values (at the percentiles calibration uses; 90 keeps 5 % of the values a side)
      if (p >= 99.9) expect(whole.retainedBytes()).to.be.below(all.length * 4 * 0.01);
    });
  });

  it('skips and counts NaN and ±Infinity; refuses to guess when it saw more values than it was sized for', () => {
    const o = new TailObserver({ percentile: 99, expected: 6 });
    o.update(new Float32Array([1, NaN, 2, Infinity, 3, -Infinity]));
    expect(o.nonFinite).to.equal(3);
    expect(o.count).to.equal(3);
    expect(o.range()).to.deep.equal({ min: 1.01, max: 2.99 }); // numpy: percentile([1, 2, 3], [0.5, 99.5])
    const small = new TailObserver({ percentile: 50, expected: 10 });
    feed(small, [all.subarray(0, 1000)]);
    expect(() => small.range()).to.throw(EvaluationError, /sized for fewer values/);
  });

  it('calibrate() with percentile reduces inside onnxruntime and matches numpy.percentile of the exposed tensors', async function () {
    if (!hasPython('numpy')) this.skip();
    const model = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const data = await loadDataset(`${FIXTURES}fmnist-test-256/cnn.json`, { inputNames: ['input'] });
    const names = model.graph.nodes.filter((n) => n.opType === 'Relu').map((n) => n.output().name).slice(0, 2);
    const samples = 96;
    const result = await calibrate(model, data, { tensors: names, method: 'percentile', percentile: 99.99, samples, batchSize: 32 });
    // the values themselves, from a session exposing them
    const runner = await Runner.create(model, { extraOutputs: names });
    const values: Float32Array[] = names.map(() => new Float32Array(0));
    try {
      const { datasetFeeds } = await import('../../src/eval/accuracy.js');
      for await (const { feeds } of datasetFeeds(runner, data, { model, batchSize: 32, limit: samples })) {
        const out = await runner.run(feeds, names);
        names.forEach((n, i) => (values[i] = concat([values[i]!, out[n]!.data as Float32Array])));
      }
    } finally {
      await runner.release();
    }
    const numpy = runPython<number[][]>(
      `import sys, json, base64, numpy as np
d = json.load(sys.stdin)
out = []
for x in d['xs']:
    x = np.frombuffer(base64.b64decode(x), dtype=np.float32).astype(np.float64)
    out.append([np.percentile(x, 0.005), np.percentile(x, 99.995)])
print(json.dumps(out))`,
      { xs: values.map(b64) },
    );
    names.forEach((n, i) => {
      const r = result.ranges.get(n)!;
      expect(r.min, n).to.be.closeTo(numpy[i]![0]!, 1e-5);
      expect(r.max, n).to.be.closeTo(numpy[i]![1]!, 1e-4 * Math.max(1, numpy[i]![1]!));
      expect(r.max, `${n}: a real tail, not the maximum`).to.be.above(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// entropy and mse

/** The same KL search as entropyThreshold, written directly in numpy on the histogram of all values. */
const ENTROPY_PY = `import sys, json, base64, numpy as np
d = json.load(sys.stdin)
x = np.frombuffer(base64.b64decode(d['x']), dtype=np.float32).astype(np.float64)
bins, hi, levels = d['bins'], d['hi'], 128
hist = np.histogram(np.abs(x), bins=bins, range=(0, hi))[0].astype(np.float64)
if d['skipZeros']:
    hist[0] -= np.sum(x == 0)
def smooth(p, eps=1e-4):
    z = p == 0
    nz, nnz = z.sum(), p.size - z.sum()
    if nnz == 0:
        return None
    out = p.copy()
    out[z] = eps
    out[~z] -= eps * nz / nnz
    return None if (out <= 0).any() else out
def kl(i):
    sliced = hist[:i]
    p = sliced.copy()
    p[-1] += hist[i:].sum()
    nonzero = p != 0
    m = i // levels                          # bins per level; the last level also takes the rest
    cut = (levels - 1) * m
    sums = np.append(sliced[:cut].reshape(levels - 1, m).sum(1), sliced[cut:].sum())
    norms = np.append(nonzero[:cut].reshape(levels - 1, m).sum(1), nonzero[cut:].sum())
    per = np.divide(sums, norms, out=np.zeros(levels), where=norms > 0)
    q = np.append(np.repeat(per[:-1], m), np.full(i - cut, per[-1]))
    q[~nonzero] = 0
    p, q = smooth(p), smooth(q)
    if p is None or q is None:
        return np.inf
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))
divs = np.array([kl(i) for i in range(levels, bins + 1)])
best = int(np.argmin(divs))
mine = int(round(d['mine'] / (hi / bins)))
print(json.dumps({'threshold': (best + levels) * hi / bins, 'kl': divs[best], 'klMine': divs[mine - levels]}))`;

/** The same mse search as mseRange, written directly in numpy on the histogram of all values. */
const MSE_PY = `import sys, json, base64, numpy as np
d = json.load(sys.stdin)
x = np.frombuffer(base64.b64decode(d['x']), dtype=np.float32).astype(np.float64)
N, lo, w = d['bins'], d['lo'], d['width']
c = np.histogram(x, bins=N, range=(lo, lo + N * w))[0].astype(np.float64)
u = np.arange(N) + 0.5                      # bin centres, in bins from lo
uz = -lo / w                                # 0, in bins from lo
zbin = int(np.floor(uz)) if 0 <= uz < N else -1
def err(uA, uB):
    uA, uB = min(uA, uz), max(uB, uz)        # the quantizer widens the range to hold 0
    s2 = ((uB - uA) / 255) ** 2 / 12
    below, above = u < uA, u > uB
    inside = ~below & ~above
    e = np.sum(c[below] * (uA - u[below]) ** 2) + np.sum(c[above] * (u[above] - uB) ** 2)
    n = c[inside].sum()
    if zbin >= 0 and inside[zbin]:
        n -= c[zbin]
        e += c[zbin] * min(s2, 1 / 3)
    return e + n * s2
best = (np.inf, 0, 0)
for ia in range(N):
    for ib in range(ia + 1, N + 1):
        e = err(ia, ib)
        if e < best[0]:
            best = (e, ia, ib)
e, ia, ib = best
mine = err((d['mine'][0] - lo) / w, (d['mine'][1] - lo) / w)
print(json.dumps({'min': lo + min(ia, uz) * w, 'max': lo + max(ib, uz) * w, 'err': e, 'errMine': mine}))`;

describe('calibrate: entropy and mse', function () {
  this.timeout(300_000);

  it('entropy ranges lie in [min, max] and clip outliers; mse ranges too, and beat minmax on measured 8-bit error', () => {
    const x = heavyTailed(5);
    const parts = split(x, 7000);
    for (const O of [EntropyObserver, MseObserver]) {
      const o = new O();
      feed(o, parts);
      const r = o.range();
      expect(r.min).to.be.at.least(o.min);
      expect(r.max).to.be.at.most(o.max);
      // the two outliers (30..60, one each side) are the extremes; the Laplace bulk stays within ±14
      expect(r.max, O.name).to.be.below(o.max - 1);
      expect(r.min, O.name).to.be.above(o.min + 1);
    }
    const mm = new MinMaxObserver();
    const ms = new MseObserver();
    feed(mm, parts);
    feed(ms, parts);
    const a = mm.range(), b = ms.range();
    const errMinmax = mseOf(x, fakeQuantUint8(x, a.min, a.max));
    const errMse = mseOf(x, fakeQuantUint8(x, b.min, b.max));
    expect(errMse).to.be.below(errMinmax / 2);
    // a ReLU of it: [0, clipped]
    const mr = new MseObserver();
    feed(mr, split(heavyTailed(6, 200_000, true), 5000));
    const rr = mr.range();
    expect(rr.min).to.equal(0);
    expect(rr.max).to.be.below(mr.max);
  });

  it('entropy gives numpy’s KL threshold over all values (within two bins, or an equally good one)', function () {
    if (!hasPython('numpy')) this.skip();
    for (const [name, x, skipZeros] of [
      ['Laplace with outliers', heavyTailed(7, 100_000), true],
      ['its ReLU, zeros skipped', heavyTailed(8, 100_000, true), true],
      ['its ReLU, zeros kept (TensorRT as is)', heavyTailed(8, 100_000, true), false],
    ] as const) {
      const o = new EntropyObserver({ skipZeros });
      feed(o, split(x, 6000));
      const t = Math.max(-o.range().min, o.range().max);
      const ref = runPython<{ threshold: number; kl: number; klMine: number }>(ENTROPY_PY, { x: b64(x), bins: o.histogram.bins, hi: o.histogram.hi, skipZeros, mine: t });
      const w = o.histogram.width;
      const close = Math.abs(t - Math.min(ref.threshold, o.max)) <= 2 * w;
      expect(close || ref.klMine <= ref.kl * (1 + 1e-9), `${name}: ${t} vs numpy ${ref.threshold} (KL ${ref.klMine} vs ${ref.kl})`).to.equal(true);
    }
  });

  it('mse gives numpy’s brute-force range over all values (within two bins, or an equally good one)', function () {
    if (!hasPython('numpy')) this.skip();
    for (const [name, x, bins] of [
      ['Laplace with outliers', heavyTailed(9, 60_000), 256],
      ['its ReLU', heavyTailed(10, 60_000, true), 256],
      ['shifted positive', heavyTailed(11, 60_000).map((v) => v + 80), 128],
    ] as const) {
      const o = new MseObserver({ bins });
      feed(o, split(x, 5000));
      const r = o.range();
      const h = o.histogram;
      const ref = runPython<{ min: number; max: number; err: number; errMine: number }>(MSE_PY, { x: b64(x), bins: h.bins, lo: h.lo, width: h.width, mine: [r.min, r.max] });
      const close = Math.abs(r.min - Math.max(ref.min, o.min)) <= 2 * h.width && Math.abs(r.max - Math.min(ref.max, o.max)) <= 2 * h.width;
      expect(close || ref.errMine <= ref.err * (1 + 1e-9), `${name}: [${r.min}, ${r.max}] vs numpy [${ref.min}, ${ref.max}]`).to.equal(true);
    }
  });
});

describe('calibrate: observers in common', () => {
  it('keep the same bytes after 1 batch and after 100', () => {
    const x = heavyTailed(12, 10_000);
    for (const method of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const o = makeObserver(method);
      o.update(x);
      const bytes = o.retainedBytes();
      for (let i = 0; i < 100; i++) o.update(x.map((v) => v * (1 + i)));
      expect(o.retainedBytes(), method).to.equal(bytes);
      const r = o.range();
      expect(r.min, method).to.be.at.least(o.min);
      expect(r.max, method).to.be.at.most(o.max);
    }
  });

  it('skip NaN and ±Infinity anywhere in a batch, count them, and give the range of the rest', () => {
    const clean = heavyTailed(13, 20_000);
    const dirty = new Float32Array(clean.length + 30);
    let cut = 0; // where dirty has given the first 5000 clean values
    for (let i = 0, j = 0; i < dirty.length; i++) {
      dirty[i] = i % 701 === 3 && j < 30 ? [NaN, Infinity, -Infinity][j++ % 3]! : clean[i - j]!;
      if (i - j === 4999 && !cut) cut = i + 1;
    }
    for (const method of ['minmax', 'percentile', 'entropy', 'mse'] as const) {
      const a = makeObserver(method), b = makeObserver(method);
      a.update(clean.subarray(0, 5000));
      a.update(clean.subarray(5000));
      b.update(dirty.subarray(0, cut));
      b.update(dirty.subarray(cut));
      expect(b.nonFinite, method).to.equal(30);
      expect(b.count, method).to.equal(clean.length);
      expect(b.range(), method).to.deep.equal(a.range());
    }
  });

  it('sqnr and quantizationError', () => {
    expect(sqnr(new Float32Array([1, 2]), new Float32Array([1, 2.01]))).to.be.closeTo(10 * Math.log10(5 / Math.fround(0.01) ** 2), 1e-3);
    expect(sqnr(new Float32Array([1, 2]), new Float32Array([1, 2]))).to.equal(Infinity);
    const e = quantizationError(new Float32Array([1, -1]), new Float32Array([0.5, -1]));
    expect(e).to.deep.equal({ sqnrDb: 10 * Math.log10(2 / 0.25), mse: 0.125, maxAbsError: 0.5 });
    expect(() => sqnr(new Float32Array(2), new Float32Array(3))).to.throw(OptionsError, /Expected 2 dequantized values/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// calibrate()

describe('calibrate: running a model', function () {
  this.timeout(120_000);

  it('observes inputs from the feeds and outputs from onnxruntime, from an iterable, cut at `samples`', async () => {
    const batches = [rowsFeed([[1, 4, 9], [16, 0.25, 2]]), rowsFeed([[100, 1, 1]]), rowsFeed([[400, 1, 1]])];
    const r = await calibrate(sqrtModel(), batches, { tensors: ['x', 'y'], method: 'minmax', samples: 3 });
    expect(r.samples).to.equal(3);
    expect(r.ranges.get('x')).to.deep.equal({ min: 0.25, max: 100 });
    expect(r.ranges.get('y')).to.deep.equal({ min: 0.5, max: 10 });
    const cut = await calibrate(sqrtModel(), batches, { tensors: ['y'], method: 'minmax', samples: 1 });
    expect(cut.samples).to.equal(1);
    expect(cut.ranges.get('y')).to.deep.equal({ min: 1, max: 3 });
  });

  it('names the tensor holding NaN or Infinity, or skips and counts them when asked', async () => {
    const data = [rowsFeed([[1, 4, 9]]), rowsFeed([[16, -1, 2]])];
    await rejects(
      calibrate(sqrtModel(), data, { tensors: ['y'], method: 'percentile' }),
      EvaluationError,
      /^Tensor "y" holds 1 NaN or infinite values in samples 1–1 \(batch 1\): .* nonFinite: 'ignore'/,
    );
    // minmax reduces inside onnxruntime; a NaN there sends the batch to the copied-out path, which counts it
    await rejects(calibrate(sqrtModel(), data, { tensors: ['y'], method: 'minmax' }), EvaluationError, /^Tensor "y" holds 1 NaN or infinite values in samples 1–1 \(batch 1\)/);
    const r = await calibrate(sqrtModel(), data, { tensors: ['y'], method: 'minmax', nonFinite: 'ignore' });
    expect(r.ranges.get('y')).to.deep.equal({ min: 1, max: 4 });
    expect(r.nonFinite.get('y')).to.equal(1);
    await rejects(
      calibrate(sqrtModel(), [rowsFeed([[-1, -2, -3]])], { tensors: ['y'], nonFinite: 'ignore' }),
      EvaluationError,
      /^Tensor "y" held only NaN or infinite values \(3\) over 1 samples: no range$/,
    );
  });

  it('measures only the maximum of tensors known to be ≥ 0 (their range starts at 0), exactly, for minmax and percentile', async () => {
    const r = rng(11);
    const batches = [0, 1, 2].map((b) => {
      // all positive in batch 0, so even the true minimum of r there is above 0
      const data = Float32Array.from({ length: 5 * 72 }, () => (b === 0 ? 0.5 + r() : 8 * normal(r)));
      return { x: { dtype: 'float32', dims: [5, 8, 3, 3], data } } as Feeds;
    });
    const all = concat(batches.map((f) => f.x!.data as Float32Array));
    const max = (f: (v: number) => number) => all.reduce((m, v) => Math.max(m, f(v)), -Infinity);
    const tensors = ['x', 'r', 'c', 't', 'o'];
    const mm = await calibrate(signsModel(), batches, { tensors, method: 'minmax', nonFinite: 'ignore' });
    expect(mm.ranges.get('x')).to.deep.equal({ min: all.reduce((m, v) => Math.min(m, v)), max: max((v) => v) });
    expect(mm.ranges.get('r')).to.deep.equal({ min: 0, max: max((v) => v) });
    expect(mm.ranges.get('c')).to.deep.equal({ min: 0, max: Math.fround(Math.min(6, max((v) => v))) });
    // the first batch is clean; Sqrt of the negative values of the others is NaN: counted in t and in o
    const negatives = all.filter((v) => v < 0).length;
    expect(negatives).to.be.above(0);
    expect(mm.nonFinite.get('t')).to.equal(negatives);
    expect(mm.nonFinite.get('o')).to.equal(negatives);
    expect(mm.ranges.get('t')!.max).to.equal(Math.fround(Math.sqrt(max((v) => v))));
    // percentile keeps only the top tail of r: its upper quantile is numpy's over all values, the lower end 0
    const pc = await calibrate(signsModel(), batches.slice(0, 1), { tensors: ['r'], method: 'percentile', percentile: 90, samples: 5 });
    const sorted = Float32Array.from(batches[0]!.x!.data as Float32Array).sort();
    const q = 0.95 * (sorted.length - 1), lo = Math.floor(q);
    expect(pc.ranges.get('r')!.min).to.equal(0);
    expect(pc.ranges.get('r')!.max).to.be.closeTo(sorted[lo]! + (q - lo) * (sorted[lo + 1]! - sorted[lo]!), 1e-6);
  });

  it('finds a NaN inside a tensor known to be ≥ 0 through the tensors it reaches, and names the first holding it', async () => {
    const clean = { x: { dtype: 'float32', dims: [1, 8, 3, 3], data: new Float32Array(72).fill(4) } } as Feeds;
    const dirty = { x: { dtype: 'float32', dims: [1, 8, 3, 3], data: new Float32Array(72).fill(4).fill(-1, 70) } } as Feeds;
    // t (Relu of Sqrt) has no NaN check of its own; o's sum finds it, and the batch is observed again, exposed
    for (const method of ['minmax', 'percentile'] as const) {
      await rejects(
        calibrate(signsModel(), [clean, dirty], { tensors: ['t', 'o'], method, samples: 2 }),
        EvaluationError,
        /^Tensor "t" holds 2 NaN or infinite values in samples 1–1 \(batch 1\)/,
      );
    }
  });

  it('refuses unknown tensors (listing what exists), empty data, a model without inputs and bad options', async () => {
    const constant = new Model();
    constant.irVersion = 8;
    constant.opsetImports.set('', 13);
    const c = constant.graph.addNode({ opType: 'Constant', inputs: [], outputs: ['c'], attributes: { value: attr.tensor(Tensor.from('float32', [2], [1, 2])) } }).output();
    c.type = { kind: 'tensor', elemType: 'float32', shape: [2] };
    constant.graph.outputs.push(c);
    await rejects(calibrate(constant, [{}], { tensors: ['c'] }), EvaluationError, /^The model has no inputs: no calibration data can reach it/);
    // an empty tensor (no channels) has no range, whichever path observes it
    const hollow = new Model();
    hollow.irVersion = 8;
    hollow.opsetImports.set('', 13);
    const e = hollow.graph.declareValue('e');
    e.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 0, 4, 4] };
    hollow.graph.inputs.push(e);
    const re = hollow.graph.addNode({ opType: 'Relu', inputs: [e], outputs: ['re'] }).output();
    re.type = { kind: 'tensor', elemType: 'float32', shape: ['n', 0, 4, 4] };
    hollow.graph.outputs.push(re);
    for (const method of ['minmax', 'percentile'] as const) {
      await rejects(
        calibrate(hollow, [{ e: { dtype: 'float32', dims: [2, 0, 4, 4], data: new Float32Array(0) } }], { tensors: ['re'], method, samples: 2 }),
        EvaluationError,
        /^Tensor "re" held no values over 2 samples \(an empty tensor\): no range$/,
      );
    }
    await rejects(
      calibrate(sqrtModel(), [rowsFeed([[1, 1, 1]])], { tensors: ['y', 'z'] }),
      OptionsError,
      /^Unknown tensor "z" in tensors: the main graph has no value of that name \(one of: "x", "y"\)$/,
    );
    await rejects(calibrate(sqrtModel(), [], { tensors: ['y'] }), EvaluationError, /^The calibration data is empty: it gave no samples to calibrate on$/);
    const empty: Dataset = { size: 0, inputNames: [], sampleDims: { x: [3] }, hasLabels: false, batches: async function* () {} };
    await rejects(calibrate(sqrtModel(), empty, { tensors: ['y'] }), EvaluationError, /^The calibration dataset is empty/);
    await rejects(
      calibrate(sqrtModel(), [], { tensors: ['y'], method: 'percentile', movingAverage: true }),
      OptionsError,
      /^Invalid options for calibrate: movingAverage: applies to method "minmax" only, but method is "percentile"$/,
    );
    await rejects(calibrate(sqrtModel(), [], { tensors: ['y'], method: 'entropy', bins: 64 }), OptionsError, /bins: entropy needs at least 128 bins/);
    await rejects(calibrate(sqrtModel(), [], { tensors: [] }), OptionsError, /^Invalid options for calibrate: tensors: /);
    await rejects(calibrate(sqrtModel(), [], { tensors: ['y'], bogus: 1 } as never), OptionsError, /bogus/);
    await rejects(calibrate(sqrtModel(), [], { tensors: ['y'], method: 'kl' as never }), OptionsError, /^Invalid options for calibrate: method: /);
  });

  it('stops when the signal aborts', async () => {
    const ac = new AbortController();
    ac.abort();
    try {
      await calibrate(sqrtModel(), [rowsFeed([[1, 1, 1]])], { tensors: ['y'], signal: ac.signal });
      expect.fail('no abort');
    } catch (e) {
      expect((e as Error).name).to.equal('AbortError');
    }
  });

  it('observes only the real samples of a padded batch (model with a fixed batch size)', async () => {
    const model = await loadModel(`${FIXTURES}fmnist-mlp.onnx`);
    const hidden = model.graph.nodes[0]!.outputs[0]!.name;
    const data = await loadDataset(`${FIXTURES}fmnist-test-256/mlp.json`);
    const reference = await calibrate(model, data, { tensors: [hidden, 'logits'], method: 'minmax', samples: 10, batchSize: 10 });
    const fixed = await loadModel(`${FIXTURES}fmnist-mlp.onnx`);
    fixed.graph.inputs[0]!.type = { kind: 'tensor', elemType: 'float32', shape: [4, 784] };
    const progress: number[] = [];
    const r = await calibrate(fixed, data, { tensors: [hidden, 'logits'], method: 'minmax', samples: 10, onProgress: (d) => progress.push(d) });
    expect(progress).to.deep.equal([0, 4, 8, 10]);
    expect(r.samples).to.equal(10);
    for (const t of [hidden, 'logits']) {
      expect(r.ranges.get(t)!.min).to.be.closeTo(reference.ranges.get(t)!.min, 1e-5);
      expect(r.ranges.get(t)!.max).to.be.closeTo(reference.ranges.get(t)!.max, 1e-5);
    }
  });
});

describe('calibrate: the fixture CNN on Fashion-MNIST t10k', function () {
  this.timeout(300_000);
  before(function () {
    if (!hasFashion) this.skip();
  });

  it('keeps the same observer bytes for 1000 and 10000 samples, and the process does not grow with them', async () => {
    const model = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const data = await loadDataset(t10k('NCHW'));
    const tensors = ['input', ...model.graph.nodes.map((n) => n.outputs[0]!.name)];
    const small = await measureCalibrationMemory(model, data, { tensors, method: 'percentile', samples: 1000 });
    const large = await measureCalibrationMemory(model, data, { tensors, method: 'percentile', samples: 10000 });
    expect(small.result.samples).to.equal(1000);
    expect(large.result.samples).to.equal(10000);
    expect(large.retainedBytes).to.equal(small.retainedBytes);
    // one histogram per tensor but the Flatten, whose values are the MaxPool's (it takes that range)
    expect(large.retainedBytes).to.equal((tensors.length - 1) * (2048 * 8 + 2049 * 4 * 4));
    const flatten = model.graph.nodes.find((n) => n.opType === 'Flatten')!;
    expect(large.result.ranges.get(flatten.outputs[0]!.name)).to.deep.equal(large.result.ranges.get(flatten.inputs[0]!.name));
    expect([...large.result.ranges.keys()]).to.deep.equal(tensors);
    // ten times the samples: not ten times the growth (loose; the exact figure is bench/quantize's)
    const grow = (m: typeof small) => m.rssPeak - m.rssBefore;
    expect(grow(large)).to.be.below(Math.max(3 * grow(small), 64 * 2 ** 20));
    // the ranges narrow towards the bulk, never beyond the data
    for (const t of tensors) {
      const r = large.result.ranges.get(t)!;
      expect(r.min).to.be.at.most(r.max);
    }
  });

  it('every Conv/Gemm output range holds the values onnxruntime computes for the first images', async () => {
    const model = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const data = await loadDataset(t10k('NCHW'));
    const tensors = model.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm').map((n) => n.outputs[0]!.name);
    expect(tensors).to.have.length(4);
    const minmax = await calibrate(model, data, { tensors, method: 'minmax', samples: 1000, batchSize: 50 });
    const percentile = await calibrate(model, data, { tensors, method: 'percentile', samples: 1000, batchSize: 50 });
    const runner = await Runner.create(model, { extraOutputs: tensors });
    try {
      const out = await runner.run({ input: data.batch(0, 8).feeds.input! as RunTensor }, tensors);
      for (const t of tensors) {
        const values = out[t]!.data as Float32Array;
        const r = minmax.ranges.get(t)!;
        let mn = Infinity, mx = -Infinity;
        for (const v of values) {
          mn = Math.min(mn, v);
          mx = Math.max(mx, v);
        }
        expect(mn, t).to.be.at.least(r.min);
        expect(mx, t).to.be.at.most(r.max);
        const p = percentile.ranges.get(t)!;
        expect(p.min, t).to.be.at.least(r.min);
        expect(p.max, t).to.be.at.most(r.max);
      }
    } finally {
      await runner.release();
    }
  });

  it('minmax reduces inside onnxruntime to exactly the extremes of the values it computes, batch by batch', async () => {
    const model = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const data = await loadDataset(`${FIXTURES}fmnist-test-256/cnn.json`);
    const tensors = model.graph.nodes.map((n) => n.outputs[0]!.name);
    const plain = await calibrate(model, data, { tensors, method: 'minmax', batchSize: 64 });
    const averaged = await calibrate(model, data, { tensors, method: 'minmax', batchSize: 64, movingAverage: 0.3 });
    const runner = await Runner.create(model, { extraOutputs: tensors });
    try {
      const direct = new Map(tensors.map((t) => [t, { min: Infinity, max: -Infinity, avgMin: 0, avgMax: 0 }]));
      for (let start = 0, b = 0; start < 256; start += 64, b++) {
        const out = await runner.run({ input: data.batch(start, 64).feeds.input! as RunTensor }, tensors);
        for (const t of tensors) {
          let mn = Infinity, mx = -Infinity;
          for (const v of out[t]!.data as Float32Array) {
            mn = Math.min(mn, v);
            mx = Math.max(mx, v);
          }
          const d = direct.get(t)!;
          d.min = Math.min(d.min, mn);
          d.max = Math.max(d.max, mx);
          [d.avgMin, d.avgMax] = b === 0 ? [mn, mx] : [d.avgMin + 0.3 * (mn - d.avgMin), d.avgMax + 0.3 * (mx - d.avgMax)];
        }
      }
      for (const t of tensors) {
        const d = direct.get(t)!;
        expect(plain.ranges.get(t), t).to.deep.equal({ min: d.min, max: d.max });
        expect(averaged.ranges.get(t)!.min, t).to.be.closeTo(d.avgMin, 1e-12);
        expect(averaged.ranges.get(t)!.max, t).to.be.closeTo(d.avgMax, 1e-12);
      }
    } finally {
      await runner.release();
    }
  });

  it('gives the same ranges from a Dataset and from an iterable of its feeds', async () => {
    const model = await loadModel(`${FIXTURES}fmnist-cnn.onnx`);
    const data = await loadDataset(`${FIXTURES}fmnist-test-256/cnn.json`);
    const tensors = ['input', 'logits', model.graph.nodes[2]!.outputs[0]!.name];
    async function* feeds(): AsyncGenerator<Feeds> {
      for await (const b of data.batches(100)) yield { input: b.feeds.input! };
    }
    const a = await calibrate(model, data, { tensors, method: 'mse', samples: 150, batchSize: 100 });
    const b = await calibrate(model, feeds(), { tensors, method: 'mse', samples: 150 });
    expect(b.samples).to.equal(150);
    expect([...b.ranges]).to.deep.equal([...a.ranges]);
  });
});

describe('calibrate: the ONNX conformance models (libonnx-testdata)', function () {
  this.timeout(600_000);
  const cases = conformanceCases().filter((c) => ['node', 'simple', 'pytorch-converted', 'pytorch-operator'].includes(c.id.split('/')[0]!));
  before(function () {
    if (!cases.length) this.skip();
  });

  it('minmax gives every float node output the extremes onnxruntime computes (0 as the minimum where the tensor is known to be ≥ 0)', async () => {
    let models = 0, tensors = 0, fromZero = 0;
    const failures: string[] = [];
    for (const c of cases) {
      if (!c.dataSets.length) continue;
      let model: Model;
      try {
        model = await loadModel(c.model);
      } catch {
        continue; // the loader's own tests cover what it refuses
      }
      const inputs = model.graph.inputs.filter((v) => !v.initializer);
      const files = readdirSync(c.dataSets[0]!).filter((f) => /^input_\d+\.pb$/.test(f)).sort((a, b) => Number(a.slice(6, -3)) - Number(b.slice(6, -3)));
      if (!inputs.length || files.length !== inputs.length) continue;
      const feeds: Feeds = {};
      try {
        for (const [i, f] of files.entries()) {
          const t = await loadTensor(join(c.dataSets[0]!, f));
          feeds[inputs[i]!.name] = { dtype: t.dtype, dims: t.dims, data: t.data() } as RunTensor;
        }
      } catch {
        continue;
      }
      const names = model.graph.nodes.flatMap((n) => n.outputs.filter((v) => v !== null && v.elemType === 'float32')).map((v) => v!.name);
      if (!names.length) continue;
      // the values, from a session exposing them ('extended': onnxruntime 1.30 can crash exposing Conv outputs at 'all')
      let values: Record<string, RunTensor>;
      try {
        const runner = await Runner.create(model, { extraOutputs: names, graphOptimizationLevel: 'extended' });
        try {
          values = await runner.run(feeds, names);
        } finally {
          await runner.release();
        }
      } catch {
        continue; // onnxruntime cannot run it: nothing to compare with
      }
      const finite = names.filter((n) => values[n]!.data.length > 0 && (values[n]!.data as Float32Array).every((x) => Number.isFinite(x)));
      if (!finite.length) continue;
      const r = await calibrate(model, [feeds], { tensors: finite, method: 'minmax' });
      models++;
      for (const n of finite) {
        let mn = Infinity, mx = -Infinity;
        for (const x of values[n]!.data as Float32Array) {
          if (x < mn) mn = x;
          if (x > mx) mx = x;
        }
        const got = r.ranges.get(n)!;
        // the calibration session runs at 'all', whose blocked convolutions round differently in the last bits
        const close = (a: number, b: number) => Math.abs(a - b) <= 1e-6 + 1e-5 * Math.abs(b);
        const minOk = close(got.min, mn) || (got.min === 0 && mn >= 0);
        if (got.min === 0 && mn > 0) fromZero++;
        if (!close(got.max, mx) || !minOk) failures.push(`${c.id} ${n}: [${got.min}, ${got.max}] vs [${mn}, ${mx}]`);
        tensors++;
      }
    }
    expect(failures, failures.slice(0, 5).join('\n')).to.deep.equal([]);
    expect(models).to.be.above(500);
    expect(tensors).to.be.above(700);
    // Relu/Clip outputs that never touch 0 on the data: their range still starts at 0 (documented)
    expect(fromZero).to.be.above(0);
  });
});

