/**
 * Evaluation and calibration datasets, described by small JSON descriptor files shared by the CLI and the API.
 *
 * Formats:
 * - `idx`: MNIST / Fashion-MNIST IDX files (gzip or not): `{"format":"idx","images":"…-images-idx3-ubyte.gz","labels":"…"}`.
 * - `npy`: NumPy arrays, already preprocessed: `{"format":"npy","inputs":"x.npy","labels":"y.npy"}`, or
 *   `"inputs": {"input_ids": "ids.npy", "attention_mask": "mask.npy"}` for a model with several inputs.
 * - `npz`: one NumPy archive: `{"format":"npz","file":"data.npz","inputs":"x","labels":"y"}`; `inputs` may also be a
 *   list of array names or an object model-input → array name. Without `inputs`, every array except the labels is an
 *   input; without `labels`, an array named `labels`, `label` or `y` is used if present (`"labels": false` for none).
 * - `imagefolder`: `{"format":"imagefolder","root":"images/"}` with one sub-folder of PNG/JPEG files per class; class
 *   index = position of the folder name in sorted (code-point) order, like torchvision's `ImageFolder`.
 * - `json`: inline `{"format":"json","inputs":[[…],…] | {"name":[[…],…]},"labels":[…]}` or `"file":"data.json"`
 *   holding `{"inputs":…,"labels":…}`.
 *
 * Preprocessing (`input`, or for named inputs an object input name → settings): `layout` (`NCHW`, `NHWC`, `flat`),
 * `scale`, `mean`, `std` (per channel, `(x*scale - mean)/std`), `size` ([h, w], bilinear, images only), `channels`
 * (1 or 3, images only), `dtype` (output element type; default float32 once values are transformed, else the
 * stored type) and `sourceLayout` (`NCHW` or `NHWC`: how 4-D arrays are stored, for `layout` and per-channel stats).
 *
 * Top level: `limit`, `offset` and `shuffle` (true or a seed). Shuffling permutes the whole set with a seeded PRNG
 * (the same seed gives the same order on every machine), then `offset` and `limit` select from it.
 *
 * @example
 * ```ts
 * const ds = await loadDataset('fashion.json', { inputNames: ['input'] });
 * for await (const b of ds.batches(256)) console.log(b.size, b.feeds.input!.dims);
 * ```
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { LoadError, OptionsError, expected, oneOf } from '../errors.js';
import { float16ToFloat32 } from '../onnx/codecs.js';
import { DTYPES, INT_RANGE, elementCount, type DType, type TypedArray } from '../onnx/dtype.js';
import { convertChannels, decodeImage, resizeBilinear } from './formats/images.js';
import { parseIdx } from './formats/idx.js';
import { npzNames, parseNpy, readNpz } from './formats/npy.js';
import type { RawTensor } from './formats/raw.js';
import { mulberry32 } from '../util/random.js';

// ---------------------------------------------------------------------------------------------------------------
// Public types

/** Memory layout of image-like inputs: channels first, channels last, or one flat vector per sample. */
export type Layout = 'NCHW' | 'NHWC' | 'flat';

/** Element types a dataset can produce. */
export type OutputDType = 'float32' | 'float64' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64';

/** Preprocessing of one input. */
export interface InputSpec {
  /** Output layout. Images default to NCHW (`flat` = the NCHW sample flattened); arrays keep their stored shape. */
  layout?: Layout;
  /** Multiplies raw values (e.g. 1/255), before `mean`/`std`. */
  scale?: number;
  /** Per-channel mean subtracted after scaling (one value, or one per channel). */
  mean?: number[];
  /** Per-channel standard deviation divided by after subtracting the mean (positive). */
  std?: number[];
  /** Images only: resize to [height, width] (bilinear, half-pixel centres, no antialiasing). */
  size?: [number, number];
  /** Images only: 1 (grayscale, ITU-R 601-2 luma) or 3 (RGB). Default: idx as stored, imagefolder 3. */
  channels?: 1 | 3;
  /** Output element type (integers are rounded half to even and clamped). Default float32 when values are transformed. */
  dtype?: OutputDType;
  /** Arrays only: how 4-D arrays are stored (default NCHW); sets the channel axis and the transpose for `layout`. */
  sourceLayout?: 'NCHW' | 'NHWC';
}

/** A nested array of numbers, as in the `json` format. */
export type NestedNumbers = number | NestedNumbers[];

/** Fields every descriptor may have. */
export interface DescriptorCommon {
  name?: string;
  description?: string;
  /** Use at most this many samples (after `offset`). */
  limit?: number;
  /** Skip this many samples (after shuffling). */
  offset?: number;
  /** Shuffle deterministically: `true` (seed 0) or a seed in [0, 2³²). */
  shuffle?: boolean | number;
  /** Number of classes; default: folder count for imagefolder, else the largest label + 1. */
  numClasses?: number;
}

export interface IdxDescriptor extends DescriptorCommon {
  format: 'idx';
  images: string;
  labels?: string;
  input?: InputSpec;
}

export interface ImageFolderDescriptor extends DescriptorCommon {
  format: 'imagefolder';
  root: string;
  input?: InputSpec;
}

export interface NpyDescriptor extends DescriptorCommon {
  format: 'npy';
  /** One file (a single input) or model input name → file. */
  inputs: string | Record<string, string>;
  labels?: string;
  input?: InputSpec | Record<string, InputSpec>;
}

export interface NpzDescriptor extends DescriptorCommon {
  format: 'npz';
  file: string;
  /** An array name (a single input), a list of array names (inputs named alike), or model input name → array name. */
  inputs?: string | string[] | Record<string, string>;
  /** Array holding the labels; default `labels`, `label` or `y` if present; `false` for none. */
  labels?: string | false;
  input?: InputSpec | Record<string, InputSpec>;
}

export interface JsonDescriptor extends DescriptorCommon {
  format: 'json';
  /** Inline samples (dim 0 = samples), or input name → samples. Exclusive with `file`. */
  inputs?: NestedNumbers[] | Record<string, NestedNumbers[]>;
  labels?: number[];
  /** A JSON file holding `{"inputs": …, "labels": …}`. */
  file?: string;
  input?: InputSpec | Record<string, InputSpec>;
}

