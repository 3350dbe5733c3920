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
