/**
 * The machine a measurement is taken on: CPU model, logical cores, the instruction sets onnxruntime's kernels
 * choose between, OS, Node.js and onnxruntime versions. Latency numbers mean nothing without it.
 *
 * Flags come from /proc/cpuinfo on Linux (the `flags` line on x86, `Features` on Arm). Elsewhere Node.js gives only
 * the model name, so flags are what the architecture guarantees (`neon` on arm64) and nothing on x86.
 * Arm feature names are given the names people know them by: `asimd` → `neon`, `asimddp` → `dotprod`,
 * `asimdhp` → `fp16`; x86 names are kept as the kernel spells them.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { MachineInfo } from './schema.js';

/**
 * The x86 flags that change which kernels onnxruntime (MLAS) runs: SSE4.1/AVX/AVX2/FMA float paths, AVX-512
 * variants, 8-bit dot products (VNNI) that decide whether int8 is fast, bf16/fp16 and AMX tiles.
 */
const X86_FLAGS = [
  'sse4_1',
  'sse4_2',
  'avx',
  'avx2',
  'fma',
  'f16c',
  'avx512f',
  'avx512bw',
  'avx512vl',
  'avx512_vnni',
  'avx_vnni',
  'avx512_bf16',
  'avx512_fp16',
  'amx_tile',
  'amx_int8',
  'amx_bf16',
];

/** Arm `Features` names that matter (Advanced SIMD, dot product, int8 matrix multiply, fp16, bf16, SVE), and their usual names. */
const ARM_FLAGS: Record<string, string> = {
  asimd: 'neon',
  asimddp: 'dotprod',
  asimdhp: 'fp16',
  i8mm: 'i8mm',
  bf16: 'bf16',
  sve: 'sve',
  sve2: 'sve2',
};

/** Arm CPU part numbers (implementer 0x41, Arm Ltd) whose /proc/cpuinfo carries no model name. */
const ARM_PARTS: Record<string, string> = {
  '0xd03': 'Cortex-A53',
  '0xd07': 'Cortex-A57',
  '0xd08': 'Cortex-A72',
  '0xd0b': 'Cortex-A76',
  '0xd0c': 'Neoverse-N1',
  '0xd40': 'Neoverse-V1',
  '0xd49': 'Neoverse-N2',
  '0xd4f': 'Neoverse-V2',
};

/** What /proc/cpuinfo says about the first processor. */
export interface CpuinfoFields {
  /** `model name` (x86) or a name made from the Arm implementer and part; undefined when neither is there. */
  model?: string;
  /** Every flag of the first processor, as listed (`flags` on x86, `Features` on Arm). */
  allFlags: string[];
  /** The flags that matter to onnxruntime's kernels, in a fixed order, with the Arm names mapped (see module doc). */
  flags: string[];
}

/**
 * Parses /proc/cpuinfo text (x86 or Arm). Only the first processor block is read: all cores of a machine share
 * one instruction set as far as onnxruntime is concerned.
 *
 * @example
 * ```ts
 * parseCpuinfo('model name : Intel Xeon\nflags : sse4_1 avx avx2 avx512f avx512_vnni');
 * // { model: 'Intel Xeon', allFlags: [...], flags: ['sse4_1', 'avx', 'avx2', 'avx512f', 'avx512_vnni'] }
 * ```
 */
export function parseCpuinfo(text: string): CpuinfoFields {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' && fields.size > 0 && fields.has('processor')) break; // end of the first block
    const m = /^([^:]+?)\s*:\s*(.*)$/.exec(line);
    if (m && !fields.has(m[1]!)) fields.set(m[1]!, m[2]!.trim());
  }
  const flagLine = fields.get('flags') ?? fields.get('Features') ?? '';
  const allFlags = flagLine.split(/\s+/).filter(Boolean);
  const all = new Set(allFlags);
  const flags = [...X86_FLAGS.filter((f) => all.has(f)), ...Object.entries(ARM_FLAGS).filter(([f]) => all.has(f)).map(([, name]) => name)];
  let model = fields.get('model name') || fields.get('Model') || undefined;
  if (!model && fields.has('CPU part')) {
    const part = fields.get('CPU part')!;
    const implementer = fields.get('CPU implementer') ?? '?';
    model = implementer === '0x41' && ARM_PARTS[part] ? `Arm ${ARM_PARTS[part]}` : `Arm CPU (implementer ${implementer}, part ${part})`;
  }
  return { model, allFlags, flags };
}

/**
 * The onnxruntime-node version in use (what the native binding reports, which is the package's version).
 *
 * @example
 * ```ts
 * onnxruntimeVersion(); // '1.30.0'
 * ```
 */
export function onnxruntimeVersion(): string {
  return (ort.env as { versions?: { node?: string; common?: string } }).versions?.node ?? 'unknown';
}

/**
 * Describes this machine (or, given `cpuinfo` text, a machine with that CPU: for tests).
 *
 * @example
 * ```ts
 * const m = machineInfo();
 * // { cpu: 'AMD EPYC 7B13', cores: 2, arch: 'x64', flags: ['sse4_1', 'avx', 'avx2', 'fma', 'f16c'], os: 'linux 6.1.0',
 * //   node: 'v22.4.0', onnxruntime: '1.30.0' }
 * ```
 */
export function machineInfo(options: { cpuinfo?: string } = {}): MachineInfo {
  let text = options.cpuinfo;
  if (text === undefined && process.platform === 'linux') {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      // a sandbox without /proc: fall back to what Node.js knows
    }
  }
  const parsed = text === undefined ? undefined : parseCpuinfo(text);
  const cpus = os.cpus();
  const cpu = parsed?.model ?? (cpus[0]?.model.trim() || 'unknown CPU');
  // without /proc/cpuinfo only the architecture's baseline is certain: every AArch64 CPU has Advanced SIMD
  const flags = parsed ? parsed.flags : process.arch === 'arm64' ? ['neon'] : [];
  return {
    cpu,
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    arch: process.arch,
    flags,
    os: `${process.platform} ${os.release()}`,
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
  };
}
