import { sameAsInput } from '../rules.js';

/** Clip: y = min(max(x, min), max): the type and shape of x (min and max, attributes before opset 11 and inputs after, do not matter). */
export const Clip = sameAsInput(0);
