/**
 * Content keys and the run cache. A model's key is the sha256 of what produced it:
 * - the float model: its bytes;
 * - a variant: its parent's key, then per pass the pass type, its resolved options (dataset descriptors and model
 *   files replaced by hashes of their content, so moving files does not change keys but editing them does) and
 *   the run's seed, chained pass by pass.
 * Measurements are keyed by the model's key, the evaluate settings, the evaluation data's content, the reference
 * model (agreement is measured against it) and the machine (latency from another machine is not reused).
 *
 * The cache lives in `<outDir>/cache`: `<key>.onnx` (the model), `<key>.json` (how long the passes took and their
 * notes) and `<key>.<measureKey>.json` (the metrics). Every file is written atomically, so a run that dies leaves
 * only complete entries.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { stepFiles, type StepConfig } from './config.js';

/** JSON with object keys sorted at every level, so that equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

/** sha256, hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Files larger than this are identified by size and modification time instead of content (hashing them would cost more than it saves). */
const HASH_LIMIT = 512 * 1024 * 1024;

/** Hashes of files, computed once per run. */
export class ContentHashes {
  private readonly files = new Map<string, Promise<string>>();

  /** The hash of a file's bytes. */
  file(path: string): Promise<string> {
    let h = this.files.get(path);
    if (!h) {
      h = (async () => {
        const s = await stat(path);
        if (s.size > HASH_LIMIT) return sha256(`${s.size}:${s.mtimeMs}`);
        return sha256(await readFile(path));
      })();
      this.files.set(path, h);
    }
    return h;
  }

  /**
   * The hash of a dataset descriptor: its text and the content of every file it names (images, labels, npy, …;
   * a folder, as for imagefolder, counts by its path only).
   */
  descriptor(path: string): Promise<string> {
    const key = `descriptor:${path}`;
    let h = this.files.get(key);
    if (!h) {
      h = (async () => {
        const text = await readFile(path, 'utf8');
        const parts: string[] = [sha256(text)];
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined; // loadDataset will say what is wrong with it
        }
        for (const s of strings(parsed)) {
          const p = isAbsolute(s) ? s : resolve(dirname(path), s);
          const st = await stat(p).catch(() => undefined);
          if (st?.isFile()) parts.push(`${s}=${await this.file(p)}`);
        }
        return sha256(parts.join('\n'));
      })();
      this.files.set(key, h);
    }
    return h;
  }
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

/**
 * The key of a model made by running `step` on the model keyed `parentKey`.
 *
 * @param variantKey - keys of variants, for a distill step whose teacher names one.
 */
export async function stepKey(parentKey: string, step: StepConfig, seed: number, hashes: ContentHashes, variantKey: (name: string) => string | undefined): Promise<string> {
  const { type, ...options } = step;
  const files = stepFiles(type);
  const keyed: Record<string, unknown> = { ...options };
  for (const f of files.dataFields) if (typeof keyed[f] === 'string') keyed[f] = { descriptor: await hashes.descriptor(keyed[f] as string) };
  for (const f of files.modelFields) {
    if (typeof keyed[f] !== 'string') continue;
    const asVariant = variantKey(keyed[f] as string);
    keyed[f] = asVariant !== undefined ? { variant: asVariant } : { model: await hashes.file(keyed[f] as string) };
  }
  return sha256(canonicalJson({ parent: parentKey, type, options: keyed, seed }));
}

/** Where the cache keeps things. */
export function cachePaths(outDir: string, key: string, measureKey?: string): { model: string; meta: string; metrics: string | undefined } {
  const dir = join(outDir, 'cache');
  return { model: join(dir, `${key}.onnx`), meta: join(dir, `${key}.json`), metrics: measureKey ? join(dir, `${key}.${measureKey}.json`) : undefined };
}

/** Reads a JSON cache entry; undefined when absent or unreadable (it is then recomputed). */
export async function readCached<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Writes a JSON cache entry atomically. */
export async function writeCached(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value));
}
