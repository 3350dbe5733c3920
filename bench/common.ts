/** What the benches share: where Fashion-MNIST is, its preprocessing, and feeds of its first rows. */
import { datasetFeeds } from '../src/eval/accuracy.js';
import type { Dataset } from '../src/eval/datasets.js';
import type { Model } from '../src/onnx/ir.js';
import { Runner, type RunTensor } from '../src/onnx/runner.js';

export const FASHION = process.env.FMNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** The fixtures' preprocessing: pixels to [0, 1], then Fashion-MNIST's mean and standard deviation. */
export const FASHION_PRE = { scale: 0.00392156862745098, mean: [0.286], std: [0.353] };

/** The first `rows` rows of a dataset as one batch of feeds for `model`. */
export async function firstRows(model: Model, data: Dataset, rows: number): Promise<Record<string, RunTensor>> {
  const runner = await Runner.create(model);
  try {
    for await (const { feeds } of datasetFeeds(runner, data, { model, batchSize: rows, limit: rows })) return feeds;
  } finally {
    await runner.release();
  }
  throw new Error('no data');
}
