/**
 * Numerics of src/onnx/codecs.ts, checked against references that are not this code: numpy's float16, torch's
 * bfloat16, ONNX's Cast conformance data (libonnx-testdata, read with python3-onnx), a brute-force nearest-value
 * search over each float8 type's value table, and a transcription of onnx's `to_float8e8m0`; plus exhaustive
 * round trips over every bit pattern and fast-check properties for the packed types.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  float32ToFloat4e2m1,
  float32ToFloat8,
  float4e2m1ToFloat32,
  float8ToFloat32,
  fromFloat32,
  packInt2,
  packInt4,
  packUint2,
  packUint4,
  toFloat32,
  unpackInt2,
  unpackInt4,
  unpackUint2,
  unpackUint4,
  type Float8DType,
} from '../../src/onnx/codecs.js';
import { OptionsError } from '../../src/errors.js';
import type { DType } from '../../src/onnx/dtype.js';
import { mulberry32 } from '../../src/util/random.js';

// ----------------------------------------------------------------------------------------------------------------
// helpers

/** Debian's interpreter, which sees python3-numpy, python3-torch and python3-onnx (a PATH python3 may not). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const TESTDATA = '/usr/share/libonnx-testdata/data/node';

const importable = new Map<string, boolean>();
function hasModule(name: string): boolean {
  if (!importable.has(name)) {
    const r = spawnSync(PYTHON, ['-c', `import ${name}`], { encoding: 'utf8' });
    importable.set(name, r.status === 0);
  }
  return importable.get(name)!;
}

/** Runs a script with JSON on stdin; its stdout is JSON. A failing script fails the test (only a missing module skips). */
function python<T>(script: string, input: unknown, args: string[] = []): T {
  const r = spawnSync(PYTHON, ['-c', script, ...args], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as T;
}

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);
/** float32 value of a bit pattern, and back. */
const f32 = (bits: number): number => ((U[0] = bits), F[0]!);
const bitsOf = (v: number): number => ((F[0] = v), U[0]!);
const hex = (v: number, w = 4): string => `0x${v.toString(16).padStart(w, '0')}`;

/** Float32Array holding exactly these bit patterns (so NaN payloads reach the code under test). */
function fromBits(bits: ArrayLike<number>): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

/** Deterministic 32-bit words (mulberry32, src/util/random.ts), so failures reproduce. */
function prng(seed: number): () => number {
  const r = mulberry32(seed);
  return () => r() * 4294967296;
}

const isF16NaN = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBF16NaN = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;

/**
 * float32 inputs that probe float16 and bfloat16 rounding: specials, NaNs with payloads, overflow and underflow
 * boundaries, every float16 value, every midpoint between adjacent float16 values (the ties) and the float32
 * neighbours of each midpoint, and random bit patterns.
 */
function probeBits(): number[] {
  const out: number[] = [
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xffa00000, 0x7fbfffff,
    0x00000001, 0x807fffff, 0x7f7fffff, 0xff7fffff,
  ];
  for (const v of [65504, 65519, 65519.99609375, 65520, 65536, 1e10, -65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26,
    1.5 * 2 ** -24, 2.5 * 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -14, 2 ** -14 - 2 ** -25, 1e-8, 0.1, 1 / 3]) {
    out.push(bitsOf(v), bitsOf(-v));
  }
  const all = float16ToFloat32(Uint16Array.from({ length: 0x7c00 }, (_, i) => i));
  for (let i = 0; i < all.length; i++) {
    out.push(bitsOf(all[i]!), bitsOf(-all[i]!));
    if (i + 1 < all.length) {
      const mid = bitsOf((all[i]! + all[i + 1]!) / 2); // exact: 12 significant bits
      out.push(mid, mid - 1, mid + 1, (mid | 0x80000000) >>> 0);
    }
  }
  const rnd = prng(42);
  for (let i = 0; i < 20000; i++) out.push(rnd());
  return out;
}

// ----------------------------------------------------------------------------------------------------------------
// float16

