import { elementwise } from '../rules.js';

/** And: numpy-broadcast logical and of two bool tensors, as bool. */
export const And = elementwise({ dtype: 'bool' });
