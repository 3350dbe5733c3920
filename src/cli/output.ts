/**
 * What every CLI command shares: printing results (text or exactly one JSON document on stdout), reporting errors
 * (`optimize: error: …` on stderr) with the exit codes, a progress bar for long work, and the package's own files.
 *
 * Exit codes: 0 success; 1 a goal or gate was not met; 2 bad usage or bad input (unknown option, missing or
 * malformed file, unavailable execution provider, model and data that do not fit); 3 an internal error (a bug:
 * rerun with --debug and report it); 4 a gate that could not decide (latency too noisy within its time limit).
 */
import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import cliProgress from 'cli-progress';
import { CommanderError, InvalidArgumentError } from 'commander';
import { OnnxpressError } from '../errors.js';

export const EXIT = { ok: 0, gateFailed: 1, usage: 2, internal: 3, inconclusive: 4 } as const;

/** Writes text to stdout, with a final newline. */
export function printText(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** JSON.stringify that keeps what plain JSON cannot hold: non-finite numbers as strings, bigints, typed arrays. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
      if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' ? Number(x) : x));
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    },
    2,
  );
}

/** Prints one JSON document on stdout (the only thing a `--json` run prints there). */
export function printJson(value: unknown): void {
  printText(toJson(value));
}

/** The exit code for an error thrown by a command. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (e instanceof OnnxpressError) return EXIT.usage;
  return EXIT.internal;
}

/**
 * Reports an error and returns the exit code. Commander's usage errors were already printed by commander (through
 * the `outputError` hook in main.ts); everything else is printed here as `optimize: error: <message>`, with the
 * stack only under --debug. Under --json an `{"error": {kind, message}}` document goes to stdout as well, so that
 * stdout always holds exactly one JSON document.
 */
export function reportError(e: unknown, { debug = false, json = false }: { debug?: boolean; json?: boolean } = {}): number {
  const code = exitCodeFor(e);
  if (code === EXIT.ok) return code;
  const message = e instanceof Error ? e.message : String(e);
  if (!(e instanceof CommanderError)) {
    const prefix = code === EXIT.internal ? 'optimize: internal error: ' : 'optimize: error: ';
    process.stderr.write(`${prefix}${message}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    else if (code === EXIT.internal) process.stderr.write('(this is a bug in onnxpress: rerun with --debug for the stack trace and report it)\n');
    if (debug && e instanceof Error && e.cause) process.stderr.write(`caused by: ${(e.cause as Error)?.stack ?? String(e.cause)}\n`);
  }
  if (json) {
    const kind = e instanceof CommanderError ? 'usage' : e instanceof OnnxpressError ? e.kind : 'internal';
    printJson({ error: { kind, message: message.replace(/^error: /, '') } });
  }
  return code;
}

// ---------------------------------------------------------------------------------------------------------------
// Progress

/** A progress sink; `update` matches the `onProgress` callbacks of the API. */
export interface Progress {
  update: (done: number, total: number) => void;
  stop: () => void;
}

/** Whether stderr can show a live progress bar: a terminal, not a CI log (`CI` set), not a dumb terminal. */
export function liveProgress(): boolean {
  return !!process.stderr.isTTY && !process.env.CI && process.env.TERM !== 'dumb';
}

/**
 * Progress on stderr, never under --json: a bar on a terminal (no colours, so NO_COLOR holds), and elsewhere (CI
 * logs, pipes) a plain line at each quarter of the work, so a log shows that long work is moving.
 */
export function progress(label: string, { json = false }: { json?: boolean } = {}): Progress {
  if (json) return { update: () => {}, stop: () => {} };
  if (!liveProgress()) {
    let shown = -1;
    return {
      update(done, total) {
        const quarter = total > 0 ? Math.floor((4 * done) / total) : 0;
        if (quarter <= shown || total <= 0) return;
        shown = quarter;
        process.stderr.write(`${label}: ${done}/${total}\n`);
      },
      stop: () => {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (!bar) {
        bar = new cliProgress.SingleBar(
          { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} | {eta_formatted} left`, clearOnComplete: true, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Arguments

/** A commander argument parser for positive integers (`--threads 2`). */
export function positiveInteger(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new InvalidArgumentError('Expected a positive integer.');
  }
  return Number(value);
}

/** Size of a file in bytes, or undefined when it cannot be read (the loader reports why). */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The package's own files

let root: string | undefined;

/** The folder of onnxpress's package.json, found upwards from this file (works from a checkout or an install). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'onnxpress') return (root = dir);
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`Cannot find onnxpress's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The package version from package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
