/**
 * Atomic file writes for everything onnxpress writes that is not a model (models go through `saveModel`):
 * reports, configs, tfjs weight shards. Data goes to a temporary file beside the target, is flushed, and is
 * renamed into place only when complete, so a failed or interrupted run never leaves a half-written file and
 * never clobbers a good one.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A temporary name beside `path` (same folder, so the rename cannot cross file systems). */
export function temporaryPath(path: string): string {
  return `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
}

/**
 * Writes `data` to `path` atomically (temporary file, fsync, rename); creates the parent folder.
 *
 * @example
 * ```ts
 * await writeFileAtomic('out/report.json', JSON.stringify(report));
 * ```
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = temporaryPath(path);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes several files so that either all of them appear or none does: every file is written to a temporary
 * name first, and the renames happen only after all writes succeeded.
 */
export async function writeFilesAtomic(files: readonly { path: string; data: string | Uint8Array }[]): Promise<void> {
  const done: string[] = [];
  try {
    for (const f of files) {
      await mkdir(dirname(f.path), { recursive: true });
      const tmp = temporaryPath(f.path);
      done.push(tmp);
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(f.data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  } catch (e) {
    await Promise.all(done.map((t) => rm(t, { force: true })));
    throw e;
  }
  for (let i = 0; i < files.length; i++) await rename(done[i]!, files[i]!.path);
}
