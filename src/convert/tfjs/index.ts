/**
 * ONNX ⇄ TensorFlow.js conversion. `onnxToTfjs` and `tfjsToOnnx` are pure (bytes and objects in, bytes and
 * models out); `saveTfjs` and `loadTfjs` add the files. The converter reads and writes the tfjs format itself:
 * TensorFlow.js is not needed at run time.
 */
export { onnxToTfjs, ONNX_TO_TFJS, type OnnxToTfjsOptions, type TfjsFiles } from './fromOnnx.js';
export { tfjsToOnnx, TFJS_TO_ONNX, type TfjsToOnnxOptions } from './toOnnx.js';
export { saveTfjs, loadTfjs } from './files.js';
export type { TfjsModelJson, TfNode, TfAttr, WeightSpec, WeightsGroup } from './format.js';
