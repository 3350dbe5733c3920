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
