/**
 * Bad input gives a typed error (LoadError, GraphError) that names the file and says what is wrong — never a
 * crash, a RangeError or a hang. Saving is atomic: a failed save leaves nothing behind and changes no file.
 */
import { expect } from 'chai';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type NodeProto,
  type TensorProto,
} from 'onnx-buf';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphError, LoadError, Model, attr, encodeModel, loadModel, saveModel } from '../../src/index.js';
import { loadTensor } from '../../src/onnx/tensorfile.js';
import { mulberry32 } from '../../src/util/random.js';

const FIXTURE = 'fixtures/fmnist-cnn.onnx';
const RELU = '/usr/share/libonnx-testdata/data/node/test_relu/model.onnx';

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure, but it succeeded');
}

/** Asserts a LoadError whose message names `source` and matches every pattern. */
async function expectLoadError(p: Promise<unknown>, source: string, ...patterns: RegExp[]): Promise<Error> {
  const e = await failure(p);
  expect(e, String(e?.stack)).to.be.instanceOf(LoadError);
  expect(e.message).to.include(source);
  for (const re of patterns) expect(e.message).to.match(re);
  return e;
}

// --- crafting models as protobuf messages ------------------------------------------------------------------------

const f32 = (name: string, dims: number[] = [4]) =>
  create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: 'tensorType',
        value: create(TypeProto_TensorSchema, {
          elemType: 1,
          shape: create(TensorShapeProtoSchema, { dim: dims.map((d) => create(TensorShapeProto_DimensionSchema, { value: { case: 'dimValue', value: BigInt(d) } })) }),
        }),
      },
    }),
  });

const node = (opType: string, input: string[], output: string[], name: string): NodeProto => create(NodeProtoSchema, { opType, input, output, name });

/** A model with graph "g", opset 13, input x and output y unless the parts say otherwise. */
function modelBytes(parts: MessageInitShape<typeof GraphProtoSchema>): Uint8Array {
  const graph = create(GraphProtoSchema, { name: 'g', input: [f32('x')], output: [f32('y')], ...parts });
  return toBinary(ModelProtoSchema, create(ModelProtoSchema, { irVersion: 8n, opsetImport: [create(OperatorSetIdProtoSchema, { version: 13n })], graph }));
}

