import { sameAsInput } from '../rules.js';

/** Scatter: y = data with elements at indices along axis replaced by updates (ScatterElements before opset 11): the type and shape of input 0. */
export const Scatter = sameAsInput(0);
