/** The IR's editing API keeps producers and uses consistent; edits survive encoding and run in onnxruntime. */
import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphError, Model, Tensor, attr, encodeModel, loadModel, saveModel, type Value } from '../../src/index.js';
import { Runner } from '../../src/onnx/runner.js';
import { hasPython, runPython } from '../helpers/python.js';

/** y = Relu(x * w + b), built with the editing API. */
function smallModel(): { model: Model; x: Value } {
  const model = new Model();
  model.irVersion = 8;
  model.opsetImports.set('', 13);
  const g = model.graph;
  g.name = 'small';
  const x = g.createValue('x', { kind: 'tensor', elemType: 'float32', shape: ['batch', 3] });
  g.inputs.push(x);
  const w = g.addInitializer('w', Tensor.from('float32', [3], [1, -2, 3]));
  const b = g.addInitializer('b', Tensor.from('float32', [3], [0.5, 0.5, -10]));
  const mul = g.addNode({ opType: 'Mul', inputs: [x, w], outputs: ['xw'] });
  const add = g.addNode({ opType: 'Add', inputs: [mul.output(), b], outputs: ['xwb'] });
  const relu = g.addNode({ opType: 'Relu', inputs: [add.output()], outputs: ['y'] });
  relu.output().type = { kind: 'tensor', elemType: 'float32', shape: ['batch', 3] };
  g.outputs.push(relu.output());
  return { model, x };
}

async function run(model: Model, x: number[]): Promise<number[]> {
  const r = await Runner.create(model, { threads: 1 });
  try {
    const out = await r.run({ [r.inputNames[0]]: { dtype: 'float32', dims: [1, x.length], data: Float32Array.from(x) } });
    return [...(out[r.outputNames[0]].data as Float32Array)];
  } finally {
    await r.release();
  }
}

