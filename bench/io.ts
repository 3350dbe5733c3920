/**
 * bench/io: load and save throughput on a model with about 400 MB of weights, side by side with reading and
 * writing the same bytes with plain `fs` (the baseline onnxpress should lose nothing to).
 *
 * Runs are interleaved (baseline, load, save, baseline, …) so that a noisy machine hits them alike; medians
 * are printed as MB/s and as ratios to the baseline.
 *
 *   npm run bench:io                # 400 MB, 5 rounds
 *   node dist/bench/io.js 100 3     # 100 MB, 3 rounds
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Model, Tensor, loadModel, saveModel, encodeModel } from '../src/index.js';
import { median } from '../src/util/stats.js';

const targetMB = Number(process.argv[2] ?? 400);
const rounds = Number(process.argv[3] ?? 5);

/** An MLP-shaped model: MatMul+Add layers whose weights add up to about `mb` megabytes. */
function makeModel(mb: number): Model {
  const m = new Model();
  m.irVersion = 8;
  m.opsetImports.set('', 13);
  m.producerName = 'onnxpress-bench';
  const width = 2048; // 16 MiB per float32 weight matrix
  const layers = Math.max(1, Math.round((mb * 1e6) / (width * width * 4)));
  const g = m.graph;
  let x = g.declareValue('input');
  x.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', width] };
  g.inputs.push(x);
  let seed = 1;
  for (let i = 0; i < layers; i++) {
    const w = new Float32Array(width * width);
    for (let j = 0; j < w.length; j++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      w[j] = (seed / 2 ** 32 - 0.5) * 0.05;
    }
    const wv = g.addInitializer(`w${i}`, Tensor.from('float32', [width, width], w));
    const bv = g.addInitializer(`b${i}`, Tensor.from('float32', [width], new Float32Array(width)));
    const mm = g.addNode({ opType: 'MatMul', inputs: [x, wv], outputs: [`mm${i}`] });
    const add = g.addNode({ opType: 'Add', inputs: [mm.output(), bv], outputs: [`add${i}`] });
    x = g.addNode({ opType: 'Relu', inputs: [add.output()], outputs: [`h${i}`] }).output();
  }
  x.type = { kind: 'tensor', elemType: 'float32', shape: ['batch', width] };
  g.outputs.push(x);
  return m;
}


async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'onnxpress-bench-io-'));
  try {
    const src = join(dir, 'model.onnx');
    const bytes = encodeModel(makeModel(targetMB));
    await writeFile(src, bytes);
    const mb = bytes.byteLength / 1e6;
    console.log(`bench/io: model of ${mb.toFixed(1)} MB, ${rounds} interleaved rounds (median)`);
    const t = { readFile: [] as number[], load: [] as number[], loadTouch: [] as number[], writeFile: [] as number[], writeSync: [] as number[], save: [] as number[] };
    let sink = 0;
    for (let r = 0; r < rounds; r++) {
      t.readFile.push(await time(async () => void (sink += (await readFile(src)).byteLength)));
      t.load.push(await time(async () => void (sink += (await loadModel(src)).graph.nodes.length)));
      // the same load, then touch every weight through data(): checks the views are usable without copies
      t.loadTouch.push(
        await time(async () => {
          const m = await loadModel(src);
          for (const v of m.graph.initializers.values()) sink += v.initializer!.data<Float32Array>()[0];
        }),
      );
      const model = await loadModel(src);
      const out1 = join(dir, `base-${r}.onnx`);
      const out2 = join(dir, `save-${r}.onnx`);
      const raw = await readFile(src);
      t.writeFile.push(await time(() => writeFile(out1, raw)));
      await rm(out1);
      // saveModel fsyncs before its atomic rename (a rename without it can leave an empty file after a crash)
      t.writeSync.push(
        await time(async () => {
          const fh = await open(out1, 'w');
          await fh.writeFile(raw);
          await fh.sync();
          await fh.close();
        }),
      );
      t.save.push(await time(() => saveModel(model, out2)));
      await rm(out1);
      await rm(out2);
    }
    const row = (name: string, ms: number[], base: number[]) => {
      const m = median(ms);
      const b = median(base);
      console.log(`${name.padEnd(34)} ${(mb / (m / 1000)).toFixed(0).padStart(7)} MB/s  ${m.toFixed(0).padStart(6)} ms  ratio to baseline ${(b / m).toFixed(2)}`);
    };
    row('fs.readFile (baseline)', t.readFile, t.readFile);
    row('loadModel', t.load, t.readFile);
    row('loadModel + touch every weight', t.loadTouch, t.readFile);
    row('fs.writeFile (baseline)', t.writeFile, t.writeFile);
    row('fs.writeFile + fsync (baseline)', t.writeSync, t.writeSync);
    row('saveModel (unchanged), vs writeFile', t.save, t.writeFile);
    row('saveModel (unchanged), vs + fsync', t.save, t.writeSync);
    if (sink === -1) console.log(sink);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