describe('onnx/codecs float16', function () {
  it('decodes and re-encodes every one of the 65536 bit patterns to itself (NaNs to a NaN)', function () {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const back = float32ToFloat16(float16ToFloat32(all));
    for (let h = 0; h < 65536; h++) {
      if (isF16NaN(h)) {
        expect(isF16NaN(back[h]!), hex(h)).to.equal(true);
        expect(back[h]! & 0x8000, `sign of ${hex(h)}`).to.equal(h & 0x8000);
      } else {
        expect(back[h], hex(h)).to.equal(h);
      }
    }
  });

  it('has the IEEE binary16 landmarks', function () {
    const v = float16ToFloat32(new Uint16Array([0x3c00, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x7e00]));
    expect([...v.subarray(0, 7)]).to.deep.equal([1, 65504, 2 ** -14, 2 ** -24, 1023 * 2 ** -24, Infinity, -Infinity]);
    expect(Object.is(v[7], -0)).to.equal(true);
    expect(v[8]).to.be.NaN;
    const e = float32ToFloat16([65504, 65519, 65520, 1e9, -1e9, 2 ** -25, 2 ** -25 * 1.0001, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0, NaN]);
    expect([...e].map((x) => hex(x))).to.deep.equal(
      ['0x7bff', '0x7bff', '0x7c00', '0x7c00', '0xfc00', '0x0000', '0x0001', '0x3c00', '0x3c02', '0x8000', '0x7e00'],
    );
  });

  it('matches numpy float16 bit for bit (decode: all 65536 patterns; encode: ties, subnormals, overflow, NaN, -0, random)', function () {
    if (!hasModule('numpy')) this.skip();
    const inputs = probeBits();
    const ref = python<{ enc: number[]; dec: number[] }>(
      `
import sys, json, numpy as np
bits = np.array(json.load(sys.stdin), dtype=np.uint32)
with np.errstate(all='ignore'):
    enc = bits.view(np.float32).astype(np.float16).view(np.uint16)
    dec = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
json.dump({'enc': enc.tolist(), 'dec': dec.tolist()}, sys.stdout)
`,
      inputs,
    );
    const dec = new Uint32Array(float16ToFloat32(Uint16Array.from({ length: 65536 }, (_, i) => i)).buffer);
    for (let h = 0; h < 65536; h++) expect(dec[h], `decode ${hex(h)}`).to.equal(ref.dec[h]);
    const enc = float32ToFloat16(fromBits(inputs));
    let checked = 0;
    for (let i = 0; i < inputs.length; i++) {
      const want = ref.enc[i]!;
      if (isF16NaN(want)) {
        // NaN payloads: numpy truncates, we also set the quiet bit; both are NaN with the input's sign
        expect(isF16NaN(enc[i]!), `encode ${hex(inputs[i]!, 8)}`).to.equal(true);
        expect(enc[i]! & 0x8000).to.equal(want & 0x8000);
      } else {
        expect(hex(enc[i]!), `encode ${hex(inputs[i]!, 8)} (${f32(inputs[i]!)})`).to.equal(hex(want));
      }
      checked++;
    }
    expect(checked).to.be.greaterThan(100000);
    // plain numbers go through float32 first, same bits
    expect([...float32ToFloat16([0.1, -2.5e-8, 70000])]).to.deep.equal([...float32ToFloat16(Float32Array.of(0.1, -2.5e-8, 70000))]);
  });
});

// ----------------------------------------------------------------------------------------------------------------
// bfloat16

describe('onnx/codecs bfloat16', function () {
  it('decodes and re-encodes every one of the 65536 bit patterns to itself (NaNs to a NaN)', function () {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const back = float32ToBfloat16(bfloat16ToFloat32(all));
    for (let h = 0; h < 65536; h++) {
      if (isBF16NaN(h)) expect(isBF16NaN(back[h]!), hex(h)).to.equal(true);
      else expect(back[h], hex(h)).to.equal(h);
    }
  });

  it('rounds to nearest even, overflows to inf, keeps NaN', function () {
    const e = float32ToBfloat16(fromBits([0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff, 0xff7f8000, 0x7f800001, 0x80000000]));
    expect([...e].map((x) => hex(x))).to.deep.equal(['0x3f80', '0x3f82', '0x3f81', '0x7f80', '0xff80', '0x7fc0', '0x8000']);
  });

  it('matches torch bfloat16 bit for bit', function () {
    if (!hasModule('numpy') || !hasModule('torch')) this.skip();
    const inputs = probeBits();
    // torch 1.13 refuses bit views on some builds; numpy carries the bits in and out
    const ref = python<{ enc: number[]; dec: number[] }>(
      `
import sys, json, numpy as np, torch
bits = np.array(json.load(sys.stdin), dtype=np.uint32)
enc = torch.from_numpy(bits.view(np.float32).copy()).to(torch.bfloat16).view(torch.int16).numpy().astype(np.uint16)
pat = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).copy()
dec = torch.from_numpy(pat).view(torch.bfloat16).to(torch.float32).numpy().view(np.uint32)
json.dump({'enc': enc.tolist(), 'dec': dec.tolist()}, sys.stdout)
`,
      inputs,
    );
    const dec = new Uint32Array(bfloat16ToFloat32(Uint16Array.from({ length: 65536 }, (_, i) => i)).buffer);
    for (let h = 0; h < 65536; h++) {
      if (isBF16NaN(h)) expect(Number.isNaN(f32(ref.dec[h]!)) && Number.isNaN(f32(dec[h]!)), hex(h)).to.equal(true);
      else expect(dec[h], `decode ${hex(h)}`).to.equal(ref.dec[h]);
    }
    const enc = float32ToBfloat16(fromBits(inputs));
    for (let i = 0; i < inputs.length; i++) {
      const want = ref.enc[i]!;
      if (isBF16NaN(want)) expect(isBF16NaN(enc[i]!), `encode ${hex(inputs[i]!, 8)}`).to.equal(true);
      else expect(hex(enc[i]!), `encode ${hex(inputs[i]!, 8)} (${f32(inputs[i]!)})`).to.equal(hex(want));
    }
  });
});

// ----------------------------------------------------------------------------------------------------------------
// ONNX Cast conformance data

interface CastCase {
  input_0: { dtype: string; bits: string[] };
  output_0: { dtype: string; bits: string[] };
}

