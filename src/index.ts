/**
 * onnxpress: make ONNX models smaller and faster without leaving Node.js.
 *
 * @example
 * ```ts
 * import { loadModel, saveModel } from 'onnxpress';
 * const model = await loadModel('model.onnx');
 * await saveModel(model, 'copy.onnx');
 * ```
 */
export * from './errors.js';
export * from './onnx/dtype.js';
export { Tensor, type TensorInit } from './onnx/tensor.js';
export { Model, Graph, Node, Value, attr, nodeReads, type Attr, type Dim, type TensorType, type OtherType, type ValueType, type Use, type NodeSpec, type OnnxFunction } from './onnx/ir.js';
export { encodeModel, decodeModelProto, modelFromProto, modelToProto, type DecodeOptions, type EncodeOptions } from './onnx/proto.js';
export { loadModel, saveModel, type LoadOptions, type SaveOptions, type SaveResult } from './onnx/io.js';
export { Runner, probeProvider, listedProviders, EXECUTION_PROVIDERS, type ExecutionProvider, type RunnerOptions, type RunTensor, type IOInfo } from './onnx/runner.js';
export * from './onnx/codecs.js';
export { runPass, parseOptions, optionsJsonSchema, type Pass, type PassContext, type PassResult } from './pass.js';
export { loadDataset, validateDescriptor, seededPermutation, type Dataset, type DatasetDescriptor, type Batch, type Feed, type Sample, type FileDataset, type LoadDatasetOptions } from './eval/datasets.js';
export { evaluate, compareOutputs, formatEvalResult, type EvaluateOptions, type EvalResult, type ClassMetrics, type CompareOptions, type CompareResult } from './eval/accuracy.js';
export { inspectModel, formatSummary, isQuantizationOp, QUANTIZATION_OPS, type ModelSummary, type IOSummary, type OpCount, type InspectOptions } from './onnx/inspect.js';
export * from './onnx/hygiene/index.js';
export { inferShapes, type InferShapesOptions, type InferShapesResult } from './onnx/infer/index.js';
export { upgradeOpset, upgradeBlockers, OPSET_BREAKING_VERSIONS } from './onnx/opset.js';
export { loadTensor, loadNamedTensor, saveTensor, encodeTensorFile, type LoadTensorOptions, type NamedTensor, type SaveTensorOptions } from './onnx/tensorfile.js';
export { calibrate, calibrateOptions, CALIBRATION_METHODS, MinMaxObserver, PercentileObserver, EntropyObserver, MseObserver, makeObserver, Histogram, sqnr, quantizationError, type CalibrateOptions, type CalibrateResult, type Observer } from './quantize/calibrate/index.js';
export { quantizeStatic, tensorsToCalibrate, staticOptions, type StaticQuantizeOptions } from './quantize/static.js';
export { quantizeDynamic, dynamicOptions, type DynamicOptions } from './quantize/dynamic.js';
export { quantizeWeightOnly, weightOnlyOptions, type WeightOnlyOptions } from './quantize/weightOnly.js';
export { toQOperator } from './quantize/qoperator.js';
export { quantize, quantizeOptions, quantizeStaticPass, quantizeDynamicPass, quantizeWeightOnlyPass, QUANTIZE_PASSES, QUANTIZE_METADATA_KEY, formatQuantizeReport, type QuantizeOptions, type QuantizeMode, type QuantizeResultReport } from './quantize/quantize.js';
export * from './quantize/types.js';
export { buildTrainingGraph, inferenceModel, type TrainingGraph, type TrainableParam, type TrainingGraphOptions, type LossSpec } from './train/graph.js';
export { GRAD_RULES, gradRuleFor } from './train/grad/table.js';
export { datasetFeeds, type DatasetFeedBatch } from './eval/accuracy.js';
export * from './prune/index.js';
export { makeOptimizer, learningRate, clipGradNorm, optimizerOptions, scheduleOptions, OPTIMIZERS, SCHEDULES, type Optimizer, type OptimizerOptions } from './train/optim.js';
export { train, trainOptions, type TrainOptions, type TrainResult, type TrainState } from './train/loop.js';
export { encodeCheckpoint, decodeCheckpoint } from './train/checkpoint.js';
export { distill, distillPass, distillOptions, DISTILL_METADATA_KEY, type DistillReport } from './distill/index.js';
export { machineInfo, parseCpuinfo, onnxruntimeVersion, type CpuinfoFields } from './eval/machine.js';
export { measureLatency, timeRuns, quantile, type LatencyOptions, type TimingOptions, type Timing } from './eval/latency.js';
export { measureSize, countMacs, type MacCount } from './eval/size.js';
export { syntheticFeeds, feedInputs, type SyntheticFeedsOptions } from './eval/feeds.js';
export * from './eval/schema.js';
export { paretoFrontier } from './eval/pareto.js';
export { buildReport, readReport, readFootprint, mergeFootprints, collectRunFiles, rebaseModelPaths, writeReport, renderHtml, renderMarkdown, escapeHtml, frontiersOf, qualityMetric, latencyGroups, type RunRecord, type MergeOptions, type RunFile, type GroupFrontier, type LatencyGroup, type QualityMetric } from './eval/report.js';
export { profileNodes, attributeNode } from './onnx/profile.js';
export { onnxToTfjs, tfjsToOnnx, saveTfjs, loadTfjs, ONNX_TO_TFJS, TFJS_TO_ONNX, type OnnxToTfjsOptions, type TfjsToOnnxOptions, type TfjsFiles, type TfjsModelJson } from './convert/tfjs/index.js';
export { fp16Options, fp16Pass, toFloat16, type Fp16Options, type Fp16Result, type ClampedTensor } from './convert/fp16.js';
export * from './pipeline/index.js';
export { gate, gateMarkdown, gateJunit, formatGateResult, measureInterleaved, parsePercent, type GateOptions, type GateResult, type GateCheck, type CheckVerdict, type LatencyDetails, type InterleaveOptions, type InterleavedResult } from './eval/gate.js';
export { bootstrapMedianCI, decideRatio, type BootstrapOptions, type DecideRatioOptions, type RatioDecision, type MedianCI } from './eval/bootstrap.js';
export { attachHints, type HintSpec, type HintedModel } from './distill/hints.js';
export { HINTS_METADATA_KEY } from './train/graph.js';
export { buildHintLoss, type HintLoss } from './train/loss.js';
