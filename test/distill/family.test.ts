/**
 * `--student-width` on teachers outside the built-in family (plain CNNs and MLPs): the residual ResNet-8 and the
 * MobileNet-style fixture are refused with an error that names the node the family cannot scale and says what to do
 * instead; the CLI exits 2 and writes nothing.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeTeacher } from '../../src/distill/index.js';
import { PassError } from '../../src/errors.js';
import { loadModel } from '../../src/onnx/io.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const FIXTURES = join(ROOT, 'fixtures');

describe('distill: teachers outside the built-in student family', function () {
  this.timeout(60_000);
  const cases = [
    // the first residual branch: a Relu output read by the next Conv and by the skip Add
    ['fmnist-resnet8.onnx', 'node "/relu/Relu" (Relu)\'s output "/relu/Relu_output_0" is read by 2 nodes (the family is a plain chain)'],
    // ReLU6 (Clip) activations
    ['fmnist-mobilenet.onnx', 'node "/features/features.0/features.0.2/Clip" (Clip) is a Clip'],
  ] as const;

  for (const [file, why] of cases) {
    it(`${file}: names what it cannot scale`, async () => {
      const teacher = await loadModel(join(FIXTURES, file));
      expect(() => describeTeacher(teacher)).to.throw(PassError, `no built-in student can be scaled from it: ${why}. Give a student model instead.`);
    });
  }

  it('optimize distill --student-width on the MobileNet fixture exits 2 and writes nothing', async function () {
    if (!existsSync(CLI)) this.skip();
    const dir = await mkdtemp(join(tmpdir(), 'onnxpress-family-'));
    try {
      const out = join(dir, 'student.onnx');
      const r = spawnSync(process.execPath, [CLI, 'distill', '--teacher', join(FIXTURES, 'fmnist-mobilenet.onnx'), '--student-width', '0.25', '--data', join(FIXTURES, 'fmnist-test-256', 'cnn.json'), '-o', out], { encoding: 'utf8' });
      expect(r.status).to.equal(2);
      expect(r.stderr).to.contain('is a Clip. Give a student model instead.');
      expect(existsSync(out)).to.equal(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
