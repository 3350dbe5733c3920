import { expect } from 'chai';
import fc from 'fast-check';
import { paretoFrontier } from '../../src/eval/pareto.js';

interface P {
  n: string;
  a: number;
  l: number;
}
const get = (p: P) => ({ accuracy: p.a, latencyMs: p.l });
const names = (ps: P[]) => paretoFrontier(ps, get).map((p) => p.n);

/** p dominates q: at least as accurate and as fast, strictly better in one. */
const dominates = (p: P, q: P) => p.a >= q.a && p.l <= q.l && (p.a > q.a || p.l < q.l);

describe('eval/pareto', () => {
  it('keeps the points nothing beats on both counts, fastest first', () => {
    // float: most accurate; int8: faster, a little less accurate; bad: slower than int8 and less accurate than it
    const pts = [
      { n: 'float', a: 0.91, l: 4 },
      { n: 'int8', a: 0.9, l: 2 },
      { n: 'bad', a: 0.85, l: 3 },
      { n: 'fastest', a: 0.7, l: 1 },
      { n: 'slow-and-bad', a: 0.7, l: 10 },
    ];
    expect(names(pts)).to.deep.equal(['fastest', 'int8', 'float']);
  });

  it('equal accuracy: only the faster point; equal latency: only the more accurate one', () => {
    expect(names([{ n: 'slow', a: 0.9, l: 5 }, { n: 'fast', a: 0.9, l: 2 }])).to.deep.equal(['fast']);
    expect(names([{ n: 'worse', a: 0.8, l: 2 }, { n: 'better', a: 0.9, l: 2 }])).to.deep.equal(['better']);
  });

  it('identical points are all kept, in input order (neither dominates the other)', () => {
    expect(names([{ n: 'b', a: 0.9, l: 2 }, { n: 'a', a: 0.9, l: 2 }, { n: 'c', a: 0.95, l: 3 }])).to.deep.equal(['b', 'a', 'c']);
    // identical but dominated: none kept
    expect(names([{ n: 'x', a: 0.8, l: 3 }, { n: 'y', a: 0.8, l: 3 }, { n: 'z', a: 0.9, l: 1 }])).to.deep.equal(['z']);
  });

  it('a single point is the frontier; no points, no frontier', () => {
    expect(names([{ n: 'only', a: 0.5, l: 1 }])).to.deep.equal(['only']);
    expect(names([])).to.deep.equal([]);
  });

  it('leaves out NaN, infinite and missing values, which push nothing off the frontier', () => {
    const pts = [
      { n: 'nan-acc', a: NaN, l: 0.1 },
      { n: 'nan-lat', a: 1, l: NaN },
      { n: 'inf-lat', a: 1, l: Infinity },
      { n: 'missing', a: undefined as unknown as number, l: 0.1 },
      { n: 'ok', a: 0.5, l: 5 },
    ];
    expect(names(pts)).to.deep.equal(['ok']);
  });

  it('does not reorder or copy its input', () => {
    const pts = [{ n: 'b', a: 0.9, l: 2 }, { n: 'a', a: 0.8, l: 1 }];
    const out = paretoFrontier(pts, get);
    expect(pts.map((p) => p.n)).to.deep.equal(['b', 'a']);
    expect(out[0]).to.equal(pts[1]);
  });

  it('property: no frontier point is dominated; every other valid point is dominated by a frontier point', () => {
    // small integer grids make ties and equal points common, which is where a frontier goes wrong
    const point = fc.record({ a: fc.oneof(fc.integer({ min: 0, max: 6 }).map((x) => x / 6), fc.constant(NaN)), l: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.double({ min: 0.01, max: 10, noNaN: true })) });
    fc.assert(
      fc.property(fc.array(point, { maxLength: 30 }), (raw) => {
        const pts = raw.map((p, i) => ({ n: String(i), ...p }));
        const front = paretoFrontier(pts, get);
        const valid = pts.filter((p) => Number.isFinite(p.a) && Number.isFinite(p.l));
        for (const f of front) {
          expect(Number.isFinite(f.a) && Number.isFinite(f.l)).to.equal(true);
          expect(valid.some((q) => dominates(q, f)), `frontier point ${f.n} is dominated`).to.equal(false);
        }
        for (const p of valid) if (!front.includes(p)) expect(front.some((f) => dominates(f, p)), `point ${p.n} is off the frontier but not dominated`).to.equal(true);
        // fastest first
        for (let i = 1; i < front.length; i++) expect(front[i]!.l).to.be.at.least(front[i - 1]!.l);
      }),
      { numRuns: 500, seed: 1 },
    );
  });
});
