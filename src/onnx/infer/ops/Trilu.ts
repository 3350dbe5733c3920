import { sameAsInput } from '../rules.js';

/** Trilu: y = the upper or lower triangle of x (the rest zeroed): the type and shape of x. */
export const Trilu = sameAsInput(0);
