import { elementwise } from '../rules.js';

/** Or: numpy-broadcast logical or of two bool tensors, as bool. */
export const Or = elementwise({ dtype: 'bool' });
