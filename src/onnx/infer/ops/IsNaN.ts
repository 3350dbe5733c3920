import { elementwise } from '../rules.js';

/** IsNaN: x's shape, as bool. */
export const IsNaN = elementwise({ dtype: 'bool' });