/** A float32 [4] initializer "w" stored as external data with the given entries. */
function externalTensor(entries: Record<string, string>): TensorProto {
  return create(TensorProtoSchema, {
    name: 'w',
    dims: [4n],
    dataType: 1,
    dataLocation: TensorProto_DataLocation.EXTERNAL,
    externalData: Object.entries(entries).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
}

/** y = x + w, with w stored as external data. */
function externalModel(entries: Record<string, string>): Uint8Array {
  return modelBytes({ initializer: [externalTensor(entries)], node: [node('Add', ['x', 'w'], ['y'], 'add')] });
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/**
 * `depth` levels of If nodes, each holding the next graph in its then_branch attribute, as raw bytes. Built in
 * one pass (headers computed innermost first), since concatenating per level would copy O(depth²) bytes.
 */
function nestedGraphs(depth: number): Uint8Array {
  const headers: number[][] = [];
  const text = (s: string) => [...Buffer.from(s)];
  let inner = 0; // byte length of the graph one level down (the innermost graph is empty)
  for (let i = 0; i < depth; i++) {
    // AttributeProto { name = 1, type = 20 (GRAPH = 5), g = 6 }, with g last so that the inner graph follows its header
    const attrHead = [0x0a, 11, ...text('then_branch'), 0xa0, 0x01, 5, 0x32, ...varint(inner)];
    const attrLen = attrHead.length + inner;
    // NodeProto { op_type = 4, attribute = 5 }
    const nodeHead = [0x22, 2, ...text('If'), 0x2a, ...varint(attrLen)];
    const nodeLen = nodeHead.length + attrLen;
    // GraphProto { node = 1 }
    const graphHead = [0x0a, ...varint(nodeLen)];
    headers.push([...graphHead, ...nodeHead, ...attrHead]);
    inner = graphHead.length + nodeLen;
  }
  // ModelProto { ir_version = 1: 8, graph = 7 }
  const top = [0x08, 8, 0x3a, ...varint(inner)];
  const out = new Uint8Array(top.length + inner);
  out.set(top);
  let at = top.length;
  for (let i = headers.length - 1; i >= 0; i--) {
    out.set(headers[i], at);
    at += headers[i].length;
  }
  expect(at).to.equal(out.length);
  return out;
}

/** Byte offsets where a top-level field of a protobuf message starts or the message ends. */
function topLevelBoundaries(b: Uint8Array): Set<number> {
  const out = new Set<number>([0]);
  let i = 0;
  const read = () => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const byte = b[i++];
      n += (byte & 0x7f) * mul;
      mul *= 128;
      if (byte < 0x80) return n;
    }
  };
  while (i < b.length) {
    const tag = read();
    const wire = tag & 7;
    if (wire === 0) read();
    else if (wire === 1) i += 8;
    else if (wire === 2) {
      const length = read();
      i += length;
    }
    else if (wire === 5) i += 4;
    else throw new Error(`unexpected wire type ${wire}`);
    out.add(i);
  }
  return out;
}

/** The project's seeded generator (mulberry32), so every run sees the same data. */
const prng = mulberry32;

/** y = Relu(x) built with the IR, for edits that make it invalid. */
function reluModel(): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  const x = m.graph.createValue('x', { kind: 'tensor', elemType: 'float32', shape: [4] });
  m.graph.inputs.push(x);
  const n = m.graph.addNode({ opType: 'Relu', name: 'relu', inputs: [x], outputs: ['y'] });
  n.output().type = { kind: 'tensor', elemType: 'float32', shape: [4] };
  m.graph.outputs.push(n.output());
  return m;
}

