import { expect } from 'chai';
import { OptionsError } from '../../src/errors.js';
import { bootstrapMedianCI, decideRatio } from '../../src/eval/bootstrap.js';
import { mulberry32 } from '../../src/util/random.js';

/** Standard normal draws (Box–Muller) from a seeded uniform generator. */
function normals(n: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const out: number[] = [];
  while (out.length < n) {
    const u = 1 - rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out.push(r * Math.cos(2 * Math.PI * v), r * Math.sin(2 * Math.PI * v));
  }
  return out.slice(0, n);
}

/** Lognormal ratios: median exp(mu), spread sigma in log space (sigma 0.1 ≈ ±10%). */
function lognormal(n: number, mu: number, sigma: number, seed: number): number[] {
  return normals(n, seed).map((z) => Math.exp(mu + sigma * z));
}

function sortedMedian(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

describe('eval/bootstrap', () => {
  describe('bootstrapMedianCI', () => {
    it('gives the sample median, for odd and even counts', () => {
      expect(bootstrapMedianCI([3, 1, 2]).median).to.equal(2);
      expect(bootstrapMedianCI([4, 1, 3, 2]).median).to.equal(2.5);
      expect(bootstrapMedianCI([7]).median).to.equal(7);
    });

    it('equals a plain bootstrap that sorts every resample (same draws)', () => {
      // the implementation counts draws per index instead of sorting; a naive resampler fed the same draws must
      // give exactly the same interval
      for (const n of [1, 2, 7, 30, 31]) {
        const xs = lognormal(n, 0, 0.2, n);
        const seed = 11;
        const resamples = 500;
        const got = bootstrapMedianCI(xs, { seed, resamples, confidence: 0.9 });
        const sorted = [...xs].sort((a, b) => a - b);
        const rand = mulberry32(seed);
        const meds: number[] = [];
        for (let r = 0; r < resamples; r++) meds.push(sortedMedian(Array.from({ length: n }, () => sorted[Math.floor(rand() * n)]!)));
        meds.sort((a, b) => a - b);
        expect(got.low, `n=${n}`).to.equal(meds[Math.floor(0.05 * resamples)]);
        expect(got.high, `n=${n}`).to.equal(meds[Math.ceil(0.95 * resamples) - 1]);
      }
    });

    it('contains the true median of lognormal ratios about as often as it promises', () => {
      // 200 seeded experiments of 60 ratios around a true median of 1.1; a 95% interval should miss ~5% of the time
      const truth = 1.1;
      let covered = 0;
      const trials = 200;
      for (let t = 0; t < trials; t++) {
        const ci = bootstrapMedianCI(lognormal(60, Math.log(truth), 0.15, 1000 + t), { seed: t, resamples: 1000 });
        if (ci.low <= truth && truth <= ci.high) covered++;
      }
      expect(covered / trials).to.be.within(0.88, 0.995);
    });

    it('narrows as samples are added', () => {
      const width = (n: number) => {
        let w = 0;
        for (let t = 0; t < 20; t++) {
          const ci = bootstrapMedianCI(lognormal(n, 0, 0.1, 50 + t), { seed: t, resamples: 1000 });
          w += ci.high - ci.low;
        }
        return w / 20;
      };
      const w20 = width(20);
      const w320 = width(320);
      // the width of a median's interval shrinks like 1/sqrt(n): 16× the samples, about a quarter of the width
      expect(w320).to.be.below(w20 * 0.4);
      expect(w320).to.be.above(w20 * 0.15);
    });

    it('is deterministic for a seed and depends on it', () => {
      const xs = lognormal(40, 0, 0.1, 3);
      expect(bootstrapMedianCI(xs, { seed: 5 })).to.deep.equal(bootstrapMedianCI(xs, { seed: 5 }));
      const a = bootstrapMedianCI(xs, { seed: 5 });
      const b = bootstrapMedianCI(xs, { seed: 6 });
      expect([a.low, a.high]).not.to.deep.equal([b.low, b.high]);
    });

    it('refuses bad input with the field named', () => {
      expect(() => bootstrapMedianCI([])).to.throw(OptionsError, /at least one sample/);
      expect(() => bootstrapMedianCI([1, NaN])).to.throw(OptionsError, /sample 1/);
      expect(() => bootstrapMedianCI([1], { confidence: 1 })).to.throw(OptionsError, /confidence/);
      expect(() => bootstrapMedianCI([1], { resamples: 0 })).to.throw(OptionsError, /resamples/);
    });
  });

  describe('decideRatio', () => {
    it('fails a candidate clearly slower than the budget allows', () => {
      const d = decideRatio(lognormal(40, Math.log(1.2), 0.05, 1), 0.05, { seed: 1 });
      expect(d.verdict).to.equal('fail');
      expect(d.low).to.be.above(1.05);
      expect(d.pairs).to.equal(40);
      expect(d.limit).to.equal(1.05);
    });

    it('passes a candidate clearly within the budget', () => {
      expect(decideRatio(lognormal(40, 0, 0.03, 2), 0.05, { seed: 1 }).verdict).to.equal('pass');
      // faster is within any budget
      expect(decideRatio(lognormal(40, Math.log(0.8), 0.03, 2), 0.05, { seed: 1 }).verdict).to.equal('pass');
    });

    it('stays undecided when the interval straddles the limit', () => {
      const d = decideRatio(lognormal(40, Math.log(1.05), 0.1, 3), 0.05, { seed: 1 });
      expect(d.verdict).to.equal('undecided');
      expect(d.low).to.be.at.most(1.05);
      expect(d.high).to.be.above(1.05);
    });

    it('takes no verdict before minPairs, however clear the data', () => {
      const ratios = lognormal(19, Math.log(1.5), 0.01, 4);
      expect(decideRatio(ratios, 0.05).verdict).to.equal('undecided');
      expect(decideRatio(ratios, 0.05, { minPairs: 19 }).verdict).to.equal('fail');
      expect(decideRatio([], 0.05).verdict).to.equal('undecided');
    });

    it('never fails a noisy A/A series across seeds, even with repeated looks', () => {
      // what the gate does: look after 20 pairs, then each time the count grew by a tenth, up to 300 pairs
      for (let seed = 0; seed < 12; seed++) {
        const ratios = lognormal(300, 0, 0.25, 100 + seed);
        for (let n = 20; n <= 300; n = Math.max(n + 2, Math.ceil(n * 1.1))) {
          expect(decideRatio(ratios.slice(0, n), 0.05, { seed, resamples: 1000 }).verdict, `seed ${seed}, ${n} pairs`).not.to.equal('fail');
        }
      }
    });

    it('refuses a bad budget', () => {
      expect(() => decideRatio([1], -1)).to.throw(OptionsError, /budget/);
      expect(() => decideRatio([1], NaN)).to.throw(OptionsError, /budget/);
    });
  });
});
