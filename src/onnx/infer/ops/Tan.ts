import { sameAsInput } from '../rules.js';

/** Tan: y = tan x: the type and shape of input 0. */
export const Tan = sameAsInput(0);
