/**
 * Fuzzing the loader: thousands of seeded mutations of real models (byte flips, truncations, insertions,
 * duplicated ranges, corrupted varints and length fields). Each mutant either loads — and then encodes, and the
 * encoding loads, without any error that is not an OnnxpressError — or fails with an OnnxpressError subclass.
 * Anything else (TypeError, RangeError, a crash) fails the test with the model, the seed and the mutation;
 * `mutate(bytes, fieldsOf(bytes), seed)` makes the same mutant again. Each case is timed to catch near-hangs.
 */
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxpressError, encodeModel, loadModel, saveModel } from '../../src/index.js';
import { mulberry32 } from '../../src/util/random.js';

const SEED = 0x5eed_2026;
/** 400 per model keeps the test near 15 s; set ONNXPRESS_FUZZ_CASES for a longer local run. */
const CASES_PER_CORPUS = Number(process.env.ONNXPRESS_FUZZ_CASES ?? 400);
const DATA = '/usr/share/libonnx-testdata/data';

/** Real models with different features: weights, subgraphs, sequences, optionals, strings, old IR versions. */
const CORPUS: Record<string, string> = {
  'fmnist-cnn': 'fixtures/fmnist-cnn.onnx',
  if: `${DATA}/node/test_if/model.onnx`,
  loop11: `${DATA}/node/test_loop11/model.onnx`,
  scan9: `${DATA}/node/test_scan9_sum/model.onnx`,
  constant: `${DATA}/node/test_constant/model.onnx`,
  'sequence-map': `${DATA}/node/test_sequence_map_add_2_sequences/model.onnx`,
  optional: `${DATA}/node/test_optional_get_element_sequence/model.onnx`,
  'layer-norm-expanded': `${DATA}/node/test_layer_normalization_4d_axis_negative_4_expanded/model.onnx`,
  'cast-to-string': `${DATA}/node/test_cast_FLOAT_to_STRING/model.onnx`,
  'pytorch-conv2d': `${DATA}/pytorch-converted/test_Conv2d/model.onnx`,
  'pytorch-non-float-params': `${DATA}/pytorch-operator/test_operator_non_float_params/model.onnx`,
};

/** The project's seeded generator (mulberry32), so every run sees the same data. */
const prng = mulberry32;

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

interface Field {
  /** Where the varint starts and ends. */
  start: number;
  end: number;
  value: number;
}

/**
 * Varints of the message: length prefixes of length-delimited fields, and values of varint fields (data types,
 * dims, attribute types, data locations…). Found by parsing the bytes as a message and every length-delimited
 * payload that parses as a message too (strings and raw data that happen to parse add a few).
 */
function fieldsOf(b: Uint8Array): { lengths: Field[]; values: Field[] } {
  const lengths: Field[] = [];
  const values: Field[] = [];
  const walk = (from: number, to: number, depth: number): boolean => {
    const found: Field[] = [];
    const foundValues: Field[] = [];
    const nested: [number, number][] = [];
    let i = from;
    const read = (): number | undefined => {
      let n = 0;
      let mul = 1;
      for (let k = 0; k < 10; k++) {
        if (i >= to) return undefined;
        const byte = b[i++];
        n += (byte & 0x7f) * mul;
        mul *= 128;
        if (byte < 0x80) return n;
      }
      return undefined;
    };
    while (i < to) {
      const tag = read();
      if (tag === undefined || tag >>> 3 === 0) return false;
      const wire = tag & 7;
      if (wire === 0) {
        const start = i;
        const value = read();
        if (value === undefined) return false;
        foundValues.push({ start, end: i, value });
      } else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else if (wire === 2) {
        const start = i;
        const len = read();
        if (len === undefined || i + len > to) return false;
        found.push({ start, end: i, value: len });
        nested.push([i, i + len]);
        i += len;
      } else return false;
      if (i > to) return false;
    }
    lengths.push(...found);
    values.push(...foundValues);
    if (depth < 12) for (const [s, e] of nested) if (e - s > 1 && e - s < 1 << 20) walk(s, e, depth + 1);
    return true;
  };
  walk(0, b.length, 0);
  return { lengths, values };
}

