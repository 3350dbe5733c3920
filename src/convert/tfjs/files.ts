/**
 * TensorFlow.js model folders on disk: writing one atomically (`saveTfjs`) and reading one back as ONNX
 * (`loadTfjs`). Weight paths in `model.json` are confined to the model's folder: absolute paths, `..`, and
 * symbolic links that lead outside are refused, as `loadModel` refuses such external-data locations.
 */
import { realpathSync } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { LoadError } from '../../errors.js';
import type { Model } from '../../onnx/ir.js';
import { writeFilesAtomic } from '../../util/fs.js';
import { manifestBytes, type TfjsModelJson } from './format.js';
import { onnxToTfjs, type OnnxToTfjsOptions, type TfjsFiles } from './fromOnnx.js';
import { tfjsToOnnx, type TfjsToOnnxOptions } from './toOnnx.js';

/**
 * Converts an ONNX model and writes `model.json` and its weight shards into `dir` (created if needed). All files
 * appear together or none does; files of an earlier model in the folder are replaced.
 *
 * @example
 * ```ts
 * await saveTfjs(await loadModel('fixtures/fmnist-cnn.onnx'), 'web/cnn');
 * // in the browser: await tf.loadGraphModel('web/cnn/model.json')
 * ```
 */
export async function saveTfjs(model: Model, dir: string, options: OnnxToTfjsOptions = {}): Promise<TfjsFiles & { dir: string; bytes: number }> {
  const st = await stat(dir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new LoadError(`Cannot write a TensorFlow.js model to ${dir}: it is a file, not a folder`);
  const result = await onnxToTfjs(model, options);
  try {
    await writeFilesAtomic(result.files.map((f) => ({ path: join(dir, f.path), data: f.data })));
  } catch (e) {
    throw new LoadError(`Cannot write ${dir}: ${(e as Error).message}`, { cause: e });
  }
  // shards of an earlier model.json in this folder would be left orphaned: remove those the new one does not name
  const ours = new Set(result.files.map((f) => f.path));
  for (const name of await readdir(dir)) if (/^group\d+-shard\d+of\d+\.bin$/.test(name) && !ours.has(name)) await rm(join(dir, name), { force: true });
  return { ...result, dir, bytes: result.files.reduce((n, f) => n + f.data.byteLength, 0) };
}

/** Resolves a weight path of the manifest inside `dir`, refusing any that leaves it. */
function weightPath(dir: string, p: unknown, source: string): string {
  if (typeof p !== 'string' || p === '') throw new LoadError(`${source}: weight path ${JSON.stringify(p)} is not a file name`);
  if (isAbsolute(p) || /^[a-z]+:/i.test(p)) throw new LoadError(`${source}: weight path "${p}" must be relative to the model's folder (absolute paths and URLs are refused)`);
  const full = resolve(dir, decodeURIComponent(p));
  const rel = relative(dir, full);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new LoadError(`${source}: weight path "${p}" leaves the model's folder`);
  let real: string;
  try {
    real = realpathSync(full);
  } catch {
    throw new LoadError(`${source}: weight file "${p}" does not exist (looked for ${full})`);
  }
  const realDir = realpathSync(dir);
  if (real !== realDir && !real.startsWith(realDir + sep)) throw new LoadError(`${source}: weight file "${p}" is a link that leaves the model's folder`);
  return full;
}

/**
 * Reads a TensorFlow.js model (a folder holding `model.json`, or the path of the JSON file) and converts it to
 * ONNX. Weight files are read from the model's folder only; a missing or short one is a LoadError naming it.
 *
 * @example
 * ```ts
 * const model = await loadTfjs('web/cnn');          // or 'web/cnn/model.json'
 * await saveModel(model, 'cnn.onnx');
 * ```
 */
export async function loadTfjs(dirOrModelJson: string, options: TfjsToOnnxOptions = {}): Promise<Model> {
  const st = await stat(dirOrModelJson).catch(() => undefined);
  if (!st) throw new LoadError(`${dirOrModelJson}: no such file or folder`);
  const jsonPath = st.isDirectory() ? join(dirOrModelJson, 'model.json') : dirOrModelJson;
  const dir = resolve(dirname(jsonPath));
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (e) {
    throw new LoadError(`${jsonPath}: cannot read (${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no model.json in this folder' : (e as Error).message})`, { cause: e });
  }
  let json: TfjsModelJson;
  try {
    json = JSON.parse(text) as TfjsModelJson;
  } catch (e) {
    throw new LoadError(`${jsonPath}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (!json || typeof json !== 'object' || !Array.isArray(json.weightsManifest)) throw new LoadError(`${jsonPath}: not a TensorFlow.js model.json (no "weightsManifest" list)`);
  const need = manifestBytes(json.weightsManifest, jsonPath);
  // check every path before reading any file
  const paths = json.weightsManifest.flatMap((g) => {
    if (!g || !Array.isArray(g.paths) || !Array.isArray(g.weights)) throw new LoadError(`${jsonPath}: a weights manifest group lacks "paths" or "weights"`);
    return g.paths.map((p) => ({ p, full: weightPath(dir, p, jsonPath) }));
  });
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (const { p, full } of paths) {
    let data: Uint8Array;
    try {
      data = await readFile(full);
    } catch (e) {
      throw new LoadError(`${jsonPath}: cannot read weight file "${p}" (${(e as Error).message})`, { cause: e });
    }
    chunks.push(data);
    total += data.byteLength;
  }
  if (total < need) throw new LoadError(`${jsonPath}: the weight files (${paths.map((x) => x.p).join(', ')}) hold ${total} bytes but the manifest needs ${need}: a file is missing or truncated`);
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return tfjsToOnnx(json, all, { source: jsonPath, ...options });
}