describe('onnx/codecs vs ONNX Cast conformance data (libonnx-testdata)', function () {
  const NAMES = [
    'test_cast_FLOAT_to_FLOAT16',
    'test_cast_FLOAT16_to_FLOAT',
    'test_cast_FLOAT16_to_DOUBLE',
    'test_cast_BFLOAT16_to_FLOAT',
    'test_cast_FLOAT_to_BFLOAT16',
  ];
  let cases: Record<string, CastCase> = {};

  before(function () {
    if (!existsSync(TESTDATA) || !hasModule('onnx') || !hasModule('numpy')) this.skip();
    // Bits travel as hex strings: JSON numbers can't carry float64 bit patterns or NaN.
    cases = python<Record<string, CastCase>>(
      `
import sys, os, json, numpy as np, onnx
from onnx import numpy_helper
root = sys.argv[1]
res = {}
for name in json.load(sys.stdin):
    d = os.path.join(root, name, 'test_data_set_0')
    if not os.path.isdir(d):
        continue
    entry = {}
    for f in ('input_0', 'output_0'):
        a = numpy_helper.to_array(onnx.load_tensor(os.path.join(d, f + '.pb'))).ravel()
        u = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
        entry[f] = {'dtype': str(a.dtype), 'bits': [format(int(v), 'x') for v in a.view(u)]}
    res[name] = entry
json.dump(res, sys.stdout)
`,
      NAMES,
      [TESTDATA],
    );
  });

  const u32 = (c: CastCase['input_0']): Uint32Array => Uint32Array.from(c.bits, (b) => parseInt(b, 16));
  const u16 = (c: CastCase['input_0']): Uint16Array => Uint16Array.from(c.bits, (b) => parseInt(b, 16));
  function need(this: Mocha.Context, name: string): CastCase {
    const c = cases[name];
    if (!c) this.skip();
    return c;
  }

  it('test_cast_FLOAT_to_FLOAT16: float32ToFloat16 gives the expected bits', function () {
    const c = need.call(this, 'test_cast_FLOAT_to_FLOAT16');
    const got = float32ToFloat16(new Float32Array(u32(c.input_0).buffer));
    const want = u16(c.output_0);
    expect(got.length).to.equal(want.length).and.to.be.greaterThan(0);
    for (let i = 0; i < want.length; i++) {
      if (isF16NaN(want[i]!)) expect(isF16NaN(got[i]!)).to.equal(true);
      else expect(hex(got[i]!), `element ${i}`).to.equal(hex(want[i]!));
    }
  });

  it('test_cast_FLOAT16_to_FLOAT and _to_DOUBLE: float16ToFloat32 gives the expected values', function () {
    const c = need.call(this, 'test_cast_FLOAT16_to_FLOAT');
    const got = new Uint32Array(float16ToFloat32(u16(c.input_0)).buffer);
    expect([...got]).to.deep.equal([...u32(c.output_0)]);
    const d = need.call(this, 'test_cast_FLOAT16_to_DOUBLE');
    const asDouble = new Float64Array(BigUint64Array.from(d.output_0.bits, (b) => BigInt(`0x${b}`)).buffer);
    const mine = toFloat32(u16(d.input_0), 'float16', asDouble.length);
    expect([...mine]).to.deep.equal([...asDouble]);
  });

  it('test_cast_BFLOAT16_to_FLOAT: bfloat16ToFloat32 gives the expected values', function () {
    const c = need.call(this, 'test_cast_BFLOAT16_to_FLOAT');
    const got = new Uint32Array(bfloat16ToFloat32(u16(c.input_0)).buffer);
    const want = u32(c.output_0);
    for (let i = 0; i < want.length; i++) {
      if (Number.isNaN(f32(want[i]!))) expect(Number.isNaN(f32(got[i]!))).to.equal(true);
      else expect(got[i], `element ${i}`).to.equal(want[i]);
    }
  });

  it('test_cast_FLOAT_to_BFLOAT16: same bits where truncation and round-to-nearest-even agree, one ulp up where not', function () {
    // onnx 1.12 generated this case by truncating (upper 16 bits); ONNX Cast rounds to nearest even since, and so
    // do we. Where the dropped half is below 0x8000 both agree exactly; above it, RNE is exactly one ulp higher.
    const c = need.call(this, 'test_cast_FLOAT_to_BFLOAT16');
    const input = u32(c.input_0);
    const got = float32ToBfloat16(new Float32Array(input.buffer));
    const want = u16(c.output_0);
    let same = 0;
    for (let i = 0; i < want.length; i++) {
      const b = input[i]!;
      if (Number.isNaN(f32(b))) {
        expect(isBF16NaN(got[i]!)).to.equal(true);
        continue;
      }
      expect(want[i], 'the data is truncation').to.equal(b >>> 16);
      const dropped = b & 0xffff;
      const up = dropped > 0x8000 || (dropped === 0x8000 && (want[i]! & 1) === 1);
      expect(got[i], `element ${i} (${f32(b)})`).to.equal(up ? want[i]! + 1 : want[i]!);
      if (!up) same++;
    }
    expect(same).to.be.greaterThan(0);
  });
});

// ----------------------------------------------------------------------------------------------------------------
// float8

interface RefFormat {
  man: number;
  bias: number;
  /** largest finite magnitude pattern */
  max: number;
  maxValue: number;
  /** what rounding past max gives without saturation */
  overflow: 'nan' | 'inf';
  uz: boolean;
}

