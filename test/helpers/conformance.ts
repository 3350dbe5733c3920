/** The ONNX conformance models shipped by Debian's libonnx-testdata. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** `input_0.pb`, `input_1.pb`, … (or `output_…`) in numeric order (there may be ten or more). */
export function numbered(dir: string, prefix: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
    .sort((a, b) => Number(a.slice(prefix.length, -3)) - Number(b.slice(prefix.length, -3)))
    .map((f) => join(dir, f));
}

export const CONFORMANCE_ROOT = '/usr/share/libonnx-testdata/data';

export interface ConformanceCase {
  /** e.g. "node/test_relu" */
  id: string;
  dir: string;
  model: string;
  /** test_data_set_* folders */
  dataSets: string[];
}

/** Every conformance model, sorted; empty when the package is not installed. */
export function conformanceCases(): ConformanceCase[] {
  if (!existsSync(CONFORMANCE_ROOT)) return [];
  const out: ConformanceCase[] = [];
  for (const group of readdirSync(CONFORMANCE_ROOT).sort()) {
    const gdir = join(CONFORMANCE_ROOT, group);
    for (const name of readdirSync(gdir).sort()) {
      const dir = join(gdir, name);
      const model = join(dir, 'model.onnx');
      if (!existsSync(model)) continue;
      const dataSets = readdirSync(dir).filter((d) => d.startsWith('test_data_set')).sort().map((d) => join(dir, d));
      out.push({ id: `${group}/${name}`, dir, model, dataSets });
    }
  }
  return out;
}
