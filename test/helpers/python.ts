/** Helpers to call Debian's Python (python3-onnx, python3-torch) for reference values. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's interpreter: the `python3` on PATH may be a separate build that cannot see Debian's packages. */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const cache = new Map<string, boolean>();

/** Whether Debian's Python can import a module (cached). */
export function hasPython(module: string): boolean {
  if (!cache.has(module)) {
    const r = spawnSync(PYTHON, ['-c', `import ${module}`], { encoding: 'utf8' });
    cache.set(module, r.status === 0);
  }
  return cache.get(module)!;
}

/** Runs a Python script with JSON on stdin and returns its stdout parsed as JSON. Throws with stderr on failure. */
export function runPython<T = unknown>(script: string, input: unknown = null, timeoutMs = 600_000): T {
  const r = spawnSync(PYTHON, ['-c', script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: timeoutMs,
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: '2' },
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as T;
}