/** The four float8 formats as the ONNX spec (docs/Operators.md, Cast; onnx float8 technical note) defines them. */
const REF: Record<Exclude<Float8DType, 'float8e8m0'>, RefFormat> = {
  float8e4m3fn: { man: 3, bias: 7, max: 0x7e, maxValue: 448, overflow: 'nan', uz: false },
  float8e4m3fnuz: { man: 3, bias: 8, max: 0x7f, maxValue: 240, overflow: 'nan', uz: true },
  float8e5m2: { man: 2, bias: 15, max: 0x7b, maxValue: 57344, overflow: 'inf', uz: false },
  float8e5m2fnuz: { man: 2, bias: 16, max: 0x7f, maxValue: 57344, overflow: 'nan', uz: true },
};
const F8_TYPES = Object.keys(REF) as (keyof typeof REF)[];

/** The magnitude of pattern p read as a plain binary float (p = max + 1 gives the first value past the range). */
function refValue(f: RefFormat, p: number): number {
  const e = p >> f.man;
  const m = p & ((1 << f.man) - 1);
  return e === 0 ? m * 2 ** (1 - f.bias - f.man) : (1 + m / 2 ** f.man) * 2 ** (e - f.bias);
}

/**
 * Reference encoder by search over the value table: the nearest value, ties to the even pattern; with saturation
 * the input is first clamped to ±max (what onnx's reference Cast does before `astype`). Returns a pattern or 'nan'.
 */
function refEncode(f: RefFormat, x: number, saturate: boolean): number | 'nan' {
  if (Number.isNaN(x)) return 'nan';
  const neg = x < 0 || Object.is(x, -0);
  let a = Math.abs(x);
  if (saturate && a > f.maxValue) a = f.maxValue;
  let best = f.max + 1;
  // past the first out-of-range value nothing is nearer (and doubles can't tell 1e30 - 448 from 1e30 - 480)
  if (a <= refValue(f, f.max + 1)) {
    let bestD = Infinity;
    for (let p = 0; p <= f.max + 1; p++) {
      const d = Math.abs(refValue(f, p) - a);
      if (d < bestD || (d === bestD && p % 2 === 0)) {
        best = p;
        bestD = d;
      }
    }
  }
  if (best === f.max + 1) return f.overflow === 'inf' ? (neg ? 0xfc : 0x7c) : 'nan';
  if (best === 0 && f.uz) return 0;
  return (neg ? 0x80 : 0) | best;
}

