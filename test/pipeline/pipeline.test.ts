/** The pipeline: config validation, sweeps, runs on the fixture CNN, the cache, sharding, and the chainable API. */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { LoadError, OptionsError } from '../../src/errors.js';
import { footprintSchema, reportSchema, type Footprint, type VariantResult } from '../../src/eval/schema.js';
import { loadTfjs } from '../../src/convert/tfjs/index.js';
import { loadModel } from '../../src/onnx/io.js';
import { encodeModel } from '../../src/onnx/proto.js';
import { parseConfig, pipeline, resolveConfig, runConfig, type PipelineConfig } from '../../src/pipeline/index.js';
import { hasPython, runPython } from '../helpers/python.js';
import { rejects as expectReject } from '../helpers/assert.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CNN = join(ROOT, 'fixtures/fmnist-cnn.onnx');
const DATA = join(ROOT, 'fixtures/fmnist-test-256/cnn.json');
/** Short timing: these tests check plumbing, not speed. */
const LATENCY = { ep: ['cpu' as const], batch: [1], time: 50, maxTime: 100 };


/** The example shape, with paths relative to `dir` (where the config file lives). */
function exampleConfig(dir: string, outDir = 'out'): PipelineConfig {
  return {
    model: relative(dir, CNN),
    data: relative(dir, DATA),
    calibration: relative(dir, DATA),
    outDir,
    variants: [
      { name: 'int8', passes: [{ type: 'quantize', mode: 'static', samples: 64 }] },
      { name: 'pruned', passes: [{ type: 'prune', method: 'channels', sparsity: 0.3 }] },
    ],
    evaluate: { samples: 128, latency: LATENCY },
  };
}

const byName = (vs: readonly VariantResult[]) => new Map(vs.map((v) => [v.name, v]));
const readJson = async <T>(p: string) => JSON.parse(await readFile(p, 'utf8')) as T;

