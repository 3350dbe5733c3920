/**
 * Synthetic, hand-checkable measurements for the report tests (report, report-html, cli/report): a float
 * reference and a few variants with known accuracies, latencies and sizes. Not a test file itself.
 */
import type { AccuracyMetrics, Footprint, LatencyRow, MachineInfo, VariantResult } from '../../src/eval/schema.js';
import { FOOTPRINT_SCHEMA_ID } from '../../src/eval/schema.js';
import { mulberry32 } from '../../src/util/random.js';

export const MACHINE: MachineInfo = {
  cpu: 'Test CPU 9000',
  cores: 8,
  arch: 'x64',
  flags: ['avx2', 'fma', 'avx512_vnni'],
  os: 'linux 6.1.0',
  node: 'v20.19.0',
  onnxruntime: '1.30.0',
};

/**
 * A 10-class accuracy summary with top-1 exactly `top1` (when top1 × samples / classes is whole), self-consistent
 * (per-class metrics from the confusion matrix); the errors land on seeded random wrong classes.
 */
export function accuracy(top1: number, seed: number, samples = 1000, classes = 10): AccuracyMetrics {
  const rand = mulberry32(seed);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const perLabel = samples / classes;
  for (let label = 0; label < classes; label++) {
    const correct = Math.round(top1 * perLabel);
    confusion[label]![label] = correct;
    for (let k = correct; k < perLabel; k++) confusion[label]![(label + 1 + Math.floor(rand() * (classes - 1))) % classes]!++;
  }
  const perClass = confusion.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + r[c]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { precision, recall, f1, support };
  });
  const correct = confusion.reduce((a, r, c) => a + r[c]!, 0);
  const mean = (k: 'precision' | 'recall' | 'f1') => perClass.reduce((a, c) => a + c[k], 0) / classes;
  return { samples, top1: correct / samples, top5: Math.min(1, correct / samples + 0.05), macro: { precision: mean('precision'), recall: mean('recall'), f1: mean('f1') }, perClass, confusion };
}

export function latency(ep: string, batch: number, p50Ms: number, threads = 1): LatencyRow {
  return { available: true, ep, batch, threads, p50Ms, p90Ms: p50Ms * 1.1, p99Ms: p50Ms * 1.3, meanMs: p50Ms * 1.02, samples: 100, throughput: (batch * 1000) / p50Ms, peakRssBytes: 200e6 };
}

export function variant(name: string, o: { parent?: string; top1?: number; p50?: number[]; bytes: number; zeroShare?: number; key?: string; passes?: Record<string, unknown>[]; batches?: number[]; eps?: string[]; error?: string }): VariantResult {
  const batches = o.batches ?? [1];
  const eps = o.eps ?? ['cpu'];
  const rows: LatencyRow[] = [];
  for (const ep of eps) {
    batches.forEach((b, i) => {
      if (ep === 'webgpu') rows.push({ available: false, ep, batch: b, threads: 1, reason: 'webgpu: no adapter found' });
      else rows.push(latency(ep, b, (o.p50 ?? [1])[i] ?? 1));
    });
  }
  return {
    name,
    ...(o.parent !== undefined ? { parent: o.parent } : {}),
    passes: o.passes ?? [],
    key: o.key ?? `key-${name}`,
    model: `${name}.onnx`,
    size: {
      bytes: o.bytes,
      gzipBytes: Math.round(o.bytes * (0.92 - (o.zeroShare ?? 0) * 0.5)),
      parameters: 100_000,
      zeroShare: o.zeroShare ?? 0.001,
      bytesByDtype: { float32: o.bytes },
      macs: 2_500_000,
      macsByOp: { Conv: 2_000_000, Gemm: 500_000 },
    },
    ...(o.top1 !== undefined ? { accuracy: accuracy(o.top1, name.length * 7919 + o.bytes) } : {}),
    latency: rows,
    timings: { passSeconds: 1.5, evaluateSeconds: 3 },
    ...(o.error !== undefined ? { error: o.error } : {}),
  };
}

/**
 * Four variants: float (reference), int8 (faster, a little less accurate), pruned (slower than int8 and less
 * accurate: dominated at batch 1), pruned-int8 (fastest, least accurate).
 */
export function fourVariants(opts: { batches?: number[]; eps?: string[] } = {}): VariantResult[] {
  const b = opts.batches;
  return [
    variant('float', { top1: 0.9, p50: [4, 60], bytes: 1_600_000, ...opts, batches: b }),
    variant('int8', { parent: 'float', top1: 0.88, p50: [2, 30], bytes: 420_000, passes: [{ type: 'quantize', mode: 'static' }], ...opts }),
    variant('pruned', { parent: 'float', top1: 0.85, p50: [3, 50], bytes: 1_600_000, zeroShare: 0.5, passes: [{ type: 'prune', method: 'magnitude', sparsity: 0.5 }], ...opts }),
    variant('pruned-int8', { parent: 'pruned', top1: 0.8, p50: [1.5, 20], bytes: 420_000, zeroShare: 0.5, passes: [{ type: 'quantize', mode: 'dynamic' }], ...opts }),
  ];
}

export function footprint(variants: VariantResult[], o: { shard?: { index: number; count: number }; createdAt?: string; machine?: MachineInfo; config?: Record<string, unknown> } = {}): Footprint {
  return {
    schema: FOOTPRINT_SCHEMA_ID,
    tool: { name: 'onnxpress', version: '0.1.0' },
    createdAt: o.createdAt ?? '2025-01-02T03:04:05.000Z',
    machine: o.machine ?? MACHINE,
    reference: 'float',
    ...(o.shard ? { shard: o.shard } : {}),
    ...(o.config ? { config: o.config } : {}),
    variants,
  };
}
