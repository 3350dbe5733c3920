import { globalPool } from '../rules.js';

/** GlobalLpPool: [N, C, 1, …, 1] with x's type. */
export const GlobalLpPool = globalPool;
