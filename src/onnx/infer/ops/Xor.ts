import { elementwise } from '../rules.js';

/** Xor: numpy-broadcast logical xor of two bool tensors, as bool. */
export const Xor = elementwise({ dtype: 'bool' });