/** A validated dataset descriptor. */
export type DatasetDescriptor = IdxDescriptor | ImageFolderDescriptor | NpyDescriptor | NpzDescriptor | JsonDescriptor;

/** The dataset formats, in the order error messages list them. */
export const DATASET_FORMATS = ['idx', 'npy', 'npz', 'imagefolder', 'json'] as const;

/** One model feed of a batch: dims start with the batch size. */
export interface Feed {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** A slice of consecutive samples, ready to feed. */
export interface Batch {
  feeds: Record<string, Feed>;
  labels?: Int32Array;
  size: number;
}

/** One sample: its inputs (without the batch dimension) and label. */
export interface Sample {
  inputs: Record<string, Feed>;
  label?: number;
}

export interface Dataset {
  readonly size: number;
  /** Input names as the descriptor gives them; [] for a single unnamed input (the model's first input). */
  readonly inputNames: string[];
  /** Per feed name: dims of one sample (no batch dimension). */
  readonly sampleDims: Record<string, number[]>;
  readonly hasLabels: boolean;
  readonly numClasses?: number;
  /** Batches of `batchSize` samples (the last one may be smaller), preprocessed lazily. */
  batches(batchSize: number): AsyncIterable<Batch>;
}

/** What `loadDataset` returns: a Dataset plus random access and (for imagefolder) class names. */
export interface FileDataset extends Dataset {
  /** Class folder names for imagefolder datasets, by class index. */
  readonly classNames?: string[];
  /** The samples at positions [start, start + count) (count is cut at the end). */
  batch(start: number, count: number): Batch;
  sample(index: number): Sample;
}

export interface LoadDatasetOptions {
  /** Folder that relative paths resolve against (default: the descriptor file's folder, or the working folder). */
  baseDir?: string;
  /** The model's input names: names a single unnamed input (first name) and checks named ones. */
  inputNames?: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

const SPEC_KEYS = ['layout', 'scale', 'mean', 'std', 'size', 'channels', 'dtype', 'sourceLayout'] as const;
const COMMON_KEYS = ['format', 'name', 'description', 'limit', 'offset', 'shuffle', 'numClasses', 'input'];
const FORMAT_KEYS: Record<DatasetDescriptor['format'], string[]> = {
  idx: ['images', 'labels'],
  npy: ['inputs', 'labels'],
  npz: ['file', 'inputs', 'labels'],
  imagefolder: ['root'],
  json: ['inputs', 'labels', 'file'],
};
const OUTPUT_DTYPES: OutputDType[] = ['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64'];
const IMAGE_FORMATS = new Set(['idx', 'imagefolder']);

function whereOf(source?: string): string {
  return source ? ` in ${source}` : '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when an `input` object maps input names to settings rather than being settings itself. */
function isSpecMap(v: Record<string, unknown>): boolean {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.some((k) => !(SPEC_KEYS as readonly string[]).includes(k));
}

/**
 * Checks a parsed descriptor and returns a typed copy. Errors are OptionsErrors naming the field (`input.std`) and
 * `source` (the descriptor file), saying what was expected and what was found.
 */
export function validateDescriptor(raw: unknown, source?: string): DatasetDescriptor {
  const where = whereOf(source);
  const fail = (field: string, what: string, got: unknown): never => {
    throw new OptionsError(expected(what, `${field}${where}`, got));
  };
  if (!isObject(raw)) fail('the dataset descriptor', 'a JSON object with a "format" field', raw);
  const d = raw as Record<string, unknown>;
  const format = d.format;
  if (typeof format !== 'string' || !(DATASET_FORMATS as readonly string[]).includes(format)) {
    fail('format', `a dataset format ${oneOf(DATASET_FORMATS)}`, format);
  }
  const fmt = format as DatasetDescriptor['format'];
  const allowed = [...COMMON_KEYS, ...FORMAT_KEYS[fmt]];
  for (const k of Object.keys(d)) {
    if (!allowed.includes(k)) {
      throw new OptionsError(`Unknown field ${JSON.stringify(k)} in the ${fmt} dataset descriptor${where} ${oneOf(allowed)}`);
    }
  }
  const out: Record<string, unknown> = { format: fmt };
  const path = (field: string, required: boolean): string | undefined => {
    const v = d[field];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') fail(field, 'a file path (a non-empty string)', v);
    return v as string;
  };
  const nameMap = (field: string, v: Record<string, unknown>): Record<string, string> => {
    if (Object.keys(v).length === 0) fail(field, 'at least one input name → path entry', v);
    for (const [k, p] of Object.entries(v)) if (typeof p !== 'string' || p === '') fail(`${field}.${k}`, 'a non-empty string', p);
    return { ...(v as Record<string, string>) };
  };

  for (const k of ['name', 'description']) {
    if (d[k] !== undefined) {
      if (typeof d[k] !== 'string') fail(k, 'a string', d[k]);
      out[k] = d[k];
    }
  }
  if (d.limit !== undefined) {
    if (!Number.isSafeInteger(d.limit) || (d.limit as number) < 1) fail('limit', 'a positive integer', d.limit);
    out.limit = d.limit;
  }
  if (d.offset !== undefined) {
    if (!Number.isSafeInteger(d.offset) || (d.offset as number) < 0) fail('offset', 'a non-negative integer', d.offset);
    out.offset = d.offset;
  }
  if (d.shuffle !== undefined) {
    const s = d.shuffle;
    if (typeof s !== 'boolean' && !(Number.isSafeInteger(s) && (s as number) >= 0 && (s as number) < 2 ** 32)) {
      fail('shuffle', 'true, false or an integer seed in [0, 4294967295]', s);
    }
    out.shuffle = s;
  }
  if (d.numClasses !== undefined) {
    if (!Number.isSafeInteger(d.numClasses) || (d.numClasses as number) < 1) fail('numClasses', 'a positive integer', d.numClasses);
    out.numClasses = d.numClasses;
  }

  let named: boolean | undefined; // whether inputs are named (undefined: not known before reading an npz)
  switch (fmt) {
    case 'idx':
      out.images = path('images', true);
      if (d.labels !== undefined) out.labels = path('labels', false);
      named = false;
      break;
    case 'imagefolder':
      out.root = path('root', true);
      named = false;
      break;
    case 'npy':
      if (typeof d.inputs === 'string') {
        out.inputs = path('inputs', true);
        named = false;
      } else if (isObject(d.inputs)) {
        out.inputs = nameMap('inputs', d.inputs);
        named = true;
      } else {
        fail('inputs', 'a .npy file path, or an object mapping input names to .npy files', d.inputs);
      }
      if (d.labels !== undefined) out.labels = path('labels', false);
      break;
    case 'npz': {
      out.file = path('file', true);
      const v = d.inputs;
      if (typeof v === 'string' && v !== '') {
        out.inputs = v;
        named = false;
      } else if (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s !== '')) {
        out.inputs = [...(v as string[])];
        named = true;
      } else if (isObject(v)) {
        out.inputs = nameMap('inputs', v);
        named = true;
      } else if (v !== undefined) {
        fail('inputs', 'an array name, a list of array names, or an object mapping input names to array names', v);
      }
      if (d.labels !== undefined) {
        if (d.labels !== false && (typeof d.labels !== 'string' || d.labels === '')) fail('labels', 'an array name or false', d.labels);
        out.labels = d.labels;
      }
      break;
    }
    case 'json': {
      if ((d.inputs === undefined) === (d.file === undefined)) {
        fail('inputs', 'either inline "inputs" or a "file" (exactly one of them)', d.inputs === undefined ? 'neither' : 'both');
      }
      if (d.file !== undefined) {
        out.file = path('file', true);
        if (d.labels !== undefined) fail('labels', 'no inline labels when "file" is given (put them in the file)', d.labels);
      } else {
        const v = d.inputs;
        if (Array.isArray(v)) {
          if (v.length === 0) fail('inputs', 'a non-empty array of samples', v);
          named = false;
        } else if (isObject(v) && Object.keys(v).length > 0) {
          for (const [k, a] of Object.entries(v)) if (!Array.isArray(a) || a.length === 0) fail(`inputs.${k}`, 'a non-empty array of samples', a);
          named = true;
        } else {
          fail('inputs', 'an array of samples, or an object mapping input names to arrays of samples', v);
        }
        out.inputs = v;
        if (d.labels !== undefined) {
          if (!Array.isArray(d.labels) || !d.labels.every((l) => Number.isSafeInteger(l) && (l as number) >= 0)) {
            fail('labels', 'an array of non-negative integer labels', d.labels);
          }
          out.labels = [...(d.labels as number[])];
        }
      }
      break;
    }
  }

  if (d.input !== undefined) {
    if (!isObject(d.input)) fail('input', 'an object of preprocessing settings', d.input);
    const input = d.input as Record<string, unknown>;
    if (isSpecMap(input)) {
      if (named === false) {
        const bad = Object.keys(input).find((k) => !(SPEC_KEYS as readonly string[]).includes(k))!;
        throw new OptionsError(`Unknown field ${JSON.stringify(bad)} in input${where} ${oneOf(SPEC_KEYS)}`);
      }
      const map: Record<string, InputSpec> = {};
      for (const [name, spec] of Object.entries(input)) map[name] = validateSpec(spec, `input.${name}`, fmt, where);
      out.input = map;
    } else {
      out.input = validateSpec(input, 'input', fmt, where);
    }
  }
  return out as unknown as DatasetDescriptor;
}

function validateSpec(raw: unknown, field: string, format: string, where: string): InputSpec {
  const fail = (f: string, what: string, got: unknown): never => {
    throw new OptionsError(expected(what, `${field}.${f}${where}`, got));
  };
  if (!isObject(raw)) throw new OptionsError(expected('an object of preprocessing settings', `${field}${where}`, raw));
  for (const k of Object.keys(raw)) {
    if (!(SPEC_KEYS as readonly string[]).includes(k)) throw new OptionsError(`Unknown field ${JSON.stringify(k)} in ${field}${where} ${oneOf(SPEC_KEYS)}`);
  }
  const image = IMAGE_FORMATS.has(format);
  const spec: InputSpec = {};
  if (raw.layout !== undefined) {
    if (!['NCHW', 'NHWC', 'flat'].includes(raw.layout as string)) fail('layout', `a layout ${oneOf(['NCHW', 'NHWC', 'flat'])}`, raw.layout);
    spec.layout = raw.layout as Layout;
  }
  if (raw.scale !== undefined) {
    if (typeof raw.scale !== 'number' || !Number.isFinite(raw.scale)) fail('scale', 'a finite number', raw.scale);
    spec.scale = raw.scale as number;
  }
  for (const k of ['mean', 'std'] as const) {
    const v = raw[k];
    if (v === undefined) continue;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      fail(k, 'a non-empty array of finite numbers (one per channel, or one for all)', v);
    }
    if (k === 'std' && (v as number[]).some((x) => x <= 0)) {
      fail(k, 'positive numbers (a standard deviation of 0 or less cannot divide)', v);
    }
    spec[k] = [...(v as number[])];
  }
  if (spec.mean && spec.std && spec.mean.length !== spec.std.length && spec.mean.length !== 1 && spec.std.length !== 1) {
    fail('std', `${spec.mean.length} values, like ${field}.mean`, spec.std);
  }
  if (raw.size !== undefined) {
    if (!image) fail('size', `no resizing for the ${format} format (only idx and imagefolder images are resized)`, raw.size);
    const s = raw.size;
    if (!Array.isArray(s) || s.length !== 2 || !s.every((x) => Number.isSafeInteger(x) && (x as number) > 0)) {
      fail('size', '[height, width] as two positive integers', s);
    }
    spec.size = [(s as number[])[0]!, (s as number[])[1]!];
  }
  if (raw.channels !== undefined) {
    if (!image) fail('channels', `no channel conversion for the ${format} format (only idx and imagefolder images)`, raw.channels);
    if (raw.channels !== 1 && raw.channels !== 3) fail('channels', '1 (grayscale) or 3 (RGB)', raw.channels);
    spec.channels = raw.channels as 1 | 3;
  }
  if (raw.dtype !== undefined) {
    if (!OUTPUT_DTYPES.includes(raw.dtype as OutputDType)) fail('dtype', `an element type ${oneOf(OUTPUT_DTYPES)}`, raw.dtype);
    spec.dtype = raw.dtype as OutputDType;
  }
  if (raw.sourceLayout !== undefined) {
    if (image) fail('sourceLayout', `no sourceLayout for the ${format} format (images are decoded as height × width × channels)`, raw.sourceLayout);
    if (raw.sourceLayout !== 'NCHW' && raw.sourceLayout !== 'NHWC') fail('sourceLayout', '"NCHW" or "NHWC"', raw.sourceLayout);
    spec.sourceLayout = raw.sourceLayout as 'NCHW' | 'NHWC';
  }
  return spec;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

interface Ctx {
  where: string;
  baseDir: string;
}

/** One input as read from its files, before preprocessing. */
interface LoadedInput {
  /** Input name, or null for a single unnamed input. */
  name: string | null;
  /** Descriptor field it comes from, for messages (`images`, `inputs.x`). */
  field: string;
  /** The file (or inline field) it was read from. */
  file: string;
  kind: 'image' | 'array';
  raw: RawTensor;
  /** Element type used when nothing else decides it (json: float32). */
  defaultDType?: DType;
}

interface Loaded {
  inputs: LoadedInput[];
  labels?: { data: Int32Array; file: string; field: string };
  numClasses?: number;
  classNames?: string[];
}

const gunzipAsync = promisify(gunzip);

async function readDataFile(path: string, field: string, ctx: Ctx): Promise<Uint8Array> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw fileError(e, path, field, ctx);
  }
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      return await gunzipAsync(buf);
    } catch (e) {
      throw new LoadError(`${path} is not a readable gzip file (truncated or corrupt): ${(e as Error).message}`, { cause: e });
    }
  }
  return buf;
}

