/**
 * External data: what saveModel writes (entries, 64-byte alignment, the data file), that it loads back identical,
 * that onnxruntime and the ONNX checker accept it, that data files over 2 GiB are read by ranges, the 'auto'
 * policy, and that a model loaded with external data keeps it external beside the file it is saved to.
 */
import { expect } from 'chai';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, StringStringEntryProtoSchema, TensorProto_DataLocation } from 'onnx-buf';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, Tensor, encodeModel, loadModel, saveModel } from '../../src/index.js';
import { Runner, type RunTensor } from '../../src/onnx/runner.js';
import { hasPython, runPython } from '../helpers/python.js';

const CNN = 'fixtures/fmnist-cnn.onnx';
const MLP = 'fixtures/fmnist-mlp.onnx';

/** Each initializer's dtype, dims and bytes, by name. */
function weights(m: Model): Map<string, { dtype: string; dims: string; bytes: Buffer }> {
  return new Map(
    [...m.graph.initializers].map(([name, v]) => [name, { dtype: v.initializer!.dtype, dims: v.initializer!.dims.join('x'), bytes: Buffer.from(v.initializer!.bytes()) }]),
  );
}

/** A deterministic input batch for a runner's first input (dynamic dims become 3). */
function feedFor(r: Runner): Record<string, RunTensor> {
  const info = r.inputs[0];
  const dims = (info.shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : 3));
  let seed = 12345;
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).map(() => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31 - 0.5;
  });
  return { [info.name]: { dtype: 'float32', dims, data } };
}

async function outputsOf(model: Model | Uint8Array | string, feeds?: Record<string, RunTensor>): Promise<{ feeds: Record<string, RunTensor>; out: Record<string, RunTensor> }> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    const f = feeds ?? feedFor(r);
    return { feeds: f, out: await r.run(f) };
  } finally {
    await r.release();
  }
}

/** y = x + w for a float32 [4] initializer w stored in `location` at `offset`. */
function addModelBytes(location: string, offset: number): Uint8Array {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  const x = m.graph.createValue('x', { kind: 'tensor', elemType: 'float32', shape: [4] });
  m.graph.inputs.push(x);
  const w = m.graph.addInitializer('w', Tensor.from('float32', [4], [0, 0, 0, 0]));
  const add = m.graph.addNode({ opType: 'Add', inputs: [x, w], outputs: ['y'] });
  add.output().type = { kind: 'tensor', elemType: 'float32', shape: [4] };
  m.graph.outputs.push(add.output());
  const proto = fromBinary(ModelProtoSchema, encodeModel(m));
  const tp = proto.graph!.initializer[0];
  tp.rawData = new Uint8Array();
  tp.dataLocation = TensorProto_DataLocation.EXTERNAL;
  tp.externalData = Object.entries({ location, offset: String(offset), length: '16' }).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value }));
  return toBinary(ModelProtoSchema, proto);
}