describe('onnx/codecs float8', function () {
  it('has the spec values', function () {
    const d = (dt: Float8DType, ...b: number[]): number[] => [...float8ToFloat32(Uint8Array.from(b), dt)];
    expect(d('float8e4m3fn', 0x7e, 0xfe, 0x38, 0x01, 0x08, 0x00)).to.deep.equal([448, -448, 1, 2 ** -9, 2 ** -6, 0]);
    expect(Object.is(d('float8e4m3fn', 0x80)[0], -0)).to.equal(true);
    expect(d('float8e4m3fn', 0x7f, 0xff).every(Number.isNaN)).to.equal(true);
    expect(d('float8e4m3fnuz', 0x7f, 0xff, 0x40, 0x01, 0x00)).to.deep.equal([240, -240, 1, 2 ** -10, 0]);
    expect(d('float8e4m3fnuz', 0x80).every(Number.isNaN)).to.equal(true);
    expect(d('float8e5m2', 0x7c, 0xfc, 0x7b, 0x3c, 0x01)).to.deep.equal([Infinity, -Infinity, 57344, 1, 2 ** -16]);
    expect(d('float8e5m2', 0x7d, 0x7e, 0x7f, 0xfd, 0xff).every(Number.isNaN)).to.equal(true);
    expect(d('float8e5m2fnuz', 0x7f, 0xff, 0x40, 0x01, 0x00)).to.deep.equal([57344, -57344, 1, 2 ** -17, 0]);
    expect(d('float8e5m2fnuz', 0x80).every(Number.isNaN)).to.equal(true);
    expect(d('float8e8m0', 0x7f, 0x00, 0x01, 0xfe, 0x80)).to.deep.equal([1, 2 ** -127, 2 ** -126, 2 ** 127, 2]);
    expect(Number.isNaN(d('float8e8m0', 0xff)[0])).to.equal(true);
    for (const t of F8_TYPES) {
      // NaN is the only non-finite value of the FN types: all other 255 patterns are finite or (E5M2) inf
      const all = d(t, ...Array.from({ length: 256 }, (_, i) => i));
      expect(all.filter(Number.isNaN).length, t).to.equal({ float8e4m3fn: 2, float8e4m3fnuz: 1, float8e5m2: 6, float8e5m2fnuz: 1 }[t]);
      expect(refValue(REF[t], REF[t].max), t).to.equal(REF[t].maxValue);
    }
  });

  for (const t of F8_TYPES) {
    it(`${t}: every one of the 256 patterns decodes and re-encodes to itself (NaNs to a NaN)`, function () {
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const values = float8ToFloat32(all, t);
      for (const saturate of [false, true]) {
        const back = float32ToFloat8(values, t, { saturate });
        for (let p = 0; p < 256; p++) {
          const v = values[p]!;
          if (Number.isNaN(v)) expect(float8ToFloat32(back.subarray(p, p + 1), t)[0], hex(p, 2)).to.be.NaN;
          else if (saturate && !Number.isFinite(v)) expect(back[p], hex(p, 2)).to.equal((p & 0x80) | REF[t].max);
          else expect(back[p], `${hex(p, 2)} (${v}) saturate=${saturate}`).to.equal(p);
        }
      }
    });

    it(`${t}: follows the Cast tables for 0, -0, NaN, ±inf and overflow`, function () {
      const f = REF[t];
      const enc = (x: number, saturate: boolean): number => float32ToFloat8([x], t, { saturate })[0]!;
      const nan = f.uz ? 0x80 : 0x7f & ~((1 << f.man) - 1) | ((1 << f.man) - 1);
      for (const s of [true, false]) {
        expect(enc(0, s)).to.equal(0);
        expect(enc(-0, s)).to.equal(f.uz ? 0 : 0x80);
        expect(Number.isNaN(float8ToFloat32(Uint8Array.of(enc(NaN, s)), t)[0])).to.equal(true);
        expect(enc(-1e-30, s), 'negatives rounding to zero').to.equal(f.uz ? 0 : 0x80);
      }
      expect(enc(Infinity, true)).to.equal(f.max);
      expect(enc(-Infinity, true)).to.equal(0x80 | f.max);
      expect(enc(1e30, true)).to.equal(f.max);
      expect(enc(-1e30, true)).to.equal(0x80 | f.max);
      const over = [enc(Infinity, false), enc(-Infinity, false), enc(1e30, false), enc(-1e30, false)];
      if (f.overflow === 'inf') expect(over).to.deep.equal([0x7c, 0xfc, 0x7c, 0xfc]);
      else expect([...float8ToFloat32(Uint8Array.from(over), t)].every(Number.isNaN), `${over.map((o) => hex(o, 2))} vs ${hex(nan, 2)}`).to.equal(true);
    });

    it(`${t}: encodes like a nearest-value search (ties to even, saturation as Cast)`, function () {
      const f = REF[t];
      const probe: number[] = [0, 1e-30, 1e-10, 1e6, 1e30, Infinity, NaN];
      for (let p = 0; p <= f.max + 1; p++) {
        probe.push(refValue(f, p));
        if (p <= f.max) {
          const mid = (refValue(f, p) + refValue(f, p + 1)) / 2; // the tie, exact in float32
          probe.push(mid, f32(bitsOf(mid) + 1), f32(bitsOf(mid) - 1));
        }
      }
      const rnd = prng(7);
      for (let i = 0; i < 4000; i++) probe.push(f32(rnd()));
      const xs = Float32Array.from([...probe, ...probe.map((v) => -v)]);
      for (const saturate of [true, false]) {
        const got = float32ToFloat8(xs, t, { saturate });
        for (let i = 0; i < xs.length; i++) {
          const want = refEncode(f, xs[i]!, saturate);
          const msg = `${t} ${xs[i]} (${hex(bitsOf(xs[i]!), 8)}) saturate=${saturate}`;
          if (want === 'nan') expect(float8ToFloat32(got.subarray(i, i + 1), t)[0], msg).to.be.NaN;
          else expect(hex(got[i]!, 2), msg).to.equal(hex(want, 2));
        }
      }
      fc.assert(
        fc.property(fc.float(), fc.boolean(), (x, saturate) => {
          const got = float32ToFloat8([x], t, { saturate })[0]!;
          const want = refEncode(f, x, saturate);
          if (want === 'nan') return Number.isNaN(float8ToFloat32(Uint8Array.of(got), t)[0]);
          return got === want;
        }),
        { numRuns: 3000 },
      );
    });
  }
});

/** A transcription of onnx's numpy_helper.to_float8e8m0 (onnx main) for one float32, for normal inputs. */
function onnxToFloat8e8m0(bits: number, saturate: boolean, mode: 'up' | 'down' | 'nearest'): number {
  let exponent = (bits >>> 23) & 0xff;
  if (exponent === 0xff) return 0xff;
  if (mode === 'nearest') {
    const g = (bits & 0x400000) > 0;
    const r = (bits & 0x200000) > 0;
    const s = (bits & 0x1fffff) > 0;
    const lsb = exponent > 0;
    const roundUp = g && (r || s || lsb);
    if (roundUp && !(saturate && exponent === 0xfe)) exponent += 1;
  } else if (mode === 'up') {
    const roundUp = (bits & 0x7fffff) > 0;
    if (roundUp && !(saturate && exponent === 0xfe)) exponent += 1;
  }
  return exponent & 0xff;
}