function fileError(e: unknown, path: string, field: string, ctx: Ctx): LoadError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new LoadError(`Dataset file not found: ${path} (${field}${ctx.where})`, { cause: e });
  if (code === 'EISDIR') return new LoadError(`${expected('a file', `${field}${ctx.where}`, path)}, which is a folder`, { cause: e });
  return new LoadError(`Cannot read ${path} (${field}${ctx.where}): ${(e as Error).message}`, { cause: e });
}

function toLabels(raw: RawTensor, file: string): Int32Array {
  const { dims, data, dtype } = raw;
  if (!(dims.length === 1 || (dims.length === 2 && dims[1] === 1))) {
    throw new LoadError(`${file}: ${expected('labels of shape [N] or [N, 1]', 'the labels', `shape [${dims.join(', ')}]`)}`);
  }
  if (dtype === 'float16') throw new LoadError(`${file}: ${expected('integer labels', 'the labels', 'float16 values')}`);
  const n = dims[0]!;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(data[i]!);
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new LoadError(`${file}: ${expected('non-negative integer class labels', `label ${i}`, v)}`);
    }
    out[i] = v;
  }
  return out;
}

async function loadIdx(d: IdxDescriptor, ctx: Ctx): Promise<Loaded> {
  const imagesPath = resolve(ctx.baseDir, d.images);
  const images = parseIdx(await readDataFile(imagesPath, 'images', ctx), imagesPath);
  if (images.dims.length !== 3 && images.dims.length !== 4) {
    throw new LoadError(`${imagesPath}: ${expected('images of shape [N, H, W] or [N, H, W, C]', 'images', `shape [${images.dims.join(', ')}]`)}`);
  }
  const out: Loaded = { inputs: [{ name: null, field: 'images', file: imagesPath, kind: 'image', raw: images }] };
  if (d.labels !== undefined) {
    const labelsPath = resolve(ctx.baseDir, d.labels);
    out.labels = { data: toLabels(parseIdx(await readDataFile(labelsPath, 'labels', ctx), labelsPath), labelsPath), file: labelsPath, field: 'labels' };
  }
  return out;
}

