import { globalPool } from '../rules.js';

/** GlobalMaxPool: [N, C, 1, …, 1] with x's type. */
export const GlobalMaxPool = globalPool;
