import { elementwise } from '../rules.js';

/** Mean: numpy broadcast of every input, the first one's type. */
export const Mean = elementwise();