describe('pipeline', function () {
  this.timeout(120_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-pipeline-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('config validation', () => {
    const base = { model: CNN, data: DATA, calibration: DATA };
    it('names the bad field of a pass, checked by the pass’s own schema', async () => {
      const raw = { ...base, variants: [{ name: 'a', passes: [{ type: 'quantize' }] }, { name: 'b', passes: [{ type: 'prune', method: 'channels', sparsity: 1.5 }] }] };
      await expectReject(resolveConfig(raw), OptionsError, /variants\[1\]\.passes\[0\]\.sparsity: Too big: expected number to be <=1/);
    });
    it('refuses unknown options, listing the known ones', async () => {
      const raw = { ...base, variants: [{ name: 'a', passes: [{ type: 'prune', sparsty: 0.5 }] }] };
      await expectReject(resolveConfig(raw), OptionsError, /variants\[0\]\.passes\[0\]\.sparsty: unknown option of prune \(one of: "method", "sparsity"/);
    });
    it('names bad top-level fields, types and parents', async () => {
      await expectReject(resolveConfig({ ...base, model: 3 }), OptionsError, /model: Invalid input: expected string, received number/);
      await expectReject(resolveConfig({ ...base, variants: [{ name: 'a', passes: [{ type: 'sharpen' }] }] }), OptionsError, /variants\[0\]\.passes\[0\]\.type: Invalid option/);
      await expectReject(resolveConfig({ ...base, variants: [{ name: 'a', parent: 'b', passes: [{ type: 'hygiene' }] }] }), OptionsError, /variants\[0\]\.parent: no variant named 'b' \(one of: "float", "a"\)/);
      await expectReject(
        resolveConfig({ ...base, variants: [{ name: 'a', passes: [{ type: 'hygiene' }] }, { name: 'a', passes: [{ type: 'hygiene' }] }] }),
        OptionsError,
        /variants\[1\]\.name: 'a' is also the name of variants\[0\]/,
      );
      await expectReject(resolveConfig({ ...base, variants: [{ name: 'a/b', passes: [{ type: 'hygiene' }] }] }), OptionsError, /variants\[0\]\.name: Expected a name of letters/);
      await expectReject(resolveConfig({ ...base, evaluate: { latency: { batch: [0] } } }), OptionsError, /evaluate\.latency/);
    });
    it('static quantization without calibration data anywhere is an error at the field', async () => {
      await expectReject(resolveConfig({ model: CNN, variants: [{ name: 'q', passes: [{ type: 'quantize', mode: 'static' }] }] }), OptionsError, /variants\[0\]\.passes\[0\]\.calibration: static quantization needs calibration data/);
    });
    it('names missing files with their field', async () => {
      await expectReject(resolveConfig({ ...base, model: 'nope.onnx' }, { baseDir: tmp }), LoadError, new RegExp(`model: no such file: ${join(tmp, 'nope.onnx')}`));
      await expectReject(
        resolveConfig({ ...base, variants: [{ name: 'q', passes: [{ type: 'quantize', calibration: 'missing.json' }] }] }, { baseDir: tmp }),
        LoadError,
        /variants\[0\]\.passes\[0\]\.calibration: no such file/,
      );
    });
    it('fills defaults: the config’s calibration, latency off, machine decisions explicit, paths absolute', async () => {
      const c = await resolveConfig(exampleConfig(tmp), { baseDir: tmp });
      expect(c.model).to.equal(CNN);
      expect(c.outDir).to.equal(join(tmp, 'out'));
      expect(c.evaluate.data).to.equal(DATA);
      const [q, p] = c.variants.map((v) => v.passes[0]!);
      expect(q).to.include({ type: 'quantize', mode: 'static', calibration: DATA, latency: 'off', method: 'minmax', perChannel: true });
      expect(q!.reduceRange).to.be.a('boolean');
      expect(q!.activationType).to.be.oneOf(['uint8', 'int8']);
      expect(p).to.include({ type: 'prune', method: 'channels', sparsity: 0.3, calibration: DATA, plan: 'uniform' });
    });
  });

  describe('sweeps and parents', () => {
    const sweep = {
      model: CNN,
      calibration: DATA,
      variants: [
        { name: 'pruned', passes: [{ type: 'prune', method: 'channels' }], sweep: { sparsity: [0.3, 0.5] } },
        { name: 'int8', parent: 'pruned', passes: [{ type: 'quantize', mode: 'dynamic' }] },
        { name: 'mix', passes: [{ type: 'prune', method: 'channels' }, { type: 'quantize' }], sweep: { 'quantize.mode': ['static', 'dynamic'] } },
      ],
    };
    it('expands a sweep into one variant per value and a child of a swept parent with it', async () => {
      const c = await resolveConfig(sweep);
      expect(c.variants.map((v) => [v.name, v.parent])).to.deep.equal([
        ['pruned-0.3', undefined],
        ['pruned-0.5', undefined],
        ['int8-0.3', 'pruned-0.3'],
        ['int8-0.5', 'pruned-0.5'],
        ['mix-static', undefined],
        ['mix-dynamic', undefined],
      ]);
      expect(c.variants[1]!.passes[0]!.sparsity).to.equal(0.5);
      expect(c.variants[5]!.passes[1]!.mode).to.equal('dynamic');
      expect(c.variants[2]!.from).to.equal('int8');
    });
    it('names a sweep key that fits no pass, or several', async () => {
      await expectReject(resolveConfig({ ...sweep, variants: [{ name: 'p', passes: [{ type: 'prune' }], sweep: { bits: [4] } }] }), OptionsError, /variants\[0\]\.sweep\.bits: no pass of this variant has an option 'bits'/);
      await expectReject(
        resolveConfig({ ...sweep, variants: [{ name: 'p', passes: [{ type: 'prune' }, { type: 'quantize' }], sweep: { exclude: [['Conv']] } }] }),
        OptionsError,
        /variants\[0\]\.sweep\.exclude\[0\]: Invalid input/,
      );
      await expectReject(
        resolveConfig({ ...sweep, variants: [{ name: 'p', passes: [{ type: 'prune', method: 'channels' }, { type: 'quantize' }], sweep: { calibration: [DATA] } }] }),
        OptionsError,
        /several passes have an option 'calibration'/,
      );
    });
    it('checks swept values with the pass’s schema', async () => {
      await expectReject(resolveConfig({ ...sweep, variants: [{ name: 'p', passes: [{ type: 'prune', method: 'channels' }], sweep: { sparsity: [0.5, 2] } }] }), OptionsError, /variants\[0\]\.passes\[0\]\.sparsity: Too big/);
    });
  });

  it('a convert step to tfjs writes models/<variant>.tfjs/ that converts back to the same outputs in onnxruntime', async () => {
    const dir = join(tmp, 'tfjs');
    await mkdir(dir, { recursive: true });
    const r = await runConfig(
      await resolveConfig({ model: CNN, outDir: join(dir, 'out'), variants: [{ name: 'web', passes: [{ type: 'convert', to: 'tfjs' }] }], evaluate: { latency: false } }, { baseDir: dir }),
    );
    expect(r.failed).to.deep.equal([]);
    const web = byName(r.variants).get('web')!;
    expect(web.notes!.join('\n')).to.match(/TensorFlow\.js graph model written to models\/web\.tfjs\//);
    const files = await readdir(join(dir, 'out/models/web.tfjs'));
    expect(files).to.include('model.json');
    const back = await loadTfjs(join(dir, 'out/models/web.tfjs'));
    const x = new Float32Array(2 * 784).map((_, i) => Math.sin(i));
    const outputs: Float32Array[] = [];
    for (const m of [await loadModel(CNN), back]) {
      const s = await ort.InferenceSession.create(encodeModel(m));
      const o = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [2, 1, 28, 28]) });
      outputs.push(o[s.outputNames[0]!]!.data as Float32Array);
    }
    outputs[0]!.forEach((v, i) => expect(outputs[1]![i]).to.be.closeTo(v, 1e-4));
  });

  describe('runs on the fixture CNN', () => {
    let dir: string;
    let configPath: string;
    let first: Footprint;
    /** The models of the first run, by variant name. */
    const firstBytes = new Map<string, Buffer>();
    const run = async (cfg: PipelineConfig, options: Parameters<typeof runConfig>[1] = {}) => runConfig(await resolveConfig(cfg, { baseDir: dir }), options);

    before(async () => {
      dir = join(tmp, 'cfg');
      await mkdir(dir, { recursive: true });
      configPath = join(dir, 'config.json');
      await writeFile(configPath, JSON.stringify(exampleConfig(dir)));
      const r = await run(await readJson<PipelineConfig>(configPath));
      expect(r.failed).to.deep.equal([]);
      first = footprintSchema.parse(await readJson(join(dir, 'out/footprint.json')));
      for (const n of ['int8', 'pruned']) firstBytes.set(n, await readFile(join(dir, 'out/models', `${n}.onnx`)));
    });

    it('writes footprint.json that footprintSchema accepts, the float model as the reference row', () => {
      expect(first.reference).to.equal('float');
      expect(first.variants.map((v) => v.name)).to.deep.equal(['float', 'int8', 'pruned']);
      const v = byName(first.variants);
      expect(v.get('float')!.parent).to.equal(undefined);
      expect(v.get('int8')!.parent).to.equal('float');
      expect(v.get('int8')!.passes[0]).to.include({ type: 'quantize', mode: 'static', samples: 64 });
      for (const x of first.variants) {
        expect(x.model).to.equal(`models/${x.name}.onnx`);
        expect(x.accuracy!.samples).to.equal(128);
        expect(x.latency).to.have.length(1);
        expect(x.latency[0]).to.include({ available: true, ep: 'cpu', batch: 1 });
        expect(x.key).to.match(/^[0-9a-f]{64}$/);
      }
      // channel pruning removes parameters; int8 makes the file smaller
      expect(v.get('pruned')!.size.parameters).to.be.below(v.get('float')!.size.parameters * 0.8);
      expect(v.get('int8')!.size.bytes).to.be.below(v.get('float')!.size.bytes * 0.5);
      // the float model's accuracy on its first 128 samples, as onnxruntime gives it: close to the 91.8% of 256
      expect(v.get('float')!.accuracy!.top1).to.be.within(0.85, 0.97);
    });

    it('writes report.json/md/html for a whole run; report.json fits its schema', async () => {
      const report = reportSchema.parse(await readJson(join(dir, 'out/report.json')));
      expect(report.variants.map((v) => v.name)).to.deep.equal(['float', 'int8', 'pruned']);
      expect(await readFile(join(dir, 'out/report.md'), 'utf8')).to.match(/\| pruned \|/);
      expect(await readFile(join(dir, 'out/report.html'), 'utf8')).to.match(/<svg/);
    });

    it('saves models that onnxruntime loads and runs (and the ONNX checker accepts)', async () => {
      const files = (await readdir(join(dir, 'out/models'))).sort();
      expect(files).to.deep.equal(['float.onnx', 'int8.onnx', 'pruned.onnx']);
      for (const f of files) {
        const s = await ort.InferenceSession.create(join(dir, 'out/models', f));
        const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', new Float32Array(784), [1, 1, 28, 28]) });
        expect(out[s.outputNames[0]!]!.dims).to.deep.equal([1, 10]);
        await s.release();
      }
      if (hasPython('onnx')) {
        const r = runPython<{ ok: boolean }>(
          'import json,sys,onnx\nfor p in json.load(sys.stdin): onnx.checker.check_model(onnx.load(p))\nprint(json.dumps({"ok": True}))',
          files.map((f) => join(dir, 'out/models', f)),
        );
        expect(r.ok).to.equal(true);
      }
    });

    it('a second run reuses every model and metric from the cache (same keys, same numbers)', async () => {
      const r = await run(await readJson<PipelineConfig>(configPath));
      const again = byName(r.variants);
      for (const v of first.variants) {
        const w = again.get(v.name)!;
        expect(w.key).to.equal(v.key);
        expect(w.notes).to.include('reused: metrics from cache');
        if (v.name !== 'float') expect(w.notes).to.include(`reused: model from cache/${v.key}.onnx`);
        expect(w.timings).to.deep.equal(v.timings);
        expect(w.latency).to.deep.equal(v.latency);
      }
    });

    it('a changed option recomputes that variant only', async () => {
      const cfg = await readJson<PipelineConfig>(configPath);
      (cfg.variants![1]!.passes[0] as unknown as { sparsity: number }).sparsity = 0.4;
      const r = byName((await run(cfg)).variants);
      expect(r.get('pruned')!.key).not.to.equal(byName(first.variants).get('pruned')!.key);
      expect(r.get('pruned')!.notes ?? []).not.to.satisfy((n: string[]) => n.some((x) => x.startsWith('reused')));
      expect(r.get('int8')!.notes).to.include('reused: metrics from cache');
      expect(r.get('pruned')!.size.parameters).to.be.below(byName(first.variants).get('pruned')!.size.parameters);
    });

    it('a changed seed or calibration file changes the keys', async () => {
      const c1 = await resolveConfig(exampleConfig(dir), { baseDir: dir });
      const other = join(dir, 'calib.json');
      // other calibration content (the first 64 samples only)
      await writeFile(other, JSON.stringify({ ...(await readJson<object>(DATA)), images: join(ROOT, 'fixtures/fmnist-test-256/images-idx3-ubyte.gz'), labels: join(ROOT, 'fixtures/fmnist-test-256/labels-idx1-ubyte.gz'), limit: 64 }));
      const runKeys = async (cfg: PipelineConfig) => byName((await run(cfg, { report: false })).variants);
      const base = byName(first.variants);
      const seeded = await runKeys({ ...exampleConfig(dir), seed: 7, variants: [exampleConfig(dir).variants![0]!] });
      expect(seeded.get('int8')!.key).not.to.equal(base.get('int8')!.key);
      expect(seeded.get('float')!.key).to.equal(base.get('float')!.key);
      const recal = await runKeys({ ...exampleConfig(dir), calibration: 'calib.json', variants: [exampleConfig(dir).variants![0]!] });
      expect(recal.get('int8')!.key).not.to.equal(base.get('int8')!.key);
      expect(c1.variants[0]!.passes[0]!.calibration).to.equal(DATA);
    });

    it('--force recomputes, and the models come out byte-identical (deterministic)', async () => {
      const r = await run(await readJson<PipelineConfig>(configPath), { force: true });
      for (const v of r.variants) expect(v.notes ?? []).not.to.satisfy((n: string[]) => n.some((x) => x.startsWith('reused')));
      for (const n of ['int8', 'pruned']) expect((await readFile(join(dir, 'out/models', `${n}.onnx`))).equals(firstBytes.get(n)!), n).to.equal(true);
    });

    it('shards 1/2 and 2/2 record every variant exactly once, the reference in both', async () => {
      const cfg: PipelineConfig = {
        ...exampleConfig(dir, 'sharded'),
        variants: [
          ...exampleConfig(dir).variants!,
          { name: 'pruned-int8', parent: 'pruned', passes: [{ type: 'quantize', mode: 'dynamic' }] },
          { name: 'tidy', passes: [{ type: 'hygiene' }] },
        ],
      };
      const c = await resolveConfig(cfg, { baseDir: dir });
      const s1 = await runConfig(c, { shard: { index: 1, count: 2 } });
      const s2 = await runConfig(c, { shard: { index: 2, count: 2 } });
      expect(s1.report).to.equal(undefined);
      const f1 = footprintSchema.parse(await readJson(join(dir, 'sharded/footprint-1-of-2.json')));
      const f2 = footprintSchema.parse(await readJson(join(dir, 'sharded/footprint-2-of-2.json')));
      expect(f1.shard).to.deep.equal({ index: 1, count: 2 });
      const names = [...f1.variants, ...f2.variants].map((v) => v.name).filter((n) => n !== 'float');
      expect(names.sort()).to.deep.equal(['int8', 'pruned', 'pruned-int8', 'tidy']);
      expect(f1.variants[0]!.name).to.equal('float');
      expect(f2.variants[0]!.name).to.equal('float');
      // shard 2 holds pruned-int8 but not its parent: the parent was computed (cached), not recorded
      expect(s2.variants.map((v) => v.name)).to.deep.equal(['float', 'pruned', 'tidy']);
      expect(s1.variants.map((v) => v.name)).to.deep.equal(['float', 'int8', 'pruned-int8']);
      expect(s1.variants.every((v) => !v.error)).to.equal(true);
    });

    it('a failing pass is recorded as the variant’s error, and its children fail with it', async () => {
      const cfg: PipelineConfig = {
        ...exampleConfig(dir, 'failing'),
        variants: [
          // the MLP takes flat inputs; the CNN's NCHW data does not fit it
          { name: 'bad', passes: [{ type: 'distill', data: relative(dir, DATA), student: relative(dir, join(ROOT, 'fixtures/fmnist-mlp.onnx')), epochs: 1 }] },
          { name: 'child', parent: 'bad', passes: [{ type: 'hygiene' }] },
          { name: 'ok', passes: [{ type: 'hygiene' }] },
        ],
      };
      const r = await run(cfg);
      expect(r.failed).to.deep.equal(['bad', 'child']);
      const v = byName(r.variants);
      expect(v.get('bad')!.error).to.match(/^passes\[0\] \(distill\)/);
      expect(v.get('child')!.error).to.match(/parent 'bad' failed/);
      expect(v.get('ok')!.error).to.equal(undefined);
      footprintSchema.parse(await readJson(join(dir, 'failing/footprint.json')));
    });
  });

  describe('the chainable API', () => {
    const chain = () =>
      pipeline(CNN, { seed: 3 })
        .prune({ method: 'channels', sparsity: 0.5, calibration: DATA })
        .quantize({ mode: 'static', calibration: DATA, samples: 64 })
        .evaluate({ data: DATA, samples: 64, latency: LATENCY });

    it('validates each step at once with the pass’s schema; errors name the step and the field', () => {
      expect(() => pipeline(CNN).prune({ sparsity: 2 })).to.throw(OptionsError, /Invalid options for step 1 \(prune\): sparsity: Too big/);
      expect(() => pipeline(CNN).hygiene().quantize({ mode: 'static' })).to.throw(OptionsError, /step 2 \(quantize\): calibration: static quantization needs calibration data/);
      expect(() => pipeline(CNN).quantize({ mode: 'dynamic', frob: 1 } as never)).to.throw(OptionsError, /frob: unknown option of quantize/);
    });

    it('toConfig() round-trips: the config parses, and resolves to what the pipeline runs', async () => {
      const cfg = chain().toConfig({ outDir: join(tmp, 'api'), relativeTo: tmp });
      expect(cfg.model).to.equal(relative(tmp, CNN));
      expect(cfg.variants).to.deep.equal([
        {
          name: 'prune+quantize',
          passes: [
            { type: 'prune', method: 'channels', sparsity: 0.5, calibration: relative(tmp, DATA) },
            { type: 'quantize', mode: 'static', calibration: relative(tmp, DATA), samples: 64 },
          ],
        },
      ]);
      const text = JSON.stringify(cfg);
      expect(JSON.parse(text)).to.deep.equal(cfg);
      parseConfig(JSON.parse(text));
      const fromFile = await resolveConfig(JSON.parse(text), { baseDir: tmp });
      const fromApi = await resolveConfig(chain().toConfig({ outDir: join(tmp, 'api') }));
      expect(fromFile).to.deep.equal(fromApi);
    });

    it('the chain and the same config give the same keys and byte-identical models', async () => {
      const api = await chain().as('small').run({ outDir: join(tmp, 'api') });
      expect(api.failed).to.deep.equal([]);
      expect(api.result.name).to.equal('small');
      expect(api.result.passes.map((p) => p.type)).to.deep.equal(['prune', 'quantize']);
      // the same pipeline written as a config file in another folder, run through the CLI's path
      const cfgDir = join(tmp, 'elsewhere');
      await mkdir(cfgDir, { recursive: true });
      await writeFile(join(cfgDir, 'c.json'), JSON.stringify(chain().as('small').toConfig({ outDir: join(cfgDir, 'out'), relativeTo: cfgDir })));
      const viaConfig = await runConfig(await resolveConfig(await readJson(join(cfgDir, 'c.json')), { baseDir: cfgDir }));
      expect(viaConfig.variants.map((v) => v.key)).to.deep.equal(api.variants.map((v) => v.key));
      const a = await readFile(join(tmp, 'api/models/small.onnx'));
      const b = await readFile(join(cfgDir, 'out/models/small.onnx'));
      expect(a.equals(b)).to.equal(true);
      expect(viaConfig.variants[1]!.notes ?? []).not.to.include('reused: metrics from cache');
    });

    it('takes a loaded Model, keyed by the hash of its saved bytes', async () => {
      const model = await loadModel(CNN);
      const r = await pipeline(model).hygiene().evaluate({ latency: false }).run({ outDir: join(tmp, 'model-object') });
      expect(r.failed).to.deep.equal([]);
      const saved = await readFile(join(tmp, 'model-object/models/float.onnx'));
      expect(r.variants[0]!.key).to.equal(createHash('sha256').update(saved).digest('hex'));
      const again = await pipeline(await loadModel(CNN)).hygiene().evaluate({ latency: false }).run({ outDir: join(tmp, 'model-object') });
      expect(again.variants.map((v) => v.key)).to.deep.equal(r.variants.map((v) => v.key));
      expect(again.result.notes).to.include(`reused: model from cache/${r.result.key}.onnx`);
      expect(() => pipeline(model).toConfig()).to.throw(OptionsError, /toConfig needs the model as a file path/);
    });
  });
});