const INTERESTING = [0n, 1n, 2n, 127n, 128n, 255n, 65535n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n];

const KINDS = ['flip', 'truncate', 'insert', 'duplicate', 'varint', 'length', 'value'] as const;
type Kind = (typeof KINDS)[number];

/** Applies one seeded mutation; returns the mutant and a description that, with the seed, reproduces it. */
function mutate(orig: Uint8Array, fields: ReturnType<typeof fieldsOf>, seed: number): { bytes: Uint8Array; kind: Kind; what: string } {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const kind = KINDS[int(KINDS.length)];
  const n = orig.length;
  switch (kind) {
    case 'flip': {
      const bytes = Uint8Array.from(orig);
      const at: string[] = [];
      for (let k = 1 + int(8); k > 0; k--) {
        const p = int(n);
        const x = 1 + int(255);
        bytes[p] ^= x;
        at.push(`${p}^${x}`);
      }
      return { bytes, kind, what: `xor bytes ${at.join(', ')}` };
    }
    case 'truncate': {
      const cut = int(n);
      return { bytes: orig.slice(0, cut), kind, what: `cut at ${cut} of ${n}` };
    }
    case 'insert': {
      const p = int(n + 1);
      const ins = Array.from({ length: 1 + int(16) }, () => int(256));
      return { bytes: Uint8Array.from([...orig.subarray(0, p), ...ins, ...orig.subarray(p)]), kind, what: `insert [${ins}] at ${p}` };
    }
    case 'duplicate': {
      const a = int(n);
      const len = 1 + int(Math.min(n - a, 256));
      const p = int(n + 1);
      const range = orig.subarray(a, a + len);
      return { bytes: Uint8Array.from([...orig.subarray(0, p), ...range, ...orig.subarray(p)]), kind, what: `copy ${a}..${a + len} to ${p}` };
    }
    case 'varint': {
      // the whole varint around a random byte, replaced by an interesting or random value
      let s = int(n);
      while (s > 0 && orig[s - 1] & 0x80) s--;
      let e = s;
      while (e < n - 1 && orig[e] & 0x80 && e - s < 10) e++;
      e++;
      const v = rand() < 0.7 ? INTERESTING[int(INTERESTING.length)] : BigInt(int(2 ** 32)) * BigInt(int(2 ** 32));
      return { bytes: Uint8Array.from([...orig.subarray(0, s), ...varint(v), ...orig.subarray(e)]), kind, what: `varint at ${s}..${e} := ${v}` };
    }
    case 'length': {
      // a real length prefix, off by a little or by a lot
      const f = fields.lengths[int(fields.lengths.length)];
      const deltas = [-2, -1, 1, 2, 7, -f.value, 1 << 20];
      const v = rand() < 0.8 ? BigInt(Math.max(0, f.value + deltas[int(deltas.length)])) : INTERESTING[int(INTERESTING.length)];
      return { bytes: Uint8Array.from([...orig.subarray(0, f.start), ...varint(v), ...orig.subarray(f.end)]), kind, what: `length at ${f.start} ${f.value} := ${v}` };
    }
    case 'value': {
      // a varint field's value (a data type, a dim, an attribute type, a data location…): the message stays
      // well-formed protobuf, so this reaches the checks that build the IR
      const f = fields.values[int(fields.values.length)];
      const small = [0, 1, 2, 3, 5, 8, 11, 16, 27, 99, f.value + 1, Math.max(0, f.value - 1)];
      const v = rand() < 0.6 ? BigInt(small[int(small.length)]) : rand() < 0.5 ? INTERESTING[int(INTERESTING.length)] : -BigInt(1 + int(1000));
      return { bytes: Uint8Array.from([...orig.subarray(0, f.start), ...varint(v), ...orig.subarray(f.end)]), kind, what: `value at ${f.start} ${f.value} := ${v}` };
    }
  }
}

interface Outcome {
  result: 'loaded' | 'rejected';
  error?: string;
}

