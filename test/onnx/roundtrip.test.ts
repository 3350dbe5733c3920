/**
 * Lossless I/O: every ONNX conformance model, loaded and saved unmodified, parses in the ONNX reference library
 * (Debian's python3-onnx) to the same message as the original (same canonical serialization).
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, encodeModel } from '../../src/index.js';
import { conformanceCases } from '../helpers/conformance.js';
import { hasPython, runPython } from '../helpers/python.js';

const COMPARE = `
import json, sys
from onnx import ModelProto
pairs = json.load(sys.stdin)
bad = []
for orig, copy in pairs:
    a = ModelProto(); a.ParseFromString(open(orig, 'rb').read())
    b = ModelProto(); b.ParseFromString(open(copy, 'rb').read())
    if a.SerializeToString(deterministic=True) != b.SerializeToString(deterministic=True):
        bad.append(orig)
print(json.dumps({"checked": len(pairs), "bad": bad}))
`;

describe('onnx/io lossless round trip (conformance models)', function () {
  const cases = conformanceCases();
  let dir: string;
  before(function () {
    if (!cases.length) throw new Error('libonnx-testdata is not installed: apt-get install libonnx-testdata');
    dir = mkdtempSync(join(tmpdir(), 'onnxpress-rt-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`loads and re-encodes all ${cases.length} models; onnx parses each copy to the same message`, async function () {
    const pairs: [string, string][] = [];
    const failures: string[] = [];
    for (const [i, c] of cases.entries()) {
      try {
        const model = await loadModel(c.model);
        const out = join(dir, `${i}.onnx`);
        writeFileSync(out, encodeModel(model));
        pairs.push([c.model, out]);
      } catch (e) {
        failures.push(`${c.id}: ${(e as Error).message}`);
      }
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
    expect(cases.length).to.be.greaterThan(1000);
    if (!hasPython('onnx')) this.skip();
    const r = runPython<{ checked: number; bad: string[] }>(COMPARE, pairs);
    expect(r.checked).to.equal(cases.length);
    expect(r.bad).to.deep.equal([]);
  });
});

describe('onnx/io keeps what it does not know, and writes deterministically', function () {
  /** Tag and payload of a varint field, appended to a message's bytes. */
  function unknownVarint(field: number, value: number): number[] {
    const out: number[] = [];
    let tag = field * 8;
    while (tag > 0x7f) {
      out.push((tag & 0x7f) | 0x80);
      tag >>>= 7;
    }
    out.push(tag, value);
    return out;
  }

  it('fields from a newer ONNX survive load and save (model level and inside a node)', async function () {
    const { readFileSync } = await import('node:fs');
    const { fromBinary, toBinary } = await import('@bufbuild/protobuf');
    const { ModelProtoSchema, NodeProtoSchema } = await import('onnx-buf');
    const orig = readFileSync('/usr/share/libonnx-testdata/data/node/test_relu/model.onnx');
    // put an unknown field (number 4242) into the first node and another (4243) at the model level
    const proto = fromBinary(ModelProtoSchema, orig);
    const nodeBytes = Uint8Array.from([...toBinary(NodeProtoSchema, proto.graph!.node[0]), ...unknownVarint(4242, 7)]);
    proto.graph!.node[0] = fromBinary(NodeProtoSchema, nodeBytes);
    const withUnknown = Uint8Array.from([...toBinary(ModelProtoSchema, proto), ...unknownVarint(4243, 9)]);
    const model = await loadModel(withUnknown);
    model.graph.nodes[0].name = 'renamed'; // an edit to the same node must not drop its unknown field
    const out = encodeModel(model);
    const dir = mkdtempSync(join(tmpdir(), 'onnxpress-unk-'));
    try {
      writeFileSync(join(dir, 'out.onnx'), out);
      if (!hasPython('onnx')) this.skip();
      // the ONNX reference library sees both unknown fields (it keeps unknown fields when it re-serializes)
      const r = runPython<{ node: string; model: string; name: string }>(
        `import json,sys\nfrom onnx import ModelProto\nm=ModelProto(); m.ParseFromString(open(json.load(sys.stdin),'rb').read())\n` +
          `n=m.graph.node[0]\nprint(json.dumps({"node": n.SerializeToString()[-4:].hex(), "model": m.SerializeToString()[-4:].hex(), "name": n.name}))`,
        join(dir, 'out.onnx'),
      );
      expect(unknownVarint(4242, 7)).to.have.length(4);
      expect(r.name).to.equal('renamed');
      expect(r.node).to.equal(Buffer.from(unknownVarint(4242, 7)).toString('hex'));
      expect(r.model).to.equal(Buffer.from(unknownVarint(4243, 9)).toString('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('saving the same model twice gives byte-identical files', async () => {
    const { saveModel } = await import('../../src/index.js');
    const { readFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'onnxpress-det-'));
    try {
      for (const f of ['fixtures/fmnist-cnn.onnx', 'fixtures/fmnist-mlp.onnx']) {
        await saveModel(await loadModel(f), join(dir, 'a.onnx'));
        await saveModel(await loadModel(f), join(dir, 'b.onnx'));
        expect(Buffer.compare(readFileSync(join(dir, 'a.onnx')), readFileSync(join(dir, 'b.onnx')))).to.equal(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
