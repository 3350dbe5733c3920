import { passThrough } from '../rules.js';

/** Identity: y is x, type, shape and known elements. */
export const Identity = passThrough;
