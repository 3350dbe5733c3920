import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { LoadError, OptionsError } from '../../src/errors.js';
import { rejects } from '../helpers/assert.js';
import {
  loadDataset,
  seededPermutation,
  validateDescriptor,
  type Batch,
  type Dataset,
  type DatasetDescriptor,
} from '../../src/eval/datasets.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const T10K_IMAGES = `${FASHION}/t10k-images-idx3-ubyte.gz`;
const T10K_LABELS = `${FASHION}/t10k-labels-idx1-ubyte.gz`;
const TRAIN_IMAGES = `${FASHION}/train-images-idx3-ubyte.gz`;
const TRAIN_LABELS = `${FASHION}/train-labels-idx1-ubyte.gz`;
const NORMALIZE = { layout: 'NCHW' as const, scale: 0.00392156862745098, mean: [0.286], std: [0.353] };

const PYTHON = '/usr/bin/python3';
const hasNumpy = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

/** Runs Python code (with numpy) and returns its stdout parsed as JSON (or null if it printed nothing). */
function py(code: string): unknown {
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout.trim() ? JSON.parse(r.stdout) : null;
}

async function all(ds: Dataset, batchSize = 1000): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of ds.batches(batchSize)) out.push(b);
  return out;
}

async function allLabels(ds: Dataset): Promise<number[]> {
  return (await all(ds)).flatMap((b) => [...b.labels!]);
}

function histogram(labels: number[]): Record<number, number> {
  const h: Record<number, number> = {};
  for (const l of labels) h[l] = (h[l] ?? 0) + 1;
  return h;
}


/** An IDX file: uint8 data with the given dims. */
function idx(dims: number[], data: Uint8Array | number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

function pngBuffer(width: number, height: number, rgb: (x: number, y: number) => [number, number, number], gray = false): Buffer {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = rgb(x, y);
      png.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return PNG.sync.write(png, gray ? { colorType: 0 } : { colorType: 2 });
}

function jpegBuffer(width: number, height: number, rgb: [number, number, number]): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], p * 4);
  return jpeg.encode({ width, height, data }, 100).data;
}