describe('onnx/io external data', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'onnxpress-ext-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('externalData: true writes location/offset/length entries, 64-byte aligned, covering the data file', async () => {
    for (const [fixture, threshold] of [[CNN, undefined], [MLP, undefined], [CNN, 0]] as const) {
      const m = await loadModel(fixture);
      const before = weights(m);
      const path = join(dir, 'm.onnx');
      const result = await saveModel(m, path, { externalData: true, externalThreshold: threshold });
      const dataPath = join(dir, 'm.onnx.data');
      expect(result.externalDataFile).to.equal(dataPath);
      const data = readFileSync(dataPath);
      expect(result.externalBytes).to.equal(data.length);
      expect(result.bytes).to.equal(statSync(path).size);
      const proto = fromBinary(ModelProtoSchema, readFileSync(path));
      const ranges: [number, number][] = [];
      for (const tp of proto.graph!.initializer) {
        const w = before.get(tp.name)!;
        if (w.bytes.length < (threshold ?? 1024)) {
          expect(tp.dataLocation, `${tp.name} stays inline`).to.not.equal(TensorProto_DataLocation.EXTERNAL);
          expect(Buffer.compare(Buffer.from(tp.rawData), w.bytes), tp.name).to.equal(0);
          continue;
        }
        expect(tp.dataLocation, tp.name).to.equal(TensorProto_DataLocation.EXTERNAL);
        expect(tp.rawData.length, `${tp.name} has no raw_data`).to.equal(0);
        expect(tp.externalData.map((e) => e.key)).to.deep.equal(['location', 'offset', 'length']);
        const e = Object.fromEntries(tp.externalData.map((x) => [x.key, x.value]));
        expect(e.location).to.equal('m.onnx.data');
        const offset = Number(e.offset);
        const length = Number(e.length);
        expect(offset % 64, `${tp.name} offset ${offset} is 64-byte aligned`).to.equal(0);
        expect(length).to.equal(w.bytes.length);
        expect(Buffer.compare(data.subarray(offset, offset + length), w.bytes), `${tp.name} bytes in the data file`).to.equal(0);
        ranges.push([offset, offset + length]);
      }
      expect(ranges.length, `${fixture}: external tensors`).to.be.at.least(threshold === 0 ? 8 : 2);
      ranges.sort((a, b) => a[0] - b[0]);
      ranges.forEach(([s], i) => i && expect(s, 'ranges do not overlap').to.be.at.least(ranges[i - 1][1]));
      // the data file is the tensors and the alignment padding between them, nothing more
      expect(data.length).to.equal(ranges[ranges.length - 1][1]);
      expect(ranges[0][0]).to.equal(0);
      ranges.forEach(([s], i) => i && expect(s - ranges[i - 1][1]).to.be.below(64));
      expect(readdirSync(dir).sort()).to.deep.equal(['m.onnx', 'm.onnx.data']);
      rmSync(path);
      rmSync(dataPath);
    }
  });

  it('loads back identical, and encodes to the same bytes as the original model', async () => {
    for (const fixture of [CNN, MLP]) {
      const m = await loadModel(fixture);
      await saveModel(m, join(dir, 'm.onnx'), { externalData: true, externalDataFile: 'weights.bin' });
      expect(existsSync(join(dir, 'weights.bin'))).to.equal(true);
      const back = await loadModel(join(dir, 'm.onnx'));
      expect(weights(back)).to.deep.equal(weights(m));
      expect(back.graph.nodes.map((n) => `${n.opType} ${n.name}`)).to.deep.equal(m.graph.nodes.map((n) => `${n.opType} ${n.name}`));
      // encodeModel writes all data inline: the same bytes as encoding the model loaded from the inline file
      expect(Buffer.compare(Buffer.from(encodeModel(back)), Buffer.from(encodeModel(m))), fixture).to.equal(0);
    }
  });

  it('onnxruntime runs the saved model (given its path) with the same outputs as the original', async () => {
    for (const fixture of [CNN, MLP]) {
      const path = join(dir, 'm.onnx');
      await saveModel(await loadModel(fixture), path, { externalData: true });
      const original = await outputsOf(readFileSync(fixture));
      const fromPath = await outputsOf(path, original.feeds);
      const fromModel = await outputsOf(await loadModel(path), original.feeds); // a Model loaded with external data
      for (const name of Object.keys(original.out)) {
        expect([...(fromPath.out[name].data as Float32Array)], `${fixture} ${name}`).to.deep.equal([...(original.out[name].data as Float32Array)]);
        expect([...(fromModel.out[name].data as Float32Array)], `${fixture} ${name}`).to.deep.equal([...(original.out[name].data as Float32Array)]);
      }
      // bytes alone cannot reach the data file: onnxruntime refuses, which is why Runner takes a path
      const e = await Runner.create(readFileSync(path)).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(e?.message).to.match(/external data/i);
    }
  });

  it('the ONNX checker (python onnx) accepts the saved model and reads the same tensors', async function () {
    if (!hasPython('onnx')) this.skip();
    const path = join(dir, 'm.onnx');
    await saveModel(await loadModel(CNN), path, { externalData: true });
    const r = runPython<{ checked: boolean; external: number; mismatched: string[] }>(
      `
import json, sys
import numpy as np
import onnx
from onnx import numpy_helper
path, original = json.load(sys.stdin)
onnx.checker.check_model(path)
m = onnx.load(path)  # reads the external data
o = onnx.load(original)
ref = {t.name: numpy_helper.to_array(t) for t in o.graph.initializer}
raw = onnx.load(path, load_external_data=False)
external = sum(1 for t in raw.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
mismatched = [t.name for t in m.graph.initializer if not np.array_equal(numpy_helper.to_array(t), ref[t.name])]
print(json.dumps({"checked": True, "external": external, "mismatched": mismatched}))
`,
      [path, CNN],
    );
    expect(r.checked).to.equal(true);
    expect(r.external).to.be.at.least(3);
    expect(r.mismatched).to.deep.equal([]);
  });

  it('reads a tensor at an offset above 2^31 in a 3 GiB (sparse) data file', async () => {
    const GiB = 1024 ** 3;
    const dataPath = join(dir, 'big.data');
    const fd = openSync(dataPath, 'w');
    const offset = 2 ** 31 + 4096; // past what a signed 32-bit position can address
    try {
      ftruncateSync(fd, 3 * GiB);
      writeSync(fd, Buffer.from(new Float32Array([1.5, -2, 3, 4e6]).buffer), 0, 16, offset);
    } finally {
      closeSync(fd);
    }
    expect(statSync(dataPath).size).to.equal(3 * GiB);
    const path = join(dir, 'big.onnx');
    writeFileSync(path, addModelBytes('big.data', offset));
    const m = await loadModel(path);
    expect(m.graph.initializers.get('w')!.initializer!.toNumbers()).to.deep.equal([1.5, -2, 3, 4e6]);
    // onnxruntime reads the same range
    const { out } = await outputsOf(path, { x: { dtype: 'float32', dims: [4], data: new Float32Array([1, 1, 1, 1]) } });
    expect([...(out.y.data as Float32Array)]).to.deep.equal([2.5, -1, 4, 4e6 + 1]);
    // and the last 16 bytes of the file
    writeFileSync(path, addModelBytes('big.data', 3 * GiB - 16));
    expect((await loadModel(path)).graph.initializers.get('w')!.initializer!.toNumbers()).to.deep.equal([0, 0, 0, 0]);
    writeFileSync(path, addModelBytes('big.data', 3 * GiB - 8));
    const e = await loadModel(path).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(e?.message).to.include(`external data range ${3 * GiB - 8}..${3 * GiB + 8} is past the end of "big.data" (${3 * GiB} bytes)`);
  });

  it("'auto' writes external data when the weights exceed the inline limit, and inline otherwise", async () => {
    const m = await loadModel(CNN);
    const total = [...weights(m).values()].reduce((n, w) => n + w.bytes.length, 0);
    const small = await saveModel(m, join(dir, 'small-limit.onnx'), { inlineLimit: total - 1 });
    expect(small.externalDataFile).to.equal(join(dir, 'small-limit.onnx.data'));
    expect(statSync(join(dir, 'small-limit.onnx')).size).to.be.below(total / 10);
    const big = await saveModel(m, join(dir, 'big-limit.onnx'), { inlineLimit: total });
    expect(big.externalDataFile).to.equal(undefined);
    const dflt = await saveModel(m, join(dir, 'default.onnx'));
    expect(dflt.externalDataFile).to.equal(undefined);
    expect(readdirSync(dir).sort()).to.deep.equal(['big-limit.onnx', 'default.onnx', 'small-limit.onnx', 'small-limit.onnx.data']);
    expect(weights(await loadModel(join(dir, 'small-limit.onnx')))).to.deep.equal(weights(m));
  });

  it('a model loaded with external data and saved elsewhere keeps its data external, beside the new file', async () => {
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    const m = await loadModel(CNN);
    await saveModel(m, join(dir, 'a', 'm.onnx'), { externalData: true });
    const aBefore = readdirSync(join(dir, 'a')).map((f) => readFileSync(join(dir, 'a', f)).toString('base64'));
    const loaded = await loadModel(join(dir, 'a', 'm.onnx'));
    const r = await saveModel(loaded, join(dir, 'b', 'copy.onnx'));
    expect(r.externalDataFile).to.equal(join(dir, 'b', 'copy.onnx.data'));
    expect(readdirSync(join(dir, 'b')).sort()).to.deep.equal(['copy.onnx', 'copy.onnx.data']);
    const proto = fromBinary(ModelProtoSchema, readFileSync(join(dir, 'b', 'copy.onnx')));
    const locations = new Set(proto.graph!.initializer.flatMap((t) => t.externalData.filter((e) => e.key === 'location').map((e) => e.value)));
    expect([...locations]).to.deep.equal(['copy.onnx.data']);
    // the copy is self-contained: moved to another folder, it loads with the same weights
    cpSync(join(dir, 'b'), join(dir, 'moved'), { recursive: true });
    rmSync(join(dir, 'b'), { recursive: true });
    expect(weights(await loadModel(join(dir, 'moved', 'copy.onnx')))).to.deep.equal(weights(m));
    // the source folder is as it was
    expect(readdirSync(join(dir, 'a')).map((f) => readFileSync(join(dir, 'a', f)).toString('base64'))).to.deep.equal(aBefore);
    // and externalData: false brings it inline
    const inline = await saveModel(loaded, join(dir, 'inline.onnx'), { externalData: false });
    expect(inline.externalDataFile).to.equal(undefined);
    expect(Buffer.compare(readFileSync(join(dir, 'inline.onnx')), Buffer.from(encodeModel(m)))).to.equal(0);
  });
});