describe('onnx/ir editing API', () => {
  it('tracks producers and uses through addNode, setInput and removeNode', () => {
    const { model } = smallModel();
    const g = model.graph;
    const xw = g.value('xw');
    expect(xw.producer?.opType).to.equal('Mul');
    expect(xw.uses.map((u) => [u.node.opType, u.index])).to.deep.equal([['Add', 0]]);
    const add = g.node(xw.uses[0].node.name);
    add.setInput(0, g.value('x'));
    expect(xw.uses).to.have.length(0);
    expect(g.value('x').uses.map((u) => u.node.opType)).to.have.members(['Mul', 'Add']);
    g.removeNode(xw.producer!);
    expect(g.nodes.map((n) => n.opType)).to.deep.equal(['Add', 'Relu']);
    expect(g.values.has('xw')).to.equal(false);
    expect(g.value('w').uses).to.have.length(0);
    g.removeInitializer(g.value('w'));
    expect([...g.initializers.keys()]).to.deep.equal(['b']);
    g.validate();
  });

  it('refuses to remove a node whose output is still read, naming both nodes', () => {
    const { model } = smallModel();
    const mul = model.graph.value('xw').producer!;
    expect(() => model.graph.removeNode(mul)).to.throw(GraphError, /Cannot remove node "Mul" \(Mul\): its output "xw" is still read by node "Add" \(Add\)/);
  });

  it('replaceAllUsesWith keeps the graph output name', async () => {
    const { model } = smallModel();
    const g = model.graph;
    const before = await run(model, [1, 2, 3]);
    // insert y2 = Identity(xwb) after the Add and make the Relu's readers (the graph output) read... itself:
    // instead, replace the Relu output by a new Relu that reads the same value, then drop the old one
    const relu = g.value('y').producer!;
    const relu2 = g.addNode({ opType: 'Relu', inputs: [g.value('xwb')], after: relu });
    g.value('y').replaceAllUsesWith(relu2.output());
    g.removeNode(relu);
    expect(g.outputs.map((o) => o.name)).to.deep.equal(['y']);
    expect(g.outputs[0]).to.equal(relu2.output());
    g.validate();
    expect(await run(model, [1, 2, 3])).to.deep.equal(before);
  });

  it('insert before/after keeps order; sort fixes an out-of-order graph and reports cycles by node', () => {
    const { model } = smallModel();
    const g = model.graph;
    const add = g.value('xwb').producer!;
    const neg = g.addNode({ opType: 'Neg', name: 'neg', inputs: [g.value('xw')], before: add });
    expect(g.nodes.indexOf(neg)).to.equal(g.nodes.indexOf(add) - 1);
    // move the Relu to the front: problems() names it, sort() repairs
    const relu = g.value('y').producer!;
    g.nodes.splice(g.nodes.indexOf(relu), 1);
    g.nodes.unshift(relu);
    expect(g.problems().join()).to.match(/node "Relu" \(Relu\) reads "xwb" before node "Add" \(Add\) produces it/);
    g.sort();
    expect(g.problems()).to.deep.equal([]);
    // a cycle: the Mul reads the Relu's output
    g.value('xw').producer!.setInput(0, g.value('y'));
    expect(() => g.sort()).to.throw(GraphError, /has a cycle through .*Mul/);
  });

  it('validate reports a dangling input after a forced removal', () => {
    const { model } = smallModel();
    const g = model.graph;
    g.removeNode(g.value('xw').producer!, { force: true });
    expect(() => g.validate()).to.throw(GraphError, /node "Add" \(Add\) reads "xw", which no node, input or initializer provides/);
  });

  it('names are unique across the model, and lookups that fail list what exists', () => {
    const { model } = smallModel();
    const g = model.graph;
    expect(g.createValue('x').name).to.equal('x_1');
    expect(() => g.value('nope')).to.throw(GraphError, /No value named "nope" in graph "small" \(one of: "x", "w", "b"/);
    expect(() => g.node('nope')).to.throw(GraphError, /No node named "nope"/);
    expect(() => g.value('x').name = 'w').to.throw(GraphError, /the name is taken/);
  });

  it('reads attributes with types checked, and writes them back', async () => {
    const m = await loadModel('fixtures/fmnist-cnn.onnx');
    const conv = m.graph.nodes.find((n) => n.opType === 'Conv')!;
    expect(conv.getInts('kernel_shape')).to.deep.equal([3, 3]);
    expect(conv.getInt('group', 1)).to.equal(1);
    expect(() => conv.getInt('kernel_shape')).to.throw(GraphError, /Expected an int attribute for "kernel_shape"/);
    conv.setAttr('dilations', attr.ints([1, 1]));
    const again = await loadModel(encodeModel(m));
    expect(again.graph.node(conv.name).getInts('dilations')).to.deep.equal([1, 1]);
  });

  it('an edited model is saved, loads in onnxruntime with the same outputs and passes the ONNX checker', async function () {
    const { model } = smallModel();
    const dir = mkdtempSync(join(tmpdir(), 'onnxpress-ir-'));
    try {
      const path = join(dir, 'edited.onnx');
      await saveModel(model, path);
      const back = await loadModel(path);
      expect(await run(back, [1, 2, 3])).to.deep.equal([1.5, 0, 0]);
      expect(await run(back, [-1, -2, 4])).to.deep.equal([0, 4.5, 2]);
      if (!hasPython('onnx')) this.skip();
      const r = runPython<{ ok: boolean }>(`import json,sys,onnx\nonnx.checker.check_model(onnx.load(json.load(sys.stdin)), full_check=True)\nprint(json.dumps({"ok": True}))`, path);
      expect(r.ok).to.equal(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('subgraph nodes read outer values, and those count as dependencies of the If node', async () => {
    const m = await loadModel('/usr/share/libonnx-testdata/data/node/test_if/model.onnx').catch(() => undefined);
    if (!m) return;
    const ifNode = m.graph.nodes.find((n) => n.opType === 'If')!;
    const subs = ifNode.subgraphs();
    expect(subs).to.have.length(2);
    for (const s of subs) expect(s.parent).to.equal(ifNode);
    expect(m.graph.problems()).to.deep.equal([]);
  });
});