async function loadNpy(d: NpyDescriptor, ctx: Ctx): Promise<Loaded> {
  const entries: [string | null, string, string][] =
    typeof d.inputs === 'string' ? [[null, 'inputs', d.inputs]] : Object.entries(d.inputs).map(([k, p]) => [k, `inputs.${k}`, p]);
  const out: Loaded = { inputs: [] };
  for (const [name, field, p] of entries) {
    const file = resolve(ctx.baseDir, p);
    out.inputs.push({ name, field, file, kind: 'array', raw: parseNpy(await readDataFile(file, field, ctx), file) });
  }
  if (d.labels !== undefined) {
    const file = resolve(ctx.baseDir, d.labels);
    out.labels = { data: toLabels(parseNpy(await readDataFile(file, 'labels', ctx), file), file), file, field: 'labels' };
  }
  return out;
}

const NPZ_LABEL_NAMES = ['labels', 'label', 'y'];

async function loadNpz(d: NpzDescriptor, ctx: Ctx): Promise<Loaded> {
  const file = resolve(ctx.baseDir, d.file);
  const buf = await readDataFile(file, 'file', ctx);
  const names = npzNames(buf, file);
  let labelName: string | undefined;
  if (typeof d.labels === 'string') labelName = d.labels;
  else if (d.labels === undefined) labelName = NPZ_LABEL_NAMES.find((n) => names.includes(n));
  let entries: [string | null, string, string][]; // name, field, array
  if (typeof d.inputs === 'string') entries = [[null, 'inputs', d.inputs]];
  else if (Array.isArray(d.inputs)) entries = d.inputs.map((a) => [a, `inputs`, a]);
  else if (d.inputs) entries = Object.entries(d.inputs).map(([k, a]) => [k, `inputs.${k}`, a]);
  else {
    const rest = names.filter((n) => n !== labelName);
    if (rest.length === 0) throw new LoadError(`${file} has no input arrays: ${expected('at least one array besides the labels', 'file' + ctx.where, names)}`);
    entries = rest.length === 1 ? [[null, 'file', rest[0]!]] : rest.map((n) => [n, 'file', n]);
  }
  if (d.labels === undefined && labelName !== undefined && entries.some((e) => e[2] === labelName)) labelName = undefined;
  const wanted = [...new Set([...entries.map((e) => e[2]), ...(labelName !== undefined ? [labelName] : [])])];
  const arrays = readNpz(buf, file, wanted);
  const out: Loaded = {
    inputs: entries.map(([name, field, a]) => ({ name, field, file: `${file}[${a}]`, kind: 'array' as const, raw: arrays.get(a)! })),
  };
  if (labelName !== undefined) out.labels = { data: toLabels(arrays.get(labelName)!, `${file}[${labelName}]`), file: `${file}[${labelName}]`, field: 'labels' };
  return out;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

async function loadImageFolder(d: ImageFolderDescriptor, ctx: Ctx): Promise<Loaded> {
  const root = resolve(ctx.baseDir, d.root);
  const spec = (d.input ?? {}) as InputSpec;
  let top;
  try {
    top = await readdir(root, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LoadError(`Dataset folder not found: ${root} (root${ctx.where})`, { cause: e });
    if (code === 'ENOTDIR') throw new LoadError(`${expected('a folder of class sub-folders', `root${ctx.where}`, root)}, which is a file`, { cause: e });
    throw new LoadError(`Cannot read ${root} (root${ctx.where}): ${(e as Error).message}`, { cause: e });
  }
  const classes: string[] = [];
  for (const e of top) {
    // class folders may be symlinks (a common way to assemble a subset)
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(join(root, e.name)).catch(() => null))?.isDirectory())) classes.push(e.name);
  }
  classes.sort();
  if (classes.length === 0) throw new LoadError(`${root} has no class sub-folders: ${expected('one sub-folder of images per class', `root${ctx.where}`, top.map((e) => e.name))}`);
  const files: { path: string; label: number }[] = [];
  for (const [label, cls] of classes.entries()) {
    const dir = join(root, cls);
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => !e.isDirectory() && IMAGE_EXT.has(extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort();
    for (const n of names) files.push({ path: join(dir, n), label });
  }
  if (files.length === 0) throw new LoadError(`${root} holds no images: ${expected('.png, .jpg or .jpeg files in the class sub-folders', `root${ctx.where}`, classes)}`);
  const channels = spec.channels ?? 3;
  let h = spec.size?.[0] ?? 0, w = spec.size?.[1] ?? 0;
  let data: Uint8Array | undefined;
  const labels = new Int32Array(files.length);
  for (const [i, f] of files.entries()) {
    let buf: Buffer;
    try {
      buf = await readFile(f.path);
    } catch (e) {
      throw fileError(e, f.path, 'root', ctx);
    }
    const img = decodeImage(buf, f.path);
    if (!data) {
      if (!spec.size) [h, w] = [img.height, img.width];
      data = new Uint8Array(files.length * h * w * channels);
    }
    if (!spec.size && (img.height !== h || img.width !== w)) {
      throw new LoadError(
        `${f.path}: ${expected(`a ${h}×${w} image like ${files[0]!.path} (or set input.size to resize all images)`, `root${ctx.where}`, `${img.height}×${img.width}`)}`,
      );
    }
    let px: ArrayLike<number> = img.data;
    if (img.channels !== channels) px = convertChannels(px, img.width * img.height, img.channels, channels, true);
    if (img.height !== h || img.width !== w) px = resizeBilinear(px, img.height, img.width, channels, h, w);
    const base = i * h * w * channels;
    for (let k = 0; k < h * w * channels; k++) data[base + k] = Math.min(255, Math.max(0, rint(px[k]!)));
    labels[i] = f.label;
  }
  return {
    inputs: [{ name: null, field: 'root', file: root, kind: 'image', raw: { dtype: 'uint8', dims: [files.length, h, w, channels], data: data! } }],
    labels: { data: labels, file: root, field: 'root' },
    numClasses: classes.length,
    classNames: classes,
  };
}

