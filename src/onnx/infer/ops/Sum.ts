import { sumDim } from '../dims.js';
import { elementwise } from '../rules.js';

/** Sum: numpy broadcast of every input, the first one's type; known elements add. */
export const Sum = elementwise({ fn: (args) => sumDim(args) });