describe('onnx/codecs float8e8m0', function () {
  const MODES = ['up', 'down', 'nearest'] as const;

  it('every one of the 256 patterns re-encodes to itself under every mode', function () {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const values = float8ToFloat32(all, 'float8e8m0');
    for (const roundMode of MODES) {
      for (const saturate of [true, false]) {
        expect([...float32ToFloat8(values, 'float8e8m0', { roundMode, saturate })], `${roundMode} ${saturate}`).to.deep.equal([...all]);
      }
    }
  });

  it('rounds up by default, down or to nearest (ties up) on request', function () {
    const xs = [1, 1.25, 1.5, 1.75, 3, 0.3, 6];
    expect([...float32ToFloat8(xs, 'float8e8m0')]).to.deep.equal([0x7f, 0x80, 0x80, 0x80, 0x81, 0x7e, 0x82]);
    expect([...float32ToFloat8(xs, 'float8e8m0', { roundMode: 'down' })]).to.deep.equal([0x7f, 0x7f, 0x7f, 0x7f, 0x80, 0x7d, 0x81]);
    expect([...float32ToFloat8(xs, 'float8e8m0', { roundMode: 'nearest' })]).to.deep.equal([0x7f, 0x7f, 0x80, 0x80, 0x81, 0x7d, 0x82]);
  });

  it('follows the Cast table for 0, NaN, inf and overflow', function () {
    const enc = (x: number, saturate: boolean, roundMode: 'up' | 'nearest' = 'up'): number =>
      float32ToFloat8([x], 'float8e8m0', { saturate, roundMode })[0]!;
    expect([enc(0, true), enc(NaN, true), enc(Infinity, true), enc(2 ** 127 * 1.5, true), enc(1e-45, true)]).to.deep.equal([0x00, 0xff, 0xfe, 0xfe, 0x00]);
    expect([enc(0, false, 'nearest'), enc(NaN, false), enc(Infinity, false, 'nearest'), enc(2 ** 127 * 1.5, false, 'nearest'), enc(1e-45, false, 'nearest')])
      .to.deep.equal([0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(enc(-4, true), 'sign ignored, as onnx reference').to.equal(0x81);
    expect(() => float32ToFloat8([1], 'float8e8m0', { roundMode: 'sideways' as 'up' })).to.throw(OptionsError, /roundMode/);
  });

  it("matches onnx's reference to_float8e8m0 on normal inputs, every mode", function () {
    fc.assert(
      fc.property(fc.integer({ min: 0x00800000, max: 0x7f7fffff }), fc.boolean(), fc.constantFrom(...MODES), fc.boolean(), (a, neg, mode, saturate) => {
        const b = (neg ? a | 0x80000000 : a) >>> 0;
        const got = float32ToFloat8(fromBits([b]), 'float8e8m0', { roundMode: mode, saturate })[0];
        // the reference wraps 0xFE + 1 to 0xFF (NaN) when not saturating, as we do
        return got === onnxToFloat8e8m0(b, saturate, mode);
      }),
      { numRuns: 20000 },
    );
    // the exponent boundaries, exhaustively
    for (let e = 1; e < 255; e++) {
      for (const m of [0, 1, 0x1fffff, 0x200000, 0x3fffff, 0x400000, 0x400001, 0x600000, 0x7fffff]) {
        const b = (e << 23) | m;
        for (const mode of MODES) {
          for (const saturate of [true, false]) {
            expect(float32ToFloat8(fromBits([b]), 'float8e8m0', { roundMode: mode, saturate })[0], `${hex(b, 8)} ${mode} ${saturate}`)
              .to.equal(onnxToFloat8e8m0(b, saturate, mode));
          }
        }
      }
    }
  });
});

// ----------------------------------------------------------------------------------------------------------------
// float4e2m1

const F4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** Reference: nearest of the 8 magnitudes, ties to the even code, ±6 beyond; NaN -> 0x7 (onnx's subbyte reference). */
function refF4(x: number): number {
  if (Number.isNaN(x)) return 0x7;
  const sign = x < 0 || Object.is(x, -0) ? 0x8 : 0;
  const a = Math.abs(x);
  if (a >= 6) return sign | 7; // saturate (and spare the search doubles that can't tell 1e17 - 4 from 1e17 - 6)
  let best = 7;
  let bestD = Infinity;
  for (let c = 0; c < 8; c++) {
    const d = Math.abs(F4[c]! - a);
    if (d < bestD || (d === bestD && c % 2 === 0)) {
      best = c;
      bestD = d;
    }
  }
  return sign | best;
}

describe('onnx/codecs float4e2m1', function () {
  it('decodes all 16 codes and re-encodes them to themselves', function () {
    const codes = Array.from({ length: 16 }, (_, i) => i);
    const packed = Uint8Array.from({ length: 8 }, (_, i) => codes[2 * i]! | (codes[2 * i + 1]! << 4));
    const v = float4e2m1ToFloat32(packed, 16);
    expect([...v]).to.deep.equal([...F4, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);
    expect(Object.is(v[8], -0)).to.equal(true);
    expect([...float32ToFloat4e2m1(v)]).to.deep.equal([...packed]);
  });

  it('packs low nibble first and pads an odd count with 0', function () {
    expect([...float32ToFloat4e2m1([1, -6, 0.5])]).to.deep.equal([0xf2, 0x01]);
    expect([...float4e2m1ToFloat32(Uint8Array.of(0xf2, 0x01), 3)]).to.deep.equal([1, -6, 0.5]);
    expect(() => float4e2m1ToFloat32(Uint8Array.of(0xf2), 3)).to.throw(OptionsError, /2 packed bytes/);
  });

  it('rounds to nearest even and saturates (the onnx reference thresholds)', function () {
    const xs = [0.25, 0.26, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 5.01, 1e9, Infinity, -Infinity, NaN, -0.1];
    const codes = [0x0, 0x1, 0x2, 0x2, 0x4, 0x4, 0x6, 0x6, 0x7, 0x7, 0x7, 0xf, 0x7, 0x8];
    const packed = float32ToFloat4e2m1(xs);
    const got = Array.from({ length: xs.length }, (_, i) => (packed[i >> 1]! >> ((i & 1) * 4)) & 0xf);
    expect(got).to.deep.equal(codes);
    fc.assert(
      fc.property(fc.array(fc.float(), { maxLength: 9 }), (arr) => {
        const p = float32ToFloat4e2m1(arr);
        if (p.length !== Math.ceil(arr.length / 2)) return false;
        return arr.every((x, i) => ((p[i >> 1]! >> ((i & 1) * 4)) & 0xf) === refF4(Math.fround(x)));
      }),
      { numRuns: 3000 },
    );
  });
});

// ----------------------------------------------------------------------------------------------------------------
// packed integers

describe('onnx/codecs packed integers', function () {
  const kinds = [
    { name: 'int4', lo: -8, hi: 7, per: 2, pack: packInt4, unpack: unpackInt4 },
    { name: 'uint4', lo: 0, hi: 15, per: 2, pack: packUint4, unpack: unpackUint4 },
    { name: 'int2', lo: -2, hi: 1, per: 4, pack: packInt2, unpack: unpackInt2 },
    { name: 'uint2', lo: 0, hi: 3, per: 4, pack: packUint2, unpack: unpackUint2 },
  ] as const;

  for (const k of kinds) {
    it(`${k.name}: unpack(pack(v)) = v for any in-range values, ${k.per} per byte`, function () {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: k.lo, max: k.hi }), { maxLength: 67 }), (v) => {
          const p = k.pack(v);
          return p.length === Math.ceil(v.length / k.per) && [...k.unpack(p, v.length)].every((x, i) => x === v[i]);
        }),
      );
      // every byte unpacks and repacks to itself
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      expect([...k.pack(k.unpack(all, 256 * k.per))]).to.deep.equal([...all]);
    });

    it(`${k.name}: packing refuses out-of-range and non-integer values, naming index and value`, function () {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: k.lo, max: k.hi }), { maxLength: 9 }),
          fc.oneof(fc.integer({ min: k.hi + 1, max: 1000 }), fc.integer({ min: -1000, max: k.lo - 1 })),
          (prefix, bad) => {
            try {
              k.pack([...prefix, bad]);
              return false;
            } catch (e) {
              return e instanceof OptionsError && e.message.includes(`element ${prefix.length}`) && e.message.includes(String(bad));
            }
          },
        ),
      );
      expect(() => k.pack([0, 0.5])).to.throw(OptionsError, /element 1 but received 0\.5/);
      expect(() => k.pack([NaN])).to.throw(OptionsError, /element 0/);
      expect(() => k.unpack(new Uint8Array(1), k.per + 1)).to.throw(OptionsError);
    });
  }

  it('uses ONNX layout: low bits first', function () {
    expect([...packInt4([1, 2, -1])]).to.deep.equal([0x21, 0x0f]);
    expect([...unpackInt4(Uint8Array.of(0x8f, 0x07), 3)]).to.deep.equal([-1, -8, 7]);
    expect([...packUint2([0, 1, 2, 3, 1])]).to.deep.equal([0b11_10_01_00, 0b01]);
    expect([...unpackInt2(Uint8Array.of(0b01_00_11_10), 4)]).to.deep.equal([-2, -1, 0, 1]);
  });
});

