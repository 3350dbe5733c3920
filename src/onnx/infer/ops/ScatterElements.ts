import { sameAsInput } from '../rules.js';

/** ScatterElements: y = data with elements at indices along axis replaced by updates: the type and shape of input 0. */
export const ScatterElements = sameAsInput(0);