describe('eval/datasets', function () {
  this.timeout(120_000);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onnxpress-datasets-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function descriptorFile(name: string, content: unknown): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  }

  describe('Fashion-MNIST (idx)', () => {
    const t10k: DatasetDescriptor = { format: 'idx', images: T10K_IMAGES, labels: T10K_LABELS, input: NORMALIZE };

    it('loads the test set: 10000 samples of [1, 28, 28], 1000 per class', async () => {
      const ds = await loadDataset(t10k);
      expect(ds.size).to.equal(10000);
      expect(ds.inputNames).to.deep.equal([]);
      expect(ds.sampleDims).to.deep.equal({ input: [1, 28, 28] });
      expect(ds.hasLabels).to.equal(true);
      expect(ds.numClasses).to.equal(10);
      const batches = await all(ds, 3000);
      expect(batches.map((b) => b.size)).to.deep.equal([3000, 3000, 3000, 1000]);
      expect(batches[3]!.feeds.input!.dims).to.deep.equal([1000, 1, 28, 28]);
      expect(batches[0]!.feeds.input!.dtype).to.equal('float32');
      expect(batches[0]!.feeds.input!.data).to.be.instanceOf(Float32Array);
      const h = histogram(batches.flatMap((b) => [...b.labels!]));
      expect(h).to.deep.equal(Object.fromEntries(Array.from({ length: 10 }, (_, c) => [c, 1000])));
    });

    it('loads the example descriptor from a file and names the input after the model', async () => {
      const path = await descriptorFile('fashion.json', t10k);
      const ds = await loadDataset(path, { inputNames: ['pixels', 'other'] });
      expect(ds.sampleDims).to.deep.equal({ pixels: [1, 28, 28] });
      const [b] = await all(ds, 10000);
      expect(Object.keys(b!.feeds)).to.deep.equal(['pixels']);
    });

    it("matches numpy's reading of the first image, raw and normalized", async function () {
      const raw = await loadDataset({ format: 'idx', images: T10K_IMAGES, labels: T10K_LABELS });
      const norm = await loadDataset(t10k);
      const r = raw.sample(0), n = norm.sample(0);
      expect(r.inputs.input!.dims).to.deep.equal([1, 28, 28]);
      expect(r.label).to.equal(9); // ankle boot
      const pixels = r.inputs.input!.data as Float32Array;
      expect(Math.max(...pixels)).to.equal(255);
      // normalization is (x*scale - mean)/std on the raw values
      const nd = n.inputs.input!.data as Float32Array;
      for (let i = 0; i < 784; i++) expect(nd[i]).to.be.closeTo((pixels[i]! / 255 - 0.286) / 0.353, 1e-6);
      if (!hasNumpy) this.skip();
      const ref = py(`
import gzip, json, numpy as np
with gzip.open(${JSON.stringify(T10K_IMAGES)}) as f: b = f.read()
with gzip.open(${JSON.stringify(T10K_LABELS)}) as f: l = f.read()
a = np.frombuffer(b, np.uint8, offset=16).reshape(-1, 28, 28)
x = a[0].astype(np.float32)
n = (x * np.float32(${NORMALIZE.scale}) - np.float32(0.286)) / np.float32(0.353)
print(json.dumps({"raw": a[0].ravel().tolist(), "norm": n.ravel().astype(float).tolist(), "label": int(l[8]), "count": int(a.shape[0])}))
`) as { raw: number[]; norm: number[]; label: number; count: number };
      expect(ref.count).to.equal(10000);
      expect(ref.label).to.equal(r.label);
      expect([...pixels]).to.deep.equal(ref.raw);
      for (let i = 0; i < 784; i++) expect(nd[i]).to.be.closeTo(ref.norm[i]!, 1e-5);
    });

    it('loads the 60000-sample training set; normalized it has mean ≈ 0 and std ≈ 1', async () => {
      const ds = await loadDataset({ format: 'idx', images: TRAIN_IMAGES, labels: TRAIN_LABELS, input: NORMALIZE });
      expect(ds.size).to.equal(60000);
      let sum = 0, sq = 0, count = 0;
      const h: Record<number, number> = {};
      for await (const b of ds.batches(4096)) {
        const d = b.feeds.input!.data as Float32Array;
        for (let i = 0; i < d.length; i++) {
          sum += d[i]!;
          sq += d[i]! * d[i]!;
        }
        count += d.length;
        for (const l of b.labels!) h[l] = (h[l] ?? 0) + 1;
      }
      expect(count).to.equal(60000 * 784);
      const mean = sum / count, std = Math.sqrt(sq / count - mean * mean);
      expect(mean).to.be.closeTo(0, 2e-3);
      expect(std).to.be.closeTo(1, 2e-3);
      expect(Object.values(h)).to.deep.equal(new Array(10).fill(6000));
    });

    it('applies offset and limit', async () => {
      const full = await allLabels(await loadDataset({ format: 'idx', images: T10K_IMAGES, labels: T10K_LABELS }));
      const ds = await loadDataset({ format: 'idx', images: T10K_IMAGES, labels: T10K_LABELS, offset: 9990, limit: 7 });
      expect(ds.size).to.equal(7);
      expect(await allLabels(ds)).to.deep.equal(full.slice(9990, 9997));
      const ds2 = await loadDataset({ format: 'idx', images: T10K_IMAGES, labels: T10K_LABELS, offset: 5 });
      expect(ds2.size).to.equal(9995);
    });

    it('resizes and converts channels per batch (size, channels, NHWC)', async () => {
      const base = await loadDataset({ format: 'idx', images: T10K_IMAGES, limit: 2 });
      const ds = await loadDataset({ format: 'idx', images: T10K_IMAGES, limit: 2, input: { size: [56, 56], channels: 3, layout: 'NHWC' } });
      expect(ds.sampleDims).to.deep.equal({ input: [56, 56, 3] });
      expect(ds.hasLabels).to.equal(false);
      const src = base.sample(1).inputs.input!.data as Float32Array;
      const out = ds.sample(1).inputs.input!.data as Float32Array;
      // 2× upsampling with half-pixel centres: output (2y+1, 2x+1) lies at source (y+0.25, x+0.25)
      const y = 10, x = 12, at = (yy: number, xx: number) => src[yy * 28 + xx]!;
      const want = 0.5625 * at(y, x) + 0.1875 * at(y, x + 1) + 0.1875 * at(y + 1, x) + 0.0625 * at(y + 1, x + 1);
      for (let c = 0; c < 3; c++) expect(out[((2 * y + 1) * 56 + 2 * x + 1) * 3 + c]).to.be.closeTo(want, 1e-4);
    });
  });

  describe('shuffle', () => {
    const desc = (shuffle: boolean | number): DatasetDescriptor => ({ format: 'idx', images: T10K_IMAGES, labels: T10K_LABELS, shuffle });

    it('uses a fixed, portable permutation (mulberry32 + Fisher–Yates)', () => {
      expect([...seededPermutation(10, 42)]).to.deep.equal([0, 7, 3, 5, 2, 1, 8, 9, 4, 6]);
      expect([...seededPermutation(10, 0)]).to.deep.equal([3, 8, 6, 4, 5, 9, 7, 1, 0, 2]);
    });

    it('same seed → same order, different seeds differ, labels are a permutation', async () => {
      const plain = await allLabels(await loadDataset(desc(false)));
      const a = await allLabels(await loadDataset(desc(7)));
      const b = await allLabels(await loadDataset(desc(7)));
      const c = await allLabels(await loadDataset(desc(8)));
      const t = await allLabels(await loadDataset(desc(true)));
      const zero = await allLabels(await loadDataset(desc(0)));
      expect(a).to.deep.equal(b);
      expect(a).to.not.deep.equal(c);
      expect(a).to.not.deep.equal(plain);
      expect(t).to.deep.equal(zero);
      expect(histogram(a)).to.deep.equal(histogram(plain));
      expect([...a].sort()).to.deep.equal([...plain].sort());
      const perm = seededPermutation(10000, 7);
      expect(a.slice(0, 50)).to.deep.equal([...perm.slice(0, 50)].map((i) => plain[i]));
    });

    it('keeps images with their labels and applies offset/limit after shuffling', async () => {
      const plain = await loadDataset(desc(false));
      const shuffled = await loadDataset({ ...desc(3), offset: 100, limit: 20 });
      const perm = seededPermutation(10000, 3);
      expect(shuffled.size).to.equal(20);
      for (const i of [0, 7, 19]) {
        const s = shuffled.sample(i), p = plain.sample(perm[100 + i]!);
        expect(s.label).to.equal(p.label);
        expect(s.inputs.input!.data).to.deep.equal(p.inputs.input!.data);
      }
    });
  });

  describe('npy / npz', () => {
    before(function () {
      if (!hasNumpy) this.skip();
    });

    it('round-trips np.save arrays of several dtypes, resolving paths against the descriptor folder', async () => {
      const sub = join(dir, 'npy');
      await mkdir(sub);
      const ref = py(`
import json, numpy as np
rng = np.random.default_rng(0)
d = ${JSON.stringify(sub)}
x = rng.standard_normal((5, 3, 4, 2)).astype(np.float32)
np.save(d + '/x.npy', x)
np.save(d + '/x64.npy', x.astype(np.float64))
np.save(d + '/xbe.npy', x.astype('>f4'))
np.save(d + '/u8.npy', rng.integers(0, 256, (5, 7), dtype=np.uint8))
np.save(d + '/i64.npy', np.arange(10, dtype=np.int64).reshape(5, 2) * 10**12)
np.save(d + '/y.npy', np.array([3, 1, 4, 1, 5], dtype=np.int64))
np.save(d + '/y8.npy', np.array([[3], [1], [4], [1], [5]], dtype=np.uint8))
with open(d + '/v2.npy', 'wb') as f: np.lib.format.write_array(f, x, version=(2, 0))
np.save(d + '/fortran.npy', np.asfortranarray(x))
np.save(d + '/f16.npy', x.astype(np.float16))
mean, std = np.array([0.1, -0.2, 0.3], np.float32), np.array([0.5, 2.0, 4.0], np.float32)
norm = (x * np.float32(2) - mean[None, :, None, None]) / std[None, :, None, None]
print(json.dumps({"x": x.ravel().astype(float).tolist(), "nhwc": x.transpose(0, 2, 3, 1).ravel().astype(float).tolist(),
  "norm": norm.ravel().astype(float).tolist(), "u8": np.load(d + '/u8.npy').ravel().tolist(),
  "f16": (x.astype(np.float16).astype(np.float32) * np.float32(2)).ravel().astype(float).tolist()}))
`) as { x: number[]; nhwc: number[]; norm: number[]; u8: number[]; f16: number[] };

      const desc = await descriptorFile('npy/d.json', { format: 'npy', inputs: 'x.npy', labels: 'y.npy' });
      const ds = await loadDataset(desc);
      expect(ds.size).to.equal(5);
      expect(ds.sampleDims).to.deep.equal({ input: [3, 4, 2] });
      expect(ds.numClasses).to.equal(6);
      const batches = await all(ds, 2);
      expect(batches.map((b) => b.size)).to.deep.equal([2, 2, 1]);
      expect(batches.flatMap((b) => [...b.labels!])).to.deep.equal([3, 1, 4, 1, 5]);
      expect(batches[0]!.feeds.input!.dtype).to.equal('float32');
      expect(batches.flatMap((b) => [...(b.feeds.input!.data as Float32Array)])).to.deep.equal(ref.x.map(Math.fround));

      // dtypes are kept as stored unless values are transformed
      const f64 = (await all(await loadDataset({ format: 'npy', inputs: 'x64.npy' }, { baseDir: sub }), 5))[0]!.feeds.input!;
      expect(f64.dtype).to.equal('float64');
      expect([...(f64.data as Float64Array)]).to.deep.equal(ref.x.map(Math.fround));
      for (const file of ['xbe.npy', 'v2.npy']) {
        const f = (await all(await loadDataset({ format: 'npy', inputs: file }, { baseDir: sub }), 5))[0]!.feeds.input!;
        expect(f.dtype).to.equal('float32');
        expect([...(f.data as Float32Array)]).to.deep.equal(ref.x.map(Math.fround));
      }
      const u8 = (await all(await loadDataset({ format: 'npy', inputs: 'u8.npy', labels: 'y8.npy' }, { baseDir: sub }), 5))[0]!;
      expect(u8.feeds.input!.dtype).to.equal('uint8');
      expect([...(u8.feeds.input!.data as Uint8Array)]).to.deep.equal(ref.u8);
      expect([...u8.labels!]).to.deep.equal([3, 1, 4, 1, 5]);
      const i64 = (await all(await loadDataset({ format: 'npy', inputs: 'i64.npy' }, { baseDir: sub }), 5))[0]!.feeds.input!;
      expect(i64.dtype).to.equal('int64');
      expect((i64.data as BigInt64Array)[9]).to.equal(9n * 10n ** 12n);
      const asF32 = (await all(await loadDataset({ format: 'npy', inputs: 'u8.npy', input: { dtype: 'float32' } }, { baseDir: sub }), 5))[0]!;
      expect([...(asF32.feeds.input!.data as Float32Array)]).to.deep.equal(ref.u8);

      const f16 = (await all(await loadDataset({ format: 'npy', inputs: 'f16.npy' }, { baseDir: sub }), 5))[0]!.feeds.input!;
      expect(f16.dtype).to.equal('float16');
      expect(f16.data).to.be.instanceOf(Uint16Array);
      const f16x2 = (await all(await loadDataset({ format: 'npy', inputs: 'f16.npy', input: { scale: 2 } }, { baseDir: sub }), 5))[0]!.feeds.input!;
      expect(f16x2.dtype).to.equal('float32');
      expect([...(f16x2.data as Float32Array)]).to.deep.equal(ref.f16);

      // per-channel normalization (channels = axis 1) and NCHW → NHWC
      const norm = await loadDataset({ format: 'npy', inputs: 'x.npy', input: { scale: 2, mean: [0.1, -0.2, 0.3], std: [0.5, 2, 4] } }, { baseDir: sub });
      const nd = (await all(norm, 5))[0]!.feeds.input!.data as Float32Array;
      nd.forEach((v, i) => expect(v).to.be.closeTo(ref.norm[i]!, 1e-5));
      const nhwc = await loadDataset({ format: 'npy', inputs: 'x.npy', input: { layout: 'NHWC' } }, { baseDir: sub });
      expect(nhwc.sampleDims).to.deep.equal({ input: [4, 2, 3] });
      expect([...((await all(nhwc, 5))[0]!.feeds.input!.data as Float32Array)]).to.deep.equal(ref.nhwc.map(Math.fround));
      const flat = await loadDataset({ format: 'npy', inputs: 'x.npy', input: { layout: 'flat' } }, { baseDir: sub });
      expect(flat.sampleDims).to.deep.equal({ input: [24] });

      await rejects(loadDataset({ format: 'npy', inputs: 'fortran.npy' }, { baseDir: sub }), LoadError, /fortran\.npy is stored in Fortran \(column-major\) order, which is not supported: Expected 'fortran_order': False/);
    });

    it('reads np.savez and np.savez_compressed archives, with labels found by name', async () => {
      const ref = py(`
import json, numpy as np
d = ${JSON.stringify(dir)}
x = np.arange(24, dtype=np.float32).reshape(6, 4) / 7
y = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
np.savez(d + '/plain.npz', x=x, y=y)
np.savez_compressed(d + '/packed.npz', images=x, labels=y.astype(np.int16))
print(json.dumps(x.ravel().astype(float).tolist()))
`) as number[];
      for (const file of ['plain.npz', 'packed.npz']) {
        const ds = await loadDataset({ format: 'npz', file }, { baseDir: dir, inputNames: ['data'] });
        expect(ds.inputNames).to.deep.equal([]);
        expect(ds.sampleDims).to.deep.equal({ data: [4] });
        const [b] = await all(ds, 6);
        expect([...b!.labels!]).to.deep.equal([0, 1, 2, 0, 1, 2]);
        expect([...(b!.feeds.data!.data as Float32Array)]).to.deep.equal(ref.map(Math.fround));
      }
      const noLabels = await loadDataset({ format: 'npz', file: 'plain.npz', inputs: 'x', labels: false }, { baseDir: dir });
      expect(noLabels.hasLabels).to.equal(false);
      await rejects(loadDataset({ format: 'npz', file: 'plain.npz', inputs: 'z' }, { baseDir: dir }), LoadError, /plain\.npz has no array named "z" \(one of: "x", "y"\)/);
    });

    it('feeds several named inputs from one npz', async () => {
      py(`
import numpy as np
ids = np.arange(12, dtype=np.int64).reshape(3, 4)
np.savez(${JSON.stringify(join(dir, 'multi.npz'))}, input_ids=ids, attention_mask=np.ones((3, 4), np.int64), token_type=np.zeros((3, 4), np.int32), labels=np.array([1, 0, 1]))
`);
      const ds = await loadDataset({ format: 'npz', file: join(dir, 'multi.npz') });
      expect(ds.inputNames).to.deep.equal(['input_ids', 'attention_mask', 'token_type']);
      expect(ds.sampleDims).to.deep.equal({ input_ids: [4], attention_mask: [4], token_type: [4] });
      const [b] = await all(ds, 2);
      expect(b!.feeds.input_ids!.dtype).to.equal('int64');
      expect([...(b!.feeds.input_ids!.data as BigInt64Array)]).to.deep.equal([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n]);
      expect(b!.feeds.token_type!.dtype).to.equal('int32');
      expect([...b!.labels!]).to.deep.equal([1, 0]);

      const mapped = await loadDataset(
        { format: 'npz', file: join(dir, 'multi.npz'), inputs: { ids: 'input_ids', mask: 'attention_mask' }, input: { mask: { dtype: 'float32' } } },
        { inputNames: ['ids', 'mask'] },
      );
      expect(mapped.inputNames).to.deep.equal(['ids', 'mask']);
      const [m] = await all(mapped, 3);
      expect(m!.feeds.mask!.dtype).to.equal('float32');
      expect(m!.feeds.ids!.dtype).to.equal('int64');
      const listed = await loadDataset({ format: 'npz', file: join(dir, 'multi.npz'), inputs: ['input_ids'] });
      expect(listed.inputNames).to.deep.equal(['input_ids']);

      await rejects(
        loadDataset({ format: 'npz', file: join(dir, 'multi.npz') }, { inputNames: ['input_ids', 'attention_mask'] }),
        OptionsError,
        /^The model has no input named "token_type" \(file\) \(one of: "input_ids", "attention_mask"\)$/,
      );
    });

    it('feeds several named inputs from npy files', async () => {
      py(`
import numpy as np
np.save(${JSON.stringify(join(dir, 'a.npy'))}, np.zeros((4, 2), np.float32))
np.save(${JSON.stringify(join(dir, 'b.npy'))}, np.ones((4, 3), np.float32))
np.save(${JSON.stringify(join(dir, 'b3.npy'))}, np.ones((3, 3), np.float32))
`);
      const ds = await loadDataset({ format: 'npy', inputs: { a: 'a.npy', b: 'b.npy' }, input: { b: { scale: 3 } } }, { baseDir: dir });
      expect(ds.sampleDims).to.deep.equal({ a: [2], b: [3] });
      const [b] = await all(ds, 4);
      expect([...(b!.feeds.b!.data as Float32Array)]).to.deep.equal(new Array(12).fill(3));
      await rejects(
        loadDataset({ format: 'npy', inputs: { a: 'a.npy', b: 'b3.npy' } }, { baseDir: dir }),
        LoadError,
        /b3\.npy: Expected 4 samples like .*a\.npy for inputs\.b but received "3 \(shape \[3, 3\]\)"$/,
      );
    });
  });

  describe('imagefolder', () => {
    let root: string;
    before(async () => {
      root = join(dir, 'images');
      // created out of order: class index follows sorted folder names
      for (const c of ['zebra', 'ant', 'bee']) await mkdir(join(root, c), { recursive: true });
      await writeFile(join(root, 'zebra', 'z1.png'), pngBuffer(4, 2, (x, y) => [10 * x, 100 + y, 200]));
      await writeFile(join(root, 'ant', 'a2.png'), pngBuffer(4, 2, () => [60, 60, 60], true));
      await writeFile(join(root, 'ant', 'a1.jpg'), jpegBuffer(4, 2, [255, 0, 0]));
      await writeFile(join(root, 'bee', 'b1.JPEG'), jpegBuffer(4, 2, [0, 0, 255]));
      await writeFile(join(root, 'bee', 'notes.txt'), 'ignored');
    });

    it('labels by sorted folder name and decodes PNG and JPEG as RGB NCHW', async () => {
      const ds = await loadDataset({ format: 'imagefolder', root }, { inputNames: ['img'] });
      expect(ds.size).to.equal(4);
      expect(ds.classNames).to.deep.equal(['ant', 'bee', 'zebra']);
      expect(ds.numClasses).to.equal(3);
      expect(ds.sampleDims).to.deep.equal({ img: [3, 2, 4] });
      const [b] = await all(ds, 8);
      expect([...b!.labels!]).to.deep.equal([0, 0, 1, 2]); // ant/a1.jpg, ant/a2.png, bee/b1.JPEG, zebra/z1.png
      const d = b!.feeds.img!.data as Float32Array;
      const at = (n: number, c: number, y: number, x: number) => d[((n * 3 + c) * 2 + y) * 4 + x]!;
      expect(at(0, 0, 1, 3)).to.be.closeTo(255, 3); // red JPEG
      expect(at(0, 1, 1, 3)).to.be.closeTo(0, 3);
      expect(at(2, 2, 0, 0)).to.be.closeTo(255, 3); // blue JPEG
      expect([at(1, 0, 0, 0), at(1, 1, 0, 0), at(1, 2, 0, 0)]).to.deep.equal([60, 60, 60]); // gray PNG → RGB
      expect([at(3, 0, 1, 2), at(3, 1, 1, 2), at(3, 2, 1, 2)]).to.deep.equal([20, 101, 200]);
    });

    it('NHWC is the transpose of NCHW', async () => {
      const nchw = (await all(await loadDataset({ format: 'imagefolder', root, input: { layout: 'NCHW' } }), 8))[0]!.feeds.input!;
      const nhwc = (await all(await loadDataset({ format: 'imagefolder', root, input: { layout: 'NHWC' } }), 8))[0]!.feeds.input!;
      const flat = (await all(await loadDataset({ format: 'imagefolder', root, input: { layout: 'flat' } }), 8))[0]!.feeds.input!;
      expect(nchw.dims).to.deep.equal([4, 3, 2, 4]);
      expect(nhwc.dims).to.deep.equal([4, 2, 4, 3]);
      expect(flat.dims).to.deep.equal([4, 24]);
      expect(flat.data).to.deep.equal(nchw.data);
      const a = nchw.data as Float32Array, b = nhwc.data as Float32Array;
      for (let n = 0; n < 4; n++) {
        for (let c = 0; c < 3; c++) {
          for (let p = 0; p < 8; p++) expect(b[(n * 8 + p) * 3 + c]).to.equal(a[(n * 3 + c) * 8 + p]);
        }
      }
      expect([...a]).to.not.deep.equal([...b]); // the zebra's channels differ, so the orders really differ
    });

    it('converts to grayscale, resizes bilinearly and normalizes per channel', async () => {
      const gray = await loadDataset({ format: 'imagefolder', root, input: { channels: 1 } });
      expect(gray.sampleDims).to.deep.equal({ input: [1, 2, 4] });
      const z = gray.sample(3).inputs.input!.data as Float32Array;
      // PIL's convert('L'): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
      const luma = (r: number, g: number, b: number) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
      expect(z[1 * 4 + 2]).to.equal(luma(20, 101, 200));

      const big = await loadDataset({ format: 'imagefolder', root, input: { size: [4, 8], scale: 1 / 255, mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.5] } });
      expect(big.sampleDims).to.deep.equal({ input: [3, 4, 8] });
      const s = big.sample(1).inputs.input!.data as Float32Array; // the flat gray PNG stays flat
      for (let i = 0; i < 32; i++) expect(s[32 + i]).to.be.closeTo((60 / 255 - 0.5) / 0.25, 1e-6);
      // the zebra's red channel is 10x: a 2x upscale with half-pixel centres puts output x=3 at source x=1.25
      const zb = big.sample(3).inputs.input!.data as Float32Array;
      const red = 12; // 12.5, rounded half to even when the decoded image is stored as uint8
      expect(zb[0 * 32 + 0 * 8 + 3]).to.be.closeTo((red / 255 - 0.5) / 0.5, 1e-6);

      await writeFile(join(dir, 'odd.png'), pngBuffer(3, 3, () => [0, 0, 0]));
      const mixed = join(dir, 'mixed');
      await mkdir(join(mixed, 'a'), { recursive: true });
      await writeFile(join(mixed, 'a', '1.png'), pngBuffer(4, 2, () => [0, 0, 0]));
      await writeFile(join(mixed, 'a', '2.png'), pngBuffer(3, 3, () => [0, 0, 0]));
      await rejects(loadDataset({ format: 'imagefolder', root: mixed }), LoadError, /2\.png: Expected a 2×4 image like .*1\.png \(or set input\.size to resize all images\) for root but received "3×3"/);
      expect((await loadDataset({ format: 'imagefolder', root: mixed, input: { size: [5, 5] } })).size).to.equal(2);
    });
  });

  describe('json', () => {
    it('reads inline samples and labels', async () => {
      const ds = await loadDataset({ format: 'json', inputs: [[1, 2], [3, 4], [5, 6]], labels: [0, 1, 1] });
      expect(ds.size).to.equal(3);
      expect(ds.sampleDims).to.deep.equal({ input: [2] });
      const [b] = await all(ds, 10);
      expect(b!.feeds.input!.dtype).to.equal('float32');
      expect([...(b!.feeds.input!.data as Float32Array)]).to.deep.equal([1, 2, 3, 4, 5, 6]);
      expect([...b!.labels!]).to.deep.equal([0, 1, 1]);
      expect(ds.numClasses).to.equal(2);
    });

    it('reads named inputs from a file, with dtype and normalization', async () => {
      await writeFile(join(dir, 'data.json'), JSON.stringify({ inputs: { ids: [[1, 2, 3]], x: [[[0, 10], [20, 30]]] }, labels: [4] }));
      const desc = await descriptorFile('jsonfile.json', {
        format: 'json',
        file: 'data.json',
        numClasses: 10,
        input: { ids: { dtype: 'int64' }, x: { mean: [10, 20], std: [10, 10] } },
      });
      const ds = await loadDataset(desc);
      expect(ds.inputNames).to.deep.equal(['ids', 'x']);
      expect(ds.numClasses).to.equal(10);
      const s = ds.sample(0);
      expect(s.label).to.equal(4);
      expect(s.inputs.ids!.dtype).to.equal('int64');
      expect([...(s.inputs.ids!.data as BigInt64Array)]).to.deep.equal([1n, 2n, 3n]);
      expect(s.inputs.x!.dims).to.deep.equal([2, 2]);
      expect([...(s.inputs.x!.data as Float32Array)]).to.deep.equal([-1, 0, 0, 1]); // channels are axis 1: rows [0, 10] and [20, 30]
    });

    it('rejects ragged samples', async () => {
      await rejects(
        loadDataset({ format: 'json', inputs: [[1, 2], [3]] }),
        OptionsError,
        /^Expected an array of 2 items \(the samples must all have shape \[2\]\) for inputs\[1\] but received "1 items"$/,
      );
    });
  });

  describe('errors', () => {
    it('names a missing file and the field that points to it', async () => {
      const desc = await descriptorFile('missing.json', { format: 'idx', images: 'nope-images.gz' });
      await rejects(loadDataset(desc), LoadError, new RegExp(`^Dataset file not found: ${join(dir, 'nope-images.gz')} \\(images in ${desc}\\)$`));
      await rejects(loadDataset(join(dir, 'no-such-descriptor.json')), LoadError, /^Dataset descriptor not found: .*no-such-descriptor\.json$/);
      await rejects(loadDataset({ format: 'imagefolder', root: join(dir, 'nowhere') }), LoadError, /^Dataset folder not found: .*nowhere \(root\)$/);
    });

    it('rejects a file that is not IDX', async () => {
      await writeFile(join(dir, 'bad.idx'), 'hello world');
      await rejects(
        loadDataset({ format: 'idx', images: join(dir, 'bad.idx') }),
        LoadError,
        /bad\.idx is not an IDX file: Expected the magic bytes 00 00 <type 08\|09\|0b\|0c\|0d\|0e> <ndims ≥ 1> for its first 4 bytes but received "68 65 6c 6c"/,
      );
    });

    it('rejects a label count that differs from the image count', async () => {
      await writeFile(join(dir, 'imgs.idx'), idx([3, 2, 2], new Uint8Array(12)));
      await writeFile(join(dir, 'labs.idx.gz'), gzipSync(idx([2], [1, 2])));
      const desc = await descriptorFile('count.json', { format: 'idx', images: 'imgs.idx', labels: 'labs.idx.gz' });
      await rejects(
        loadDataset(desc),
        LoadError,
        new RegExp(`^${join(dir, 'labs.idx.gz')}: Expected 3 labels, one per sample of ${join(dir, 'imgs.idx')} for labels in ${desc} but received "2 labels"$`),
      );
    });

    it('rejects truncated files (idx, gzip, npy)', async () => {
      const full = idx([3, 2, 2], new Uint8Array(12));
      await writeFile(join(dir, 'short.idx'), full.subarray(0, full.length - 5));
      await rejects(
        loadDataset({ format: 'idx', images: join(dir, 'short.idx') }),
        LoadError,
        /short\.idx is truncated: Expected 12 bytes of data \(3×2×2 uint8\) for the IDX data but received "7 bytes"/,
      );
      const gz = readFileSync(T10K_LABELS);
      await writeFile(join(dir, 'cut.gz'), gz.subarray(0, 2000));
      await rejects(loadDataset({ format: 'idx', images: T10K_IMAGES, labels: join(dir, 'cut.gz') }), LoadError, /cut\.gz is not a readable gzip file \(truncated or corrupt\): unexpected end of file/);
      const npy = Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([0x46, 0x00])]);
      const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }".padEnd(69, ' ') + '\n';
      await writeFile(join(dir, 'cut.npy'), Buffer.concat([npy, Buffer.from(header, 'latin1'), Buffer.alloc(20)]));
      await rejects(loadDataset({ format: 'npy', inputs: join(dir, 'cut.npy') }), LoadError, /cut\.npy is truncated: Expected 32 bytes of data \(shape \[4, 2\], <f4\) for the array data but received "20 bytes"/);
    });

    it('rejects an npy file with a bad header', async () => {
      const header = '{garbage}'.padEnd(69, ' ') + '\n';
      await writeFile(join(dir, 'bad.npy'), Buffer.concat([Buffer.from('\x93NUMPY\x01\x00\x46\x00', 'latin1'), Buffer.from(header, 'latin1')]));
      await rejects(
        loadDataset({ format: 'npy', inputs: join(dir, 'bad.npy') }),
        LoadError,
        /bad\.npy has a bad \.npy header: Expected a dict with 'descr' \(a simple dtype\), 'fortran_order' and 'shape' for the header but received "\{garbage\}"/,
      );
      await writeFile(join(dir, 'notnpy.npy'), 'PK\x03\x04 not numpy');
      await rejects(loadDataset({ format: 'npy', inputs: join(dir, 'notnpy.npy') }), LoadError, /notnpy\.npy is not a \.npy file: Expected the magic bytes 93 4e 55 4d 50 59/);
      const objHeader = "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }".padEnd(69, ' ') + '\n';
      await writeFile(join(dir, 'obj.npy'), Buffer.concat([Buffer.from('\x93NUMPY\x01\x00\x46\x00', 'latin1'), Buffer.from(objHeader, 'latin1')]));
      await rejects(loadDataset({ format: 'npy', inputs: join(dir, 'obj.npy') }), LoadError, /obj\.npy has an unsupported dtype: Expected a numeric or bool dtype \(one of: "b1", .*\) for the header's 'descr' but received "\|O"/);
    });

    it('lists the known formats for an unknown one', async () => {
      const desc = await descriptorFile('csv.json', { format: 'csv', file: 'x.csv' });
      await rejects(
        loadDataset(desc),
        OptionsError,
        new RegExp(`^Expected a dataset format \\(one of: "idx", "npy", "npz", "imagefolder", "json"\\) for format in ${desc} but received "csv"$`),
      );
    });

    it('rejects mean/std whose length does not match the channels', async () => {
      await rejects(
        loadDataset({ format: 'idx', images: T10K_IMAGES, input: { mean: [0.1, 0.2, 0.3] } }),
        OptionsError,
        /^Expected 1 value \(one per channel of the 1-channel images\) for input\.mean but received \[0\.1, 0\.2, 0\.3\]$/,
      );
      const root = join(dir, 'images');
      await rejects(
        loadDataset({ format: 'imagefolder', root, input: { std: [1, 2] } }),
        OptionsError,
        /^Expected 1 or 3 values \(one per channel of the 3-channel images\) for input\.std but received \[1, 2\]$/,
      );
      await rejects(
        loadDataset({ format: 'json', inputs: [[[1, 2, 3]], [[4, 5, 6]]], input: { mean: [1, 2, 3] } }),
        OptionsError,
        /^Expected 1 value \(one per channel of the descriptor, axis 1 of shape \[2, 1, 3\]; set sourceLayout "NHWC" if channels are last\) for input\.mean but received \[1, 2, 3\]$/,
      );
      const ok = await loadDataset({ format: 'json', inputs: [[[1, 2, 3]], [[4, 5, 6]]], input: { mean: [1, 2, 3], sourceLayout: 'NHWC' } });
      expect([...(ok.sample(1).inputs.input!.data as Float32Array)]).to.deep.equal([3, 3, 3]);
    });

    it('rejects a std containing 0, naming the field and the file', async () => {
      const desc = await descriptorFile('std0.json', { format: 'idx', images: T10K_IMAGES, input: { std: [0] } });
      await rejects(
        loadDataset(desc),
        OptionsError,
        new RegExp(`^Expected positive numbers \\(a standard deviation of 0 or less cannot divide\\) for input\\.std in ${desc} but received \\[0\\]$`),
      );
    });

    it('rejects limit and offset out of range', async () => {
      const base = { format: 'idx' as const, images: T10K_IMAGES };
      await rejects(loadDataset({ ...base, offset: 10000 }), OptionsError, /^Expected an offset below the dataset's 10000 samples for offset but received 10000$/);
      await rejects(loadDataset({ ...base, offset: 9000, limit: 1001 }), OptionsError, /^Expected at most 1000 \(the 10000 samples minus offset 9000\) for limit but received 1001$/);
      expect(() => validateDescriptor({ ...base, limit: 0 }, 'd.json')).to.throw(OptionsError, /^Expected a positive integer for limit in d\.json but received 0$/);
      expect(() => validateDescriptor({ ...base, offset: -1 })).to.throw(OptionsError, /^Expected a non-negative integer for offset but received -1$/);
      expect(() => validateDescriptor({ ...base, shuffle: 1.5 })).to.throw(OptionsError, /for shuffle but received 1\.5$/);
    });

    it('rejects a descriptor that is not an object', async () => {
      for (const raw of [[1, 2], 'idx', null, 3]) {
        expect(() => validateDescriptor(raw, '/x/test.json')).to.throw(OptionsError, /^Expected a JSON object with a "format" field for the dataset descriptor in \/x\/test\.json but received /);
      }
      const desc = await descriptorFile('array.json', '[{"format": "idx"}]');
      await rejects(loadDataset(desc), OptionsError, new RegExp(`for the dataset descriptor in ${desc} but received \\[\\{"format":"idx"\\}\\]$`));
      const broken = await descriptorFile('broken.json', '{"format": ');
      await rejects(loadDataset(broken), LoadError, /^Dataset descriptor .*broken\.json is not valid JSON: /);
    });

    it('points at bad or unknown fields', () => {
      const src = '/path/test.json';
      expect(() => validateDescriptor({ format: 'idx', images: 'a', labes: 'b' }, src)).to.throw(OptionsError, /^Unknown field "labes" in the idx dataset descriptor in \/path\/test\.json \(one of: .*"labels".*\)$/);
      expect(() => validateDescriptor({ format: 'idx', images: 'a', input: { layout: 'CHW' } }, src)).to.throw(OptionsError, /^Expected a layout \(one of: "NCHW", "NHWC", "flat"\) for input\.layout in \/path\/test\.json but received "CHW"$/);
      expect(() => validateDescriptor({ format: 'idx', images: 'a', input: { std: [1, 'x'] } }, src)).to.throw(OptionsError, /for input\.std in \/path\/test\.json but received \[1, "x"\]$/);
      expect(() => validateDescriptor({ format: 'idx', images: 'a', input: { size: [28] } }, src)).to.throw(OptionsError, /^Expected \[height, width\] as two positive integers for input\.size/);
      expect(() => validateDescriptor({ format: 'idx', images: 'a', input: { channels: 2 } }, src)).to.throw(OptionsError, /^Expected 1 \(grayscale\) or 3 \(RGB\) for input\.channels/);
      expect(() => validateDescriptor({ format: 'npy', inputs: 'x.npy', input: { size: [2, 2] } }, src)).to.throw(OptionsError, /^Expected no resizing for the npy format/);
      expect(() => validateDescriptor({ format: 'idx', labels: 'y' }, src)).to.throw(OptionsError, /^Expected a file path \(a non-empty string\) for images in \/path\/test\.json but received nothing$/);
      expect(() => validateDescriptor({ format: 'json', inputs: [[1]], file: 'x.json' })).to.throw(OptionsError, /either inline "inputs" or a "file"/);
      expect(() => validateDescriptor({ format: 'idx', images: 'a', input: { scal: 1 } }, src)).to.throw(OptionsError, /^Unknown field "scal" in input in \/path\/test\.json \(one of: "layout", "scale"/);
      const ok = validateDescriptor({ format: 'npy', inputs: { a: 'a.npy' }, input: { a: { scale: 2 } }, shuffle: 5 });
      expect(ok).to.deep.equal({ format: 'npy', inputs: { a: 'a.npy' }, input: { a: { scale: 2 } }, shuffle: 5 });
    });

    it('rejects a bad batch size', async () => {
      const ds = await loadDataset({ format: 'json', inputs: [1, 2, 3] });
      expect(ds.sampleDims).to.deep.equal({ input: [] });
      expect(() => ds.batches(0)).to.throw(OptionsError, /^Expected a positive integer for batchSize but received 0$/);
    });
  });
});