describe('onnx/io bad input: typed errors that name the file and the problem', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'onnxpress-bad-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('files', () => {
    it('an empty file', async () => {
      const p = join(dir, 'empty.onnx');
      writeFileSync(p, new Uint8Array());
      await expectLoadError(loadModel(p), p, /the file is empty, not an ONNX model/);
    });

    it('a missing file', async () => {
      const p = join(dir, 'nope.onnx');
      await expectLoadError(loadModel(p), p, /no such file/);
    });

    it('a folder', async () => {
      await expectLoadError(loadModel(dir), dir, /is a folder, not a model file/);
    });

    it('tensor files: empty, missing, a folder, malformed', async () => {
      const p = join(dir, 'input_0.pb');
      writeFileSync(p, new Uint8Array());
      await expectLoadError(loadTensor(p), p, /empty, not a TensorProto/);
      await expectLoadError(loadTensor(join(dir, 'none.pb')), 'none.pb', /no such file/);
      await expectLoadError(loadTensor(dir), dir, /is a folder/);
      writeFileSync(p, Uint8Array.from([0x4a, 0x7f, 1, 2])); // raw_data of 127 bytes, 2 present
      await expectLoadError(loadTensor(p), p, /not a valid TensorProto: malformed or truncated/);
      writeFileSync(p, Uint8Array.from([0x08, 2, 0x08, 3, 0x10, 1, 0x4a, 4, 0, 0, 0x80, 0x3f])); // float32 [2, 3] with 4 bytes
      await expectLoadError(loadTensor(p), p, /float32 \[2,3\]\) needs 24 bytes of raw_data but has 4/);
      writeFileSync(p, Uint8Array.from([0x10, 99])); // data_type 99
      await expectLoadError(loadTensor(p), p, /unknown data type 99/);
      await expectLoadError(loadTensor(toBinary(TensorProtoSchema, externalTensor({ location: 'w.bin' })), { source: 'ext.pb' }), 'ext.pb', /stored as external data/);
    });
  });

  describe('malformed protobuf', () => {
    it('a real model cut at every top-level field boundary and at hundreds of points inside fields', async () => {
      let checked = 0;
      for (const file of [FIXTURE, RELU, '/usr/share/libonnx-testdata/data/node/test_if/model.onnx', '/usr/share/libonnx-testdata/data/node/test_loop11/model.onnx']) {
        const bytes = readFileSync(file);
        const boundaries = topLevelBoundaries(bytes);
        const step = Math.max(1, Math.floor(bytes.length / 300));
        const cuts = new Set<number>();
        for (let c = 1; c < bytes.length; c += step) cuts.add(c);
        for (let c = 1; c < Math.min(bytes.length, 64); c++) cuts.add(c); // every cut of the header fields
        for (const b of boundaries) for (const d of [-1, 1]) if (b + d > 0 && b + d < bytes.length) cuts.add(b + d);
        for (const cut of cuts) {
          const source = `${file} cut at ${cut}`;
          if (boundaries.has(cut)) {
            // a cut between top-level fields is valid protobuf; it may still lack what a model needs
            try {
              await loadModel(bytes.subarray(0, cut), { source });
            } catch (e) {
              expect(e, source).to.be.instanceOf(LoadError);
              expect((e as Error).message).to.include(source);
            }
            continue;
          }
          await expectLoadError(loadModel(bytes.subarray(0, cut), { source }), source, /not a valid ONNX model: malformed or truncated protobuf/);
          checked++;
        }
      }
      expect(checked).to.be.greaterThan(1000);
    });

    it('random bytes', async () => {
      const rand = prng(20261125);
      for (let k = 0; k < 500; k++) {
        const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 2000) }, () => Math.floor(rand() * 256));
        const source = `random-${k}.onnx`;
        const e = await failure(loadModel(bytes, { source }));
        expect(e, `${source}: ${e.stack}`).to.be.instanceOf(LoadError);
        expect(e.message.startsWith(`${source}: `), e.message).to.equal(true);
      }
    });

    it('a length field larger than the file', async () => {
      // ModelProto { graph (field 7) of 1,000,000 bytes } with 4 bytes present
      const crafted = Uint8Array.from([0x08, 8, 0x3a, ...varint(1_000_000), 0x0a, 0x02, 0x22, 0x00]);
      await expectLoadError(loadModel(crafted, { source: 'huge-length.onnx' }), 'huge-length.onnx', /malformed or truncated protobuf \(premature EOF\)/);
      // a real model whose graph field claims 2^31 - 1 bytes
      const real = readFileSync(RELU);
      const at = real.indexOf(0x3a); // graph field tag (ir_version comes first, then producer fields)
      const boundaries = topLevelBoundaries(real);
      expect(boundaries.has(at), 'graph tag found at a field start').to.equal(true);
      let end = at + 1;
      while (real[end] & 0x80) end++;
      const patched = Buffer.concat([real.subarray(0, at + 1), Buffer.from(varint(2 ** 31 - 1)), real.subarray(end + 1)]);
      const p = join(dir, 'patched.onnx');
      writeFileSync(p, patched);
      await expectLoadError(loadModel(p), p, /truncated protobuf \(premature EOF\)/);
      // and a raw_data length past the end of an initializer nested in the graph
      const w = toBinary(TensorProtoSchema, create(TensorProtoSchema, { name: 'w', dims: [4n], dataType: 1, rawData: new Uint8Array(16) }));
      const wCut = Uint8Array.from([...w.subarray(0, w.length - 16 - 1), 0xff, 0xff, 0x03, ...w.subarray(w.length - 16)]);
      const graph = Uint8Array.from([0x2a, ...varint(wCut.length), ...wCut]);
      await expectLoadError(loadModel(Uint8Array.from([0x3a, ...varint(graph.length), ...graph]), { source: 'raw.onnx' }), 'raw.onnx', /premature EOF/);
    });

    it('100,000 levels of nested graph attributes: a LoadError, not a stack overflow', async () => {
      for (const depth of [100_000, 10_000, 1_000, 40]) {
        const bytes = nestedGraphs(depth);
        const p = join(dir, `nested-${depth}.onnx`);
        writeFileSync(p, bytes);
        const t0 = performance.now();
        const e = await expectLoadError(loadModel(p), p, /nested too deeply|recursion depth/);
        expect(e).to.not.be.instanceOf(RangeError);
        expect(performance.now() - t0).to.be.below(2000);
      }
      // a shallow nesting loads, and its re-encoding loads to the same depth
      const depthOf = (m: Model) => {
        let d = 0;
        for (let g = m.graph; g.nodes.length; g = g.nodes[0].subgraphs()[0]) d++;
        return d;
      };
      const shallow = await loadModel(nestedGraphs(20));
      expect(depthOf(shallow)).to.equal(20);
      expect(depthOf(await loadModel(encodeModel(shallow)))).to.equal(20);
    });
  });

  describe('invalid graphs', () => {
    it('a cycle names the nodes on it', async () => {
      const m = reluModel();
      const g = m.graph;
      const a = g.addNode({ opType: 'Neg', name: 'a', inputs: [g.value('x')], outputs: ['a_out'] });
      const b = g.addNode({ opType: 'Neg', name: 'b', inputs: [a.output()], outputs: ['b_out'] });
      a.setInput(0, b.output()); // a reads b, b reads a
      g.node('relu').setInput(0, b.output());
      const p = join(dir, 'cycle.onnx');
      writeFileSync(p, encodeModel(m));
      await expectLoadError(loadModel(p), p, /has a cycle through/, /node "a" \(Neg\)/, /node "b" \(Neg\)/);
      // the same as crafted bytes, with the cycle inside a subgraph
      const body = create(GraphProtoSchema, {
        name: 'then',
        output: [f32('t2')],
        node: [node('Neg', ['t2'], ['t1'], 'n1'), node('Neg', ['t1'], ['t2'], 'n2')],
      });
      const ifNode = create(NodeProtoSchema, {
        opType: 'If',
        name: 'if',
        input: ['c'],
        output: ['y'],
        attribute: [
          { name: 'then_branch', type: 5, g: body },
          { name: 'else_branch', type: 5, g: body },
        ].map((a) => create(AttributeProtoSchema, a)),
      });
      const bytes = modelBytes({ input: [f32('c', [])], node: [ifNode] });
      await expectLoadError(loadModel(bytes, { source: 'subcycle.onnx' }), 'subcycle.onnx', /Graph "then" has a cycle through node "n1" \(Neg\), node "n2" \(Neg\)/);
    });

    it('a dangling node input names the node and the value', async () => {
      const m = reluModel();
      const ghost = m.graph.declareValue('ghost');
      m.graph.addNode({ opType: 'Add', name: 'adder', inputs: [m.graph.value('x'), ghost], outputs: ['z'] });
      const p = join(dir, 'dangling.onnx');
      writeFileSync(p, encodeModel(m));
      await expectLoadError(loadModel(p), p, /node "adder" \(Add\) reads "ghost", which no node, graph input or initializer provides \(a dangling input\)/);
      // a graph output nothing produces
      await expectLoadError(loadModel(modelBytes({ node: [node('Relu', ['x'], ['z'], 'r')] }), { source: 'noout.onnx' }), 'noout.onnx', /graph output "y" is not produced/);
    });

    it('duplicate value definitions', async () => {
      const two = modelBytes({ node: [node('Relu', ['x'], ['y'], 'r1'), node('Neg', ['x'], ['y'], 'r2')] });
      await expectLoadError(loadModel(two, { source: 'dup-out.onnx' }), 'dup-out.onnx', /node "r2" \(Neg\) outputs "y", which is already defined/);
      const shadow = modelBytes({ node: [node('Relu', ['x'], ['x'], 'r')] });
      await expectLoadError(loadModel(shadow, { source: 'shadow.onnx' }), 'shadow.onnx', /node "r" \(Relu\) outputs "x", which is already defined/);
      const w = create(TensorProtoSchema, { name: 'w', dims: [4n], dataType: 1, rawData: new Uint8Array(16) });
      const twice = modelBytes({ initializer: [w, w], node: [node('Add', ['x', 'w'], ['y'], 'a')] });
      await expectLoadError(loadModel(twice, { source: 'dup-init.onnx' }), 'dup-init.onnx', /defines initializer "w" twice/);
      const inputs = modelBytes({ input: [f32('x'), f32('x')], node: [node('Relu', ['x'], ['y'], 'r')] });
      await expectLoadError(loadModel(inputs, { source: 'dup-in.onnx' }), 'dup-in.onnx', /lists graph input "x" twice/);
      const outInit = modelBytes({ initializer: [w], node: [node('Relu', ['x'], ['w'], 'r')], output: [f32('w')] });
      await expectLoadError(loadModel(outInit, { source: 'init-out.onnx' }), 'init-out.onnx', /outputs "w", which is already defined/);
    });
  });

  describe('external data', () => {
    const data = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);

    it('a missing data file', async () => {
      const p = join(dir, 'm.onnx');
      writeFileSync(p, externalModel({ location: 'weights.bin' }));
      await expectLoadError(loadModel(p), p, /tensor "w": external data file "weights.bin" does not exist/);
    });

    it('an absolute location', async () => {
      writeFileSync(join(dir, 'weights.bin'), data);
      const p = join(dir, 'm.onnx');
      writeFileSync(p, externalModel({ location: join(dir, 'weights.bin') }));
      await expectLoadError(loadModel(p), p, /tensor "w": external data location ".*weights.bin" is an absolute path/);
      writeFileSync(p, externalModel({ location: '/etc/passwd' }));
      await expectLoadError(loadModel(p), p, /"\/etc\/passwd" is an absolute path/);
    });

    it('a location that uses ../ to leave the folder', async () => {
      mkdirSync(join(dir, 'model'));
      writeFileSync(join(dir, 'secret.bin'), data);
      const p = join(dir, 'model', 'm.onnx');
      writeFileSync(p, externalModel({ location: '../secret.bin' }));
      await expectLoadError(loadModel(p), p, /external data location "..\/secret.bin" leaves the model's folder/);
      writeFileSync(p, externalModel({ location: 'sub/../../secret.bin' }));
      await expectLoadError(loadModel(p), p, /leaves the model's folder/);
      // ../ that stays inside is fine
      mkdirSync(join(dir, 'model', 'sub'));
      writeFileSync(join(dir, 'model', 'w.bin'), data);
      writeFileSync(p, externalModel({ location: 'sub/../w.bin' }));
      expect([...(await loadModel(p)).graph.initializers.get('w')!.initializer!.toNumbers()]).to.deep.equal([1, 2, 3, 4]);
    });

    it('a symlink inside the folder that points outside', async () => {
      mkdirSync(join(dir, 'model'));
      writeFileSync(join(dir, 'outside.bin'), data);
      symlinkSync(join(dir, 'outside.bin'), join(dir, 'model', 'w.bin'));
      const p = join(dir, 'model', 'm.onnx');
      writeFileSync(p, externalModel({ location: 'w.bin' }));
      await expectLoadError(loadModel(p), p, /external data file "w.bin" links to .*outside.bin, outside the model's folder/);
      // a folder symlink too
      mkdirSync(join(dir, 'elsewhere'));
      writeFileSync(join(dir, 'elsewhere', 'w.bin'), data);
      symlinkSync(join(dir, 'elsewhere'), join(dir, 'model', 'linked'));
      writeFileSync(p, externalModel({ location: 'linked/w.bin' }));
      await expectLoadError(loadModel(p), p, /"linked\/w.bin" links to .*elsewhere\/w.bin, outside the model's folder/);
      // a link that stays inside is fine
      writeFileSync(join(dir, 'model', 'real.bin'), data);
      symlinkSync('real.bin', join(dir, 'model', 'alias.bin'));
      writeFileSync(p, externalModel({ location: 'alias.bin' }));
      expect((await loadModel(p)).graph.initializers.get('w')!.initializer!.toNumbers()).to.deep.equal([1, 2, 3, 4]);
    });

    it('offset or length past the end of the data file, or not fitting the tensor', async () => {
      writeFileSync(join(dir, 'w.bin'), data);
      const p = join(dir, 'm.onnx');
      writeFileSync(p, externalModel({ location: 'w.bin', offset: '4' }));
      await expectLoadError(loadModel(p), p, /tensor "w": external data range 4..20 is past the end of "w.bin" \(16 bytes\)/);
      writeFileSync(p, externalModel({ location: 'w.bin', offset: '1000000000000', length: '16' }));
      await expectLoadError(loadModel(p), p, /range 1000000000000..1000000000016 is past the end/);
      writeFileSync(p, externalModel({ location: 'w.bin', length: '32' }));
      await expectLoadError(loadModel(p), p, /external data length 32 does not match 16 bytes for float32 \[4\]/);
      writeFileSync(p, externalModel({ location: 'w.bin', offset: '-4' }));
      await expectLoadError(loadModel(p), p, /external data "offset" must be a non-negative integer, found "-4"/);
      writeFileSync(p, externalModel({ location: 'w.bin', offset: '99999999999999999999' }));
      await expectLoadError(loadModel(p), p, /"offset" must be a non-negative integer/);
    });

    it('other bad locations: none, a folder, and external data in bytes with no folder', async () => {
      const p = join(dir, 'm.onnx');
      writeFileSync(p, externalModel({}));
      await expectLoadError(loadModel(p), p, /tensor "w" is marked external but has no "location"/);
      mkdirSync(join(dir, 'sub'));
      writeFileSync(p, externalModel({ location: 'sub' }));
      await expectLoadError(loadModel(p), p, /external data location "sub" is not a file/);
      await expectLoadError(loadModel(externalModel({ location: 'w.bin' }), { source: 'in-memory.onnx' }), 'in-memory.onnx', /stored as external data; load the model from its file or pass baseDir/);
    });
  });

  describe('atomic saves', () => {
    /** File names and their bytes and mtimes, to show that nothing changed. */
    const snapshot = (d: string) =>
      Object.fromEntries(
        readdirSync(d)
          .filter((f) => statSync(join(d, f)).isFile())
          .map((f) => [f, { bytes: readFileSync(join(d, f)).toString('base64'), mtime: statSync(join(d, f)).mtimeMs }]),
      );

    it('a missing target folder: LoadError, nothing written', async () => {
      const m = await loadModel(FIXTURE);
      const before = snapshot(dir);
      const target = join(dir, 'missing', 'm.onnx');
      const e = await failure(saveModel(m, target));
      expect(e).to.be.instanceOf(LoadError);
      expect(e.message).to.include(target).and.match(/ENOENT/);
      expect(snapshot(dir)).to.deep.equal(before);
      const e2 = await failure(saveModel(m, target, { externalData: true }));
      expect(e2).to.be.instanceOf(LoadError);
      expect(snapshot(dir)).to.deep.equal(before);
    });

    it('a model that cannot be encoded: GraphError, the existing file is untouched, no temporary file', async () => {
      const target = join(dir, 'm.onnx');
      copyFileSync(FIXTURE, target);
      const before = snapshot(dir);
      for (const [what, edit, re] of [
        ['a NaN int attribute', (m: Model) => m.graph.nodes[0].setAttr('bogus', attr.int(NaN)), /Cannot write attribute "bogus" of node ".*" \(\w+\): NaN is not an int64/],
        ['NaN in an ints attribute', (m: Model) => m.graph.nodes[0].setAttr('bogus', attr.ints([1, NaN])), /attribute "bogus" of node .*NaN is not an int64/],
        ['a NaN IR version', (m: Model) => (m.irVersion = NaN), /Cannot serialize the model for .*m.onnx: The number NaN cannot be converted to a BigInt/],
        ['an opaque attribute not read from a file', (m: Model) => m.graph.nodes[0].setAttr('bogus', { type: 'type_proto', value: 1 }), /Cannot write attribute "bogus" of type type_proto/],
        ['a non-number float attribute', (m: Model) => m.graph.nodes[0].setAttr('bogus', { type: 'float', value: 'x' as unknown as number }), /Cannot serialize the model for .*m.onnx: .*invalid float32: x/],
      ] as const) {
        for (const externalData of [false, true]) {
          const m = await loadModel(target);
          edit(m);
          const e = await failure(saveModel(m, target, { externalData }));
          expect(e, `${what}: ${e.stack}`).to.be.instanceOf(GraphError);
          expect(e.message, what).to.match(re);
          expect(() => encodeModel(m), what).to.throw(GraphError);
          expect(snapshot(dir), what).to.deep.equal(before);
        }
      }
    });

    it('a target that is a folder, or a data file in a missing folder: nothing written, nothing left', async () => {
      const m = await loadModel(FIXTURE);
      mkdirSync(join(dir, 'taken.onnx'));
      const before = snapshot(dir);
      const e = await failure(saveModel(m, join(dir, 'taken.onnx'), { externalData: true }));
      expect(e).to.be.instanceOf(LoadError);
      expect(e.message).to.match(/Cannot write .*taken.onnx: it is a folder/);
      expect(readdirSync(dir).sort()).to.deep.equal(['taken.onnx']);
      expect(snapshot(dir)).to.deep.equal(before);
      copyFileSync(FIXTURE, join(dir, 'm.onnx'));
      const before2 = snapshot(dir);
      const e2 = await failure(saveModel(m, join(dir, 'm.onnx'), { externalData: true, externalDataFile: 'nope/m.data' }));
      expect(e2).to.be.instanceOf(LoadError);
      expect(e2.message).to.match(/Cannot write .*m.onnx: ENOENT/);
      expect(snapshot(dir)).to.deep.equal(before2);
    });

    it('load and save never modify the input file; saving over the loaded file works', async () => {
      const input = join(dir, 'in.onnx');
      copyFileSync(FIXTURE, input);
      const before = { bytes: readFileSync(input), mtime: statSync(input).mtimeMs };
      const m = await loadModel(input);
      const weights = new Map([...m.graph.initializers].map(([k, v]) => [k, Buffer.from(v.initializer!.bytes())]));
      await saveModel(m, join(dir, 'copy.onnx'));
      await saveModel(m, join(dir, 'ext.onnx'), { externalData: true });
      expect(Buffer.compare(readFileSync(input), before.bytes)).to.equal(0);
      expect(statSync(input).mtimeMs).to.equal(before.mtime);
      // a model loaded with external data, saved elsewhere: its source files stay as they were
      const extBefore = snapshot(dir);
      const ext = await loadModel(join(dir, 'ext.onnx'));
      mkdirSync(join(dir, 'out'));
      await saveModel(ext, join(dir, 'out', 'ext.onnx'));
      await saveModel(ext, join(dir, 'out', 'inline.onnx'), { externalData: false });
      expect(snapshot(dir)).to.deep.equal(extBefore);
      // saving over the very file it was loaded from (inline, then with external data)
      const reloaded = await loadModel(input);
      await saveModel(reloaded, input);
      const again = await loadModel(input);
      for (const [k, v] of again.graph.initializers) expect(Buffer.compare(Buffer.from(v.initializer!.bytes()), weights.get(k)!), k).to.equal(0);
      const extAgain = await loadModel(join(dir, 'ext.onnx'));
      await saveModel(extAgain, join(dir, 'ext.onnx'));
      const extThird = await loadModel(join(dir, 'ext.onnx'));
      for (const [k, v] of extThird.graph.initializers) expect(Buffer.compare(Buffer.from(v.initializer!.bytes()), weights.get(k)!), k).to.equal(0);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    });
  });
});
