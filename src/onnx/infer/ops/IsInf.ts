import { elementwise } from '../rules.js';

/** IsInf: x's shape, as bool. */
export const IsInf = elementwise({ dtype: 'bool' });
