import { globalPool } from '../rules.js';

/** GlobalAveragePool: [N, C, 1, …, 1] with x's type. */
export const GlobalAveragePool = globalPool;
