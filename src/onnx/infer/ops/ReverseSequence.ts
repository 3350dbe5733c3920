import { sameAsInput } from '../rules.js';

/** ReverseSequence: y = x with each batch entry reversed along time up to its length: the type and shape of input 0. */
export const ReverseSequence = sameAsInput(0);
