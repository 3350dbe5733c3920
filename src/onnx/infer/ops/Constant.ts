import type { Handler, Inferred } from '../context.js';
import { tensorElements } from '../context.js';

/** Constant: the type and shape of `value` (or of value_float(s), value_int(s), value_string(s)); small values are known. */
export const Constant: Handler = (ctx) => {
  for (const [name, a] of ctx.node.attributes) {
    let out: Inferred | undefined;
    if (name === 'value' && a.type === 'tensor') out = { elemType: a.value.dtype, shape: a.value.dims, value: tensorElements(a.value) };
    else if (name === 'value_float' && a.type === 'float') out = { elemType: 'float32', shape: [], value: [a.value] };
    else if (name === 'value_floats' && a.type === 'floats') out = { elemType: 'float32', shape: [a.value.length], value: a.value };
    else if (name === 'value_int' && a.type === 'int') out = { elemType: 'int64', shape: [], value: [a.value] };
    else if (name === 'value_ints' && a.type === 'ints') out = { elemType: 'int64', shape: [a.value.length], value: a.value };
    else if (name === 'value_string' && a.type === 'string') out = { elemType: 'string', shape: [] };
    else if (name === 'value_strings' && a.type === 'strings') out = { elemType: 'string', shape: [a.value.length] };
    if (out) return [out];
  }
  return []; // sparse_value: left unknown
};