// ----------------------------------------------------------------------------------------------------------------
// toFloat32 / fromFloat32

describe('onnx/codecs toFloat32 / fromFloat32', function () {
  const values = Float32Array.of(0, 1, -1, 2, -2, 3, 0.5, 7, -8);

  it('round-trips values each dtype can hold exactly', function () {
    const cases: [DType, Float32Array][] = [
      ['float32', Float32Array.of(0.1, -3.5e38, 1e-45)],
      ['float64', Float32Array.of(0.1, -3.5e38)],
      ['float16', Float32Array.of(0.5, -65504, 2 ** -24)],
      ['bfloat16', Float32Array.of(1, -3.140625, 2 ** 100)],
      ['float8e4m3fn', Float32Array.of(448, -1, 2 ** -9)],
      ['float8e4m3fnuz', Float32Array.of(240, -1, 2 ** -10)],
      ['float8e5m2', Float32Array.of(57344, -1, 2 ** -16)],
      ['float8e5m2fnuz', Float32Array.of(57344, -1, 2 ** -17)],
      ['float8e8m0', Float32Array.of(1, 2 ** -127, 2 ** 127)],
      ['float4e2m1', Float32Array.of(6, -0.5, 3)],
      ['int8', Float32Array.of(-128, 127, 0)],
      ['uint8', Float32Array.of(0, 255)],
      ['int16', Float32Array.of(-32768, 32767)],
      ['uint16', Float32Array.of(65535)],
      ['int32', Float32Array.of(-2147483648, 16777216)],
      ['uint32', Float32Array.of(4294967040)],
      ['int64', Float32Array.of(-(2 ** 62), 2 ** 40)],
      ['uint64', Float32Array.of(2 ** 63, 1)],
      ['int4', Float32Array.of(-8, 7, -1)],
      ['uint4', Float32Array.of(0, 15, 9)],
      ['int2', Float32Array.of(-2, 1, -1, 0, 1)],
      ['uint2', Float32Array.of(3, 0, 2)],
      ['bool', Float32Array.of(1, 0, 1)],
    ];
    for (const [dt, v] of cases) {
      expect([...toFloat32(fromFloat32(v, dt), dt, v.length)], dt).to.deep.equal([...v]);
    }
    expect([...toFloat32(fromFloat32(values, 'int4'), 'int4', values.length)]).to.deep.equal([0, 1, -1, 2, -2, 3, 0, 7, -8]);
  });

  it('rounds half to even and saturates integers; NaN to 0; bool is x != 0', function () {
    const x = Float32Array.of(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 126.5, 127.5, 300, -300, NaN, Infinity, -Infinity);
    expect([...fromFloat32(x, 'int8')]).to.deep.equal([-2, -2, 0, 0, 2, 2, 126, 127, 127, -128, 0, 127, -128]);
    expect([...fromFloat32(x, 'uint8')]).to.deep.equal([0, 0, 0, 0, 2, 2, 126, 128, 255, 0, 0, 255, 0]);
    expect([...fromFloat32(x, 'int64')]).to.deep.equal([-2n, -2n, 0n, 0n, 2n, 2n, 126n, 128n, 300n, -300n, 0n, 2n ** 63n - 1n, -(2n ** 63n)]);
    expect([...fromFloat32(x, 'uint64')].slice(-3)).to.deep.equal([0n, 2n ** 64n - 1n, 0n]);
    expect([...toFloat32(fromFloat32(x, 'int4'), 'int4', x.length)]).to.deep.equal([-2, -2, 0, 0, 2, 2, 7, 7, 7, -8, 0, 7, -8]);
    expect([...toFloat32(fromFloat32(x, 'uint2'), 'uint2', x.length)]).to.deep.equal([0, 0, 0, 0, 2, 2, 3, 3, 3, 0, 0, 3, 0]);
    expect([...fromFloat32(Float32Array.of(0, -0, 0.1, NaN, -3), 'bool')]).to.deep.equal([0, 0, 1, 1, 1]);
    expect([...toFloat32(Uint8Array.of(0, 1, 7), 'bool', 3)]).to.deep.equal([0, 1, 1]);
    expect([...fromFloat32(Float32Array.of(2 ** 31, -(2 ** 31) - 512, 1.5), 'int32')]).to.deep.equal([2147483647, -2147483648, 2]);
  });

  it('matches numpy rint + clip for integer targets', function () {
    if (!hasModule('numpy')) this.skip();
    const rnd = prng(3);
    const xs = Float32Array.from({ length: 5000 }, (_, i) => (i < 2000 ? (rnd() / 2 ** 32 - 0.5) * 600 : Math.round((rnd() / 2 ** 32 - 0.5) * 800) / 2));
    const ref = python<Record<string, number[]>>(
      `
import sys, json, numpy as np
x = np.array(json.load(sys.stdin), dtype=np.float32)
r = np.rint(x)
out = {}
for name, lo, hi in [('int8', -128, 127), ('uint8', 0, 255), ('int16', -32768, 32767), ('int4', -8, 7), ('uint2', 0, 3)]:
    out[name] = np.clip(r, lo, hi).astype(np.int64).tolist()
json.dump(out, sys.stdout)
`,
      Array.from(xs),
    );
    for (const dt of ['int8', 'uint8', 'int16'] as const) expect([...(fromFloat32(xs, dt) as Int8Array)], dt).to.deep.equal(ref[dt]);
    for (const dt of ['int4', 'uint2'] as const) expect([...toFloat32(fromFloat32(xs, dt), dt, xs.length)], dt).to.deep.equal(ref[dt]);
  });

  it('decodes int64/uint64 via Number and float64 rounded to float32; honours count', function () {
    expect([...toFloat32(BigInt64Array.of(-(2n ** 63n), 5n), 'int64', 2)]).to.deep.equal([-(2 ** 63), 5]);
    expect([...toFloat32(BigUint64Array.of(2n ** 64n - 1n), 'uint64', 1)]).to.deep.equal([2 ** 64]);
    expect([...toFloat32(Float64Array.of(0.1, 1e300), 'float64', 2)]).to.deep.equal([Math.fround(0.1), Infinity]);
    expect([...toFloat32(Uint16Array.of(0x3c00, 0x4000, 0x4200), 'float16', 2)]).to.deep.equal([1, 2]);
    expect([...toFloat32(Uint8Array.of(0x38, 0x40), 'float8e4m3fn', 1)]).to.deep.equal([1]);
    expect(toFloat32(Uint8Array.of(0x21), 'uint4', 1).length).to.equal(1);
    expect([...(fromFloat32(Float32Array.of(500), 'float8e4m3fn', { saturate: false }) as Uint8Array)]).to.deep.equal([0x7f]);
  });

  it('refuses non-numeric dtypes, the wrong holder and short data', function () {
    for (const dt of ['string', 'complex64', 'complex128'] as const) {
      expect(() => toFloat32(new Float32Array(2), dt, 1), dt).to.throw(OptionsError, /real numeric/);
      expect(() => fromFloat32(new Float32Array(2), dt), dt).to.throw(OptionsError, /real numeric/);
    }
    expect(() => toFloat32(new Float32Array(1), 'float16', 1)).to.throw(OptionsError, /Uint16Array/);
    expect(() => toFloat32(new Uint8Array(1), 'int8', 1)).to.throw(OptionsError, /Int8Array/);
    expect(() => toFloat32(new Uint8Array(1), 'int4', 3)).to.throw(OptionsError, /3 elements need 2/);
    expect(() => toFloat32(new Uint16Array(1), 'float16', -1)).to.throw(OptionsError);
    expect(() => float8ToFloat32(new Uint8Array(1), 'float8e4m3' as Float8DType)).to.throw(OptionsError, /float8/);
  });
});