/** Loads, encodes and reloads a mutant; throws (with the cause) when something other than an OnnxpressError escapes. */
async function check(bytes: Uint8Array, source: string, baseDir?: string): Promise<Outcome> {
  let model;
  try {
    model = await loadModel(bytes, { source, baseDir });
  } catch (e) {
    if (e instanceof OnnxpressError) return { result: 'rejected', error: e.name };
    throw e;
  }
  try {
    const again = encodeModel(model);
    await loadModel(again, { source: `${source} (re-encoded)`, baseDir });
  } catch (e) {
    if (!(e instanceof OnnxpressError)) throw e;
  }
  return { result: 'loaded' };
}

describe('onnx/io fuzz: mutated real models load or fail with an OnnxpressError', function () {
  this.timeout(CASES_PER_CORPUS > 400 ? 0 : 180_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'onnxpress-fuzz-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`${CASES_PER_CORPUS} mutations of each of ${Object.keys(CORPUS).length + 1} models, each under 2 s`, async function () {
    // the CNN with its weights in external data, loaded with its folder, so mutated locations and ranges are read
    await saveModel(await loadModel(CORPUS['fmnist-cnn']), join(dir, 'ext.onnx'), { externalData: true });
    const corpora: [string, Uint8Array, string | undefined][] = [
      ...Object.entries(CORPUS).map(([name, path]): [string, Uint8Array, undefined] => [name, readFileSync(path), undefined]),
      ['fmnist-cnn-external', readFileSync(join(dir, 'ext.onnx')), dir],
    ];
    const t0 = performance.now();
    const stats = new Map<string, number>();
    const bump = (k: string) => stats.set(k, (stats.get(k) ?? 0) + 1);
    const failures: string[] = [];
    let cases = 0;
    let slowest = { ms: 0, what: '' };
    for (const [ci, [name, orig, baseDir]] of corpora.entries()) {
      // the originals themselves load
      await check(orig, name, baseDir);
      const fields = fieldsOf(orig);
      expect(fields.lengths.length, `${name}: length fields found`).to.be.greaterThan(3);
      expect(fields.values.length, `${name}: varint fields found`).to.be.greaterThan(3);
      for (let k = 0; k < CASES_PER_CORPUS; k++) {
        const seed = (SEED ^ (ci * 100_003 + k)) >>> 0;
        const m = mutate(orig, fields, seed);
        const label = `${name} seed ${seed} (${m.kind}: ${m.what})`;
        const start = performance.now();
        try {
          const o = await check(m.bytes, label, baseDir);
          bump(`${m.kind} ${o.result}`);
          bump(o.result === 'loaded' ? 'loaded' : `rejected with ${o.error}`);
        } catch (e) {
          failures.push(`${label}: ${(e as Error)?.stack ?? e}`);
        }
        const ms = performance.now() - start;
        if (ms > slowest.ms) slowest = { ms, what: label };
        cases++;
      }
    }
    const total = (performance.now() - t0) / 1000;
    const byKind = KINDS.map((k) => `${k} ${stats.get(`${k} loaded`) ?? 0}/${(stats.get(`${k} loaded`) ?? 0) + (stats.get(`${k} rejected`) ?? 0)}`).join(', ');
    console.log(
      [
        `fuzz: ${cases} cases in ${total.toFixed(1)} s; ${stats.get('loaded') ?? 0} loaded, ${cases - (stats.get('loaded') ?? 0) - failures.length} rejected with a typed error, ${failures.length} failed`,
        `  loaded/total by mutation: ${byKind}`,
        `  rejections: ${[...stats].filter(([k]) => k.startsWith('rejected with')).map(([k, v]) => `${k.slice(14)} ${v}`).join(', ')}`,
        `  slowest case: ${slowest.ms.toFixed(0)} ms (${slowest.what})`,
      ].join('\n'),
    );
    expect(failures, failures.slice(0, 10).join('\n\n')).to.deep.equal([]);
    expect(cases).to.be.at.least(3000);
    expect(slowest.ms, `slowest case: ${slowest.what}`).to.be.below(2000);
    // the mutations must reach past the first parse: some mutants load, many are rejected
    expect(stats.get('loaded') ?? 0).to.be.greaterThan(300);
    expect(cases - (stats.get('loaded') ?? 0)).to.be.greaterThan(1000);
  });
});
