import { sameAsInput } from '../rules.js';

/** Sinh: y = sinh x: the type and shape of input 0. */
export const Sinh = sameAsInput(0);
