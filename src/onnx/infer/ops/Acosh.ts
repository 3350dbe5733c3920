import { sameAsInput } from '../rules.js';

/** Acosh: y = acosh x: the type and shape of input 0. */
export const Acosh = sameAsInput(0);