/** Reads nested number arrays into a dense float64 tensor, checking that they are rectangular. */
function nestedToTensor(samples: unknown[], field: string, fail: (field: string, what: string, got: unknown) => never): RawTensor {
  const dims: number[] = [samples.length];
  for (let v: unknown = samples[0]; Array.isArray(v); v = v[0]) dims.push(v.length);
  const data = new Float64Array(elementCount(dims));
  let k = 0;
  const walk = (v: unknown, level: number, path: string): void => {
    if (level === dims.length) {
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, 'a finite number', v);
      data[k++] = v as number;
      return;
    }
    if (!Array.isArray(v) || v.length !== dims[level]) {
      fail(path, `an array of ${dims[level]} items (the samples must all have shape [${dims.slice(1).join(', ')}])`, Array.isArray(v) ? `${v.length} items` : v);
    }
    for (let i = 0; i < dims[level]!; i++) walk((v as unknown[])[i], level + 1, `${path}[${i}]`);
  };
  walk(samples, 0, field);
  return { dtype: 'float64', dims, data };
}

async function loadJson(d: JsonDescriptor, ctx: Ctx): Promise<Loaded> {
  let inputs: unknown = d.inputs, labels: unknown = d.labels, file = 'the descriptor', where = ctx.where;
  let fail = (field: string, what: string, got: unknown): never => {
    throw new OptionsError(expected(what, `${field}${ctx.where}`, got));
  };
  if (d.file !== undefined) {
    file = resolve(ctx.baseDir, d.file);
    const text = new TextDecoder().decode(await readDataFile(file, 'file', ctx));
    let content: unknown;
    try {
      content = JSON.parse(text);
    } catch (e) {
      throw new LoadError(`${file} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    where = ` in ${file}`;
    fail = (field: string, what: string, got: unknown): never => {
      throw new LoadError(expected(what, `${field}${where}`, got));
    };
    if (!isObject(content)) fail('the JSON dataset file', 'an object with "inputs" and optional "labels"', content);
    const c = content as Record<string, unknown>;
    inputs = c.inputs;
    labels = c.labels;
    if (labels !== undefined && (!Array.isArray(labels) || !labels.every((l) => Number.isSafeInteger(l) && (l as number) >= 0))) {
      fail('labels', 'an array of non-negative integer labels', labels);
    }
  }
  const out: Loaded = { inputs: [] };
  const add = (name: string | null, field: string, v: unknown): void => {
    if (!Array.isArray(v) || v.length === 0) fail(field, 'a non-empty array of samples', v);
    out.inputs.push({ name, field, file, kind: 'array', raw: nestedToTensor(v as unknown[], field, fail), defaultDType: 'float32' });
  };
  if (Array.isArray(inputs)) add(null, 'inputs', inputs);
  else if (isObject(inputs) && Object.keys(inputs).length > 0) for (const [k, v] of Object.entries(inputs)) add(k, `inputs.${k}`, v);
  else fail('inputs', 'an array of samples, or an object mapping input names to arrays of samples', inputs);
  if (labels !== undefined) out.labels = { data: Int32Array.from(labels as number[]), file, field: 'labels' };
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Preprocessing plans: how one sample of one input becomes its slice of a batch

interface Plan {
  key: string;
  dtype: DType;
  sampleDims: number[];
  sampleLen: number;
  /** Writes source sample `index` at element `offset` of `out`. */
  fill(index: number, out: TypedArray, offset: number): void;
}

function perChannel(values: number[] | undefined, channels: number, fallback: number, field: string, what: string, where: string): Float64Array {
  if (!values) return new Float64Array(channels).fill(fallback);
  if (values.length === 1) return new Float64Array(channels).fill(values[0]!);
  if (values.length !== channels) {
    const count = channels === 1 ? '1 value' : `1 or ${channels} values`;
    throw new OptionsError(expected(`${count} (one per channel of ${what})`, `${field}${where}`, values));
  }
  return Float64Array.from(values);
}

/** Reads element i of any source array as a number (int64 via Number, float16 decoded once, up front). */
function numberReader(raw: RawTensor): (i: number) => number {
  const data = raw.data;
  if (raw.dtype === 'float16') {
    const f = float16ToFloat32(data as Uint16Array);
    return (i) => f[i]!;
  }
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return (i) => Number(data[i]!);
  const d = data as Float64Array;
  return (i) => d[i]!;
}

/** Rounds half to even, like numpy's rint (NaN → 0). */
function rint(v: number): number {
  if (Number.isNaN(v)) return 0;
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}


/** Stores `values` at `offset` of `out` (an array of `dtype`), rounding and clamping for integer types. */
function storeValues(out: TypedArray, dtype: DType, offset: number, values: Float64Array): void {
  if (out instanceof Float32Array || out instanceof Float64Array) {
    out.set(values, offset);
  } else if (out instanceof BigInt64Array) {
    for (let k = 0; k < values.length; k++) out[offset + k] = BigInt(Number.isFinite(values[k]!) ? rint(values[k]!) : 0);
  } else {
    const [lo, hi] = INT_RANGE[dtype]!;
    const o = out as Int32Array;
    for (let k = 0; k < values.length; k++) o[offset + k] = Math.min(hi, Math.max(lo, rint(values[k]!)));
  }
}

function imagePlan(input: LoadedInput, key: string, spec: InputSpec, specField: string, where: string): Plan {
  const { raw } = input;
  const [, h, w] = raw.dims as [number, number, number];
  const c0 = raw.dims[3] ?? 1;
  const c = spec.channels ?? c0;
  if (c !== c0 && c0 !== 1 && c0 !== 3) {
    throw new OptionsError(expected(`images with 1 or 3 channels to convert to ${c}`, `${specField}.channels${where}`, `${c0} channels in ${input.file}`));
  }
  const [oh, ow] = spec.size ?? [h, w];
  const scale = spec.scale ?? 1;
  const what = `the ${c}-channel images`;
  const mean = perChannel(spec.mean, c, 0, `${specField}.mean`, what, where);
  const std = perChannel(spec.std, c, 1, `${specField}.std`, what, where);
  const layout = spec.layout ?? 'NCHW';
  const pixels = oh * ow, len = pixels * c;
  const sampleDims = layout === 'NCHW' ? [c, oh, ow] : layout === 'NHWC' ? [oh, ow, c] : [len];
  // output position k → position in the HWC pixels, and its channel
  const src = new Int32Array(len), chan = new Int32Array(len);
  for (let k = 0; k < len; k++) {
    const [ch, p] = layout === 'NHWC' ? [k % c, Math.floor(k / c)] : [Math.floor(k / pixels), k % pixels];
    src[k] = p * c + ch;
    chan[k] = ch;
  }
  const dtype: DType = spec.dtype ?? 'float32';
  const data = raw.data as Uint8Array;
  const inLen = h * w * c0;
  const scratch = new Float64Array(len);
  return {
    key,
    dtype,
    sampleDims,
    sampleLen: len,
    fill(index, out, offset) {
      let px: ArrayLike<number> = data.subarray(index * inLen, (index + 1) * inLen);
      if (c !== c0) px = convertChannels(px, h * w, c0, c, false);
      if (oh !== h || ow !== w) px = resizeBilinear(px, h, w, c, oh, ow);
      for (let k = 0; k < len; k++) {
        const ch = chan[k]!;
        scratch[k] = (px[src[k]!]! * scale - mean[ch]!) / std[ch]!;
      }
      storeValues(out, dtype, offset, scratch);
    },
  };
}

function arrayPlan(input: LoadedInput, key: string, spec: InputSpec, specField: string, where: string): Plan {
  const { raw } = input;
  if (raw.dims.length === 0) {
    throw new LoadError(`${input.file}: ${expected('an array whose first dimension indexes samples', input.field, 'a scalar (shape [])')}`);
  }
  const dims = raw.dims.slice(1);
  const len = elementCount(dims);
  const srcLayout = spec.sourceLayout ?? 'NCHW';
  let sampleDims = dims;
  let src: Int32Array | null = null; // output position → source position, when transposing
  if (spec.layout === 'flat') {
    sampleDims = [len];
  } else if (spec.layout === 'NCHW' || spec.layout === 'NHWC') {
    if (dims.length !== 3) {
      throw new OptionsError(expected(`4-D data for layout ${spec.layout}`, `${specField}.layout${where}`, `shape [${raw.dims.join(', ')}] in ${input.file}`));
    }
    if (spec.layout !== srcLayout) {
      const [a, b, cc] = dims as [number, number, number];
      src = new Int32Array(len);
      if (srcLayout === 'NCHW') {
        // source C,H,W = a,b,cc → output H,W,C
        sampleDims = [b, cc, a];
        for (let ch = 0; ch < a; ch++) for (let p = 0; p < b * cc; p++) src[p * a + ch] = ch * b * cc + p;
      } else {
        // source H,W,C = a,b,cc → output C,H,W
        sampleDims = [cc, a, b];
        for (let ch = 0; ch < cc; ch++) for (let p = 0; p < a * b; p++) src[ch * a * b + p] = p * cc + ch;
      }
    }
  }
  const hasNorm = spec.scale !== undefined || spec.mean !== undefined || spec.std !== undefined;
  const dtype: DType = spec.dtype ?? (hasNorm ? 'float32' : input.defaultDType ?? raw.dtype);
  const transform = hasNorm || dtype !== raw.dtype;
  // channel of each source position (axis 1 of the array, or the last axis for NHWC storage)
  const perCh = (spec.mean?.length ?? 1) > 1 || (spec.std?.length ?? 1) > 1;
  let chan: Int32Array | null = null;
  let channels = 1;
  if (perCh) {
    if (dims.length === 0) {
      throw new OptionsError(expected('1 value (samples are scalars, so there are no channels)', `${specField}.${(spec.mean?.length ?? 1) > 1 ? 'mean' : 'std'}${where}`, (spec.mean?.length ?? 1) > 1 ? spec.mean : spec.std));
    }
    const axis = srcLayout === 'NHWC' ? dims.length - 1 : 0;
    channels = dims[axis]!;
    const inner = elementCount(dims.slice(axis + 1));
    chan = new Int32Array(len);
    for (let p = 0; p < len; p++) chan[p] = Math.floor(p / inner) % channels;
  }
  const what = `${input.file}, axis ${(srcLayout === 'NHWC' ? dims.length - 1 : 0) + 1} of shape [${raw.dims.join(', ')}]${srcLayout === 'NCHW' ? '; set sourceLayout "NHWC" if channels are last' : ''}`;
  const mean = perChannel(spec.mean, channels, 0, `${specField}.mean`, what, where);
  const std = perChannel(spec.std, channels, 1, `${specField}.std`, what, where);
  const scale = spec.scale ?? 1;
  const read = numberReader(raw);
  const scratch = new Float64Array(len);
  const data = raw.data;
  return {
    key,
    dtype,
    sampleDims,
    sampleLen: len,
    fill(index, out, offset) {
      const base = index * len;
      if (!transform) {
        if (!src) (out as Float32Array).set((data as Float32Array).subarray(base, base + len), offset);
        else for (let k = 0; k < len; k++) (out as Float32Array)[offset + k] = (data as Float32Array)[base + src[k]!]!;
        return;
      }
      for (let k = 0; k < len; k++) {
        const p = src ? src[k]! : k;
        const ch = chan ? chan[p]! : 0;
        scratch[k] = (read(base + p) * scale - mean[ch]!) / std[ch]!;
      }
      storeValues(out, dtype, offset, scratch);
    },
  };
}

function allocate(dtype: DType, n: number): TypedArray {
  const Ctor = DTYPES[dtype].array;
  if (!Ctor) throw new RangeError(`no typed array for ${dtype}`);
  return new Ctor(n);
}

// ---------------------------------------------------------------------------------------------------------------
// Shuffling

/** A permutation of 0..n-1 from a seeded PRNG (mulberry32 + Fisher–Yates): the same on every machine. */
export function seededPermutation(n: number, seed: number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const next = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// The dataset

class LoadedDataset implements FileDataset {
  constructor(
    readonly size: number,
    readonly inputNames: string[],
    readonly sampleDims: Record<string, number[]>,
    readonly numClasses: number | undefined,
    readonly classNames: string[] | undefined,
    private readonly plans: Plan[],
    private readonly labels: Int32Array | undefined,
    /** dataset position → source index */
    private readonly order: (i: number) => number,
  ) {}

  get hasLabels(): boolean {
    return this.labels !== undefined;
  }

  batches(batchSize: number): AsyncIterable<Batch> {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new OptionsError(expected('a positive integer', 'batchSize', batchSize));
    const self = this;
    return (async function* () {
      for (let start = 0; start < self.size; start += batchSize) yield self.batch(start, batchSize);
    })();
  }

  batch(start: number, count: number): Batch {
    if (!Number.isSafeInteger(start) || start < 0 || start >= this.size) {
      throw new OptionsError(expected(`a start index in [0, ${this.size - 1}]`, 'batch start', start));
    }
    const n = Math.min(count, this.size - start);
    const feeds: Record<string, Feed> = {};
    for (const plan of this.plans) {
      const data = allocate(plan.dtype, n * plan.sampleLen);
      for (let i = 0; i < n; i++) plan.fill(this.order(start + i), data, i * plan.sampleLen);
      feeds[plan.key] = { dtype: plan.dtype, dims: [n, ...plan.sampleDims], data };
    }
    const batch: Batch = { feeds, size: n };
    if (this.labels) {
      const labels = new Int32Array(n);
      for (let i = 0; i < n; i++) labels[i] = this.labels[this.order(start + i)]!;
      batch.labels = labels;
    }
    return batch;
  }

  sample(index: number): Sample {
    const b = this.batch(index, 1);
    const inputs: Record<string, Feed> = {};
    for (const [k, f] of Object.entries(b.feeds)) inputs[k] = { ...f, dims: f.dims.slice(1) };
    return b.labels ? { inputs, label: b.labels[0]! } : { inputs };
  }
}

const LOADERS: { [F in DatasetDescriptor['format']]: (d: Extract<DatasetDescriptor, { format: F }>, ctx: Ctx) => Promise<Loaded> } = {
  idx: loadIdx,
  npy: loadNpy,
  npz: loadNpz,
  imagefolder: loadImageFolder,
  json: loadJson,
};

/**
 * Loads a dataset from a descriptor file path or a descriptor object. Files are read once, up front; batches are
 * preprocessed when iterated. Relative paths resolve against `options.baseDir`, else the descriptor file's folder,
 * else the working folder.
 */
export async function loadDataset(descriptorOrPath: string | DatasetDescriptor, options: LoadDatasetOptions = {}): Promise<FileDataset> {
  let desc: DatasetDescriptor;
  let ctx: Ctx;
  if (typeof descriptorOrPath === 'string') {
    const path = resolve(descriptorOrPath);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new LoadError(code === 'ENOENT' ? `Dataset descriptor not found: ${path}` : `Cannot read dataset descriptor ${path}: ${(e as Error).message}`, { cause: e });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new LoadError(`Dataset descriptor ${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    desc = validateDescriptor(raw, path);
    ctx = { where: whereOf(path), baseDir: resolve(options.baseDir ?? dirname(path)) };
  } else {
    desc = validateDescriptor(descriptorOrPath);
    ctx = { where: '', baseDir: resolve(options.baseDir ?? '.') };
  }
  const loader = LOADERS[desc.format] as (d: DatasetDescriptor, ctx: Ctx) => Promise<Loaded>;
  const loaded = await loader(desc, ctx);
  const { where } = ctx;

  // every input and the labels must agree on the sample count
  const first = loaded.inputs[0]!;
  const total = first.raw.dims[0] ?? 0;
  for (const inp of loaded.inputs) {
    if (inp.raw.dims.length === 0) continue; // reported by arrayPlan
    if (inp.raw.dims[0] !== total) {
      throw new LoadError(
        `${inp.file}: ${expected(`${total} samples like ${first.file}`, `${inp.field}${where}`, `${inp.raw.dims[0]} (shape [${inp.raw.dims.join(', ')}])`)}`,
      );
    }
  }
  if (total === 0) throw new LoadError(`${first.file} holds no samples (${first.field}${where})`);
  if (loaded.labels && loaded.labels.data.length !== total) {
    throw new LoadError(
      `${loaded.labels.file}: ${expected(`${total} labels, one per sample of ${first.file}`, `${loaded.labels.field}${where}`, `${loaded.labels.data.length} labels`)}`,
    );
  }

  // names
  const named = loaded.inputs.some((i) => i.name !== null);
  const unnamedKey = options.inputNames?.[0] ?? 'input';
  if (named && options.inputNames) {
    for (const inp of loaded.inputs) {
      if (!options.inputNames.includes(inp.name!)) {
        throw new OptionsError(`The model has no input named ${JSON.stringify(inp.name)} (${inp.field}${where}) ${oneOf(options.inputNames)}`);
      }
    }
  }
  const specs = desc.input as InputSpec | Record<string, InputSpec> | undefined;
  const specMap = specs && isSpecMap(specs as Record<string, unknown>) ? (specs as Record<string, InputSpec>) : undefined;
  if (specMap) {
    const names = loaded.inputs.map((i) => i.name).filter((n): n is string => n !== null);
    if (!named) throw new OptionsError(`input${where} sets preprocessing per input name, but the dataset has a single unnamed input; give the settings directly under "input"`);
    for (const k of Object.keys(specMap)) if (!names.includes(k)) throw new OptionsError(`input.${k}${where} names no input of the dataset ${oneOf(names)}`);
  }

  // range
  const offset = desc.offset ?? 0;
  if (offset >= total) {
    throw new OptionsError(expected(`an offset below the dataset's ${total} samples`, `offset${where}`, offset));
  }
  const limit = desc.limit ?? total - offset;
  if (limit > total - offset) {
    throw new OptionsError(expected(`at most ${total - offset} (the ${total} samples minus offset ${offset})`, `limit${where}`, limit));
  }
  const perm = desc.shuffle === undefined || desc.shuffle === false ? null : seededPermutation(total, desc.shuffle === true ? 0 : desc.shuffle);
  const order = perm ? (i: number) => perm[offset + i]! : (i: number) => offset + i;

  // labels and classes
  const labels = loaded.labels?.data;
  let numClasses = desc.numClasses ?? loaded.numClasses;
  if (labels) {
    let max = 0;
    for (let i = 0; i < labels.length; i++) if (labels[i]! > max) max = labels[i]!;
    if (desc.numClasses !== undefined && max >= desc.numClasses) {
      throw new OptionsError(expected(`more than ${max} classes (${loaded.labels!.file} has label ${max})`, `numClasses${where}`, desc.numClasses));
    }
    numClasses ??= max + 1;
  }

  const plans = loaded.inputs.map((inp) => {
    const key = inp.name ?? unnamedKey;
    const spec = (specMap ? specMap[inp.name!] : (specs as InputSpec | undefined)) ?? {};
    const specField = specMap ? `input.${inp.name}` : 'input';
    return inp.kind === 'image' ? imagePlan(inp, key, spec, specField, where) : arrayPlan(inp, key, spec, specField, where);
  });
  const sampleDims: Record<string, number[]> = {};
  for (const p of plans) sampleDims[p.key] = p.sampleDims;
  const inputNames = named ? loaded.inputs.map((i) => i.name!) : [];
  return new LoadedDataset(limit, inputNames, sampleDims, labels ? numClasses : desc.numClasses, loaded.classNames, plans, labels, order);
}
