/**
 * The shapes of measurements and of `report.json`: the contract between the measuring code (`latency.ts`,
 * `size.ts`, `machine.ts`), the pipeline that runs variants (`src/pipeline`), the reports (`report.ts`) and the
 * CI gate (`gate.ts`). `report.json` is read back (by `optimize report` to merge shards, by `optimize gate` as a
 * committed baseline), so it is declared as a zod schema: a file that does not fit is refused with the path of
 * the bad field.
 *
 * Units are in the names: `…Ms` milliseconds, `…Bytes` bytes, fractions in [0, 1] for accuracies and shares.
 */
import { z } from 'zod';

/** The machine a measurement was taken on: latency numbers mean nothing without it. */
export const machineInfoSchema = z.object({
  /** CPU model name, e.g. "AMD EPYC 7B13". */
  cpu: z.string(),
  /** Logical cores. */
  cores: z.number().int(),
  arch: z.string(),
  /** Instruction sets that matter to onnxruntime's kernels (avx2, avx512f, avx512_vnni, avx_vnni, amx, neon, …). */
  flags: z.array(z.string()),
  os: z.string(),
  node: z.string(),
  onnxruntime: z.string(),
  /** GPU adapters seen, when a GPU provider was asked for. */
  gpus: z.array(z.string()).optional(),
});
export type MachineInfo = z.infer<typeof machineInfoSchema>;

/** One latency measurement: a provider, a batch size and a thread count. */
export const latencyRowSchema = z.discriminatedUnion('available', [
  z.object({
    available: z.literal(true),
    ep: z.string(),
    batch: z.number().int().positive(),
    /** Intra-op threads (0 = onnxruntime's choice). */
    threads: z.number().int().nonnegative(),
    p50Ms: z.number(),
    p90Ms: z.number(),
    p99Ms: z.number(),
    meanMs: z.number(),
    /** Timed runs behind the percentiles (after warm-up). */
    samples: z.number().int(),
    /** Samples (batch elements) per second at the median latency. */
    throughput: z.number(),
    /** Peak resident set size of the process while measuring, in bytes. */
    peakRssBytes: z.number(),
  }),
  z.object({
    available: z.literal(false),
    ep: z.string(),
    batch: z.number().int().positive(),
    threads: z.number().int().nonnegative(),
    /** Why it could not be measured (provider missing, model not supported there, …). */
    reason: z.string(),
  }),
]);
export type LatencyRow = z.infer<typeof latencyRowSchema>;

/** What a model costs to store and to run, independent of the machine. */
export const sizeMetricsSchema = z.object({
  /** Bytes on disk (the .onnx file plus external data). */
  bytes: z.number(),
  /** Bytes after gzip (level 9) of the same files: what a download costs, and what sparsity buys. */
  gzipBytes: z.number(),
  /**
   * Weight elements, as `optimize inspect` counts them: initializers and Constant-node tensors (subgraphs too),
   * sparse ones at their dense size; quantization scales, zero points and shape tensors are not parameters.
   */
  parameters: z.number(),
  /** Fraction of those elements that are exactly zero. */
  zeroShare: z.number(),
  /** Initializer bytes by element type name ("float32", "int8", …). */
  bytesByDtype: z.record(z.string(), z.number()),
  /** Multiply-adds of one sample (batch 1) for the ops that dominate (Conv, ConvTranspose, Gemm, MatMul and their quantized forms). */
  macs: z.number(),
  macsByOp: z.record(z.string(), z.number()),
});
export type SizeMetrics = z.infer<typeof sizeMetricsSchema>;

/** Accuracy on labelled data (the summary of `EvalResult` that reports keep). */
export const accuracyMetricsSchema = z.object({
  samples: z.number().int(),
  top1: z.number(),
  top5: z.number(),
  macro: z.object({ precision: z.number(), recall: z.number(), f1: z.number() }),
  perClass: z.array(z.object({ precision: z.number(), recall: z.number(), f1: z.number(), support: z.number() })),
  /** confusion[label][prediction] = sample count. */
  confusion: z.array(z.array(z.number())),
});
export type AccuracyMetrics = z.infer<typeof accuracyMetricsSchema>;

/** Agreement with the reference (float) model, for data without labels (the summary of `CompareResult`). */
export const agreementMetricsSchema = z.object({
  samples: z.number().int(),
  top1Agreement: z.number(),
  cosine: z.number(),
  sqnrDb: z.number(),
});
export type AgreementMetrics = z.infer<typeof agreementMetricsSchema>;

/** One variant of a run: the reference float model, or what a chain of passes made of its parent. */
export const variantResultSchema = z.object({
  /** Unique within a report; the reference row is named "float" unless the config says otherwise. */
  name: z.string(),
  /** The variant it was derived from (undefined for the reference). */
  parent: z.string().optional(),
  /** The passes applied, as in the config (`{ type: 'quantize', mode: 'static', … }`). */
  passes: z.array(z.record(z.string(), z.unknown())),
  /** Content key: a hash of the parent's key, the passes and their resolved options (what caching uses). */
  key: z.string(),
  /** The model file, relative to the report's folder. */
  model: z.string(),
  size: sizeMetricsSchema,
  accuracy: accuracyMetricsSchema.optional(),
  agreement: agreementMetricsSchema.optional(),
  latency: z.array(latencyRowSchema),
  /** Seconds spent producing the model (passes) and measuring it. */
  timings: z.object({ passSeconds: z.number(), evaluateSeconds: z.number() }),
  /** Notes the passes left (nodes kept in float and why, …). */
  notes: z.array(z.string()).optional(),
  /** Set when the variant failed; the other fields then hold what was measured before the failure. */
  error: z.string().optional(),
});
export type VariantResult = z.infer<typeof variantResultSchema>;

export const REPORT_SCHEMA_ID = 'onnxpress.report/1';

/** `report.json`. */
export const reportSchema = z.object({
  schema: z.literal(REPORT_SCHEMA_ID),
  tool: z.object({ name: z.literal('onnxpress'), version: z.string() }),
  createdAt: z.string(),
  machine: machineInfoSchema,
  /** Name of the reference variant (the float model). */
  reference: z.string(),
  variants: z.array(variantResultSchema),
  /** Names of the variants on the accuracy-vs-latency Pareto frontier (per provider and batch: see report.md). */
  frontier: z.array(z.string()),
});
export type Report = z.infer<typeof reportSchema>;

export const FOOTPRINT_SCHEMA_ID = 'onnxpress.footprint/1';

/**
 * `footprint.json`: what `optimize run` records in its output folder, variant by variant (parent, passes, metrics,
 * timings). A sharded run (`--shard i/n`) writes one per shard; `optimize report` merges footprints into a report.
 */
export const footprintSchema = z.object({
  schema: z.literal(FOOTPRINT_SCHEMA_ID),
  tool: z.object({ name: z.literal('onnxpress'), version: z.string() }),
  createdAt: z.string(),
  machine: machineInfoSchema,
  reference: z.string(),
  /** Which slice of the variants this run measured (absent: all of them). */
  shard: z.object({ index: z.number().int().positive(), count: z.number().int().positive() }).optional(),
  /** The resolved config the run was made from. */
  config: z.record(z.string(), z.unknown()).optional(),
  variants: z.array(variantResultSchema),
});
export type Footprint = z.infer<typeof footprintSchema>;
