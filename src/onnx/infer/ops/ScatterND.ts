import { sameAsInput } from '../rules.js';

/** ScatterND: y = data with slices at indices replaced by updates: the type and shape of input 0. */
export const ScatterND = sameAsInput(0);
