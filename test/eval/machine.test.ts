import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { machineInfo, parseCpuinfo } from '../../src/eval/machine.js';
import { machineInfoSchema } from '../../src/eval/schema.js';

/** Abridged /proc/cpuinfo of an Intel Xeon (Cascade Lake): AVX-512 with VNNI, two processors listed. */
const INTEL = `processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz
flags\t\t: fpu vme sse sse2 ssse3 fma cx16 sse4_1 sse4_2 popcnt aes xsave avx f16c rdrand avx2 bmi2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni
bugs\t\t: spectre_v1

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz
flags\t\t: fpu sse sse2 avx2 amx_tile amx_int8
`;

/** An AMD Zen 2 without AVX-512. */
const AMD = `processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 sha_ni
`;

/** A Neoverse-N1 (Graviton 2): no model name, Arm feature names. */
const ARM = `processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
Features\t: fp asimd i8mm
`;

describe('eval/machine', () => {
  it('reads an Intel CPU with AVX-512 VNNI (first processor only)', () => {
    const p = parseCpuinfo(INTEL);
    expect(p.model).to.equal('Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz');
    expect(p.flags).to.deep.equal(['sse4_1', 'sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni']);
    // processor 1's amx flags are not read: one instruction set per machine
    expect(p.flags).not.to.include('amx_tile');
  });

  it('reads an AMD CPU with AVX2 only', () => {
    const p = parseCpuinfo(AMD);
    expect(p.model).to.equal('AMD EPYC 7B12');
    expect(p.flags).to.deep.equal(['sse4_1', 'sse4_2', 'avx', 'avx2', 'fma', 'f16c']);
    expect(p.flags.some((f) => f.startsWith('avx512') || f.includes('vnni'))).to.equal(false);
  });

  it('reads an Arm CPU: asimd is neon, asimddp is dotprod, the model from the part number', () => {
    const p = parseCpuinfo(ARM);
    expect(p.model).to.equal('Arm Neoverse-N1');
    expect(p.flags).to.deep.equal(['neon', 'dotprod', 'fp16']);
    expect(p.allFlags).to.include('asimdrdm');
  });

  it('names an unknown Arm part by its numbers', () => {
    expect(parseCpuinfo('CPU implementer : 0x61\nCPU part : 0x022\nFeatures : fp asimd\n').model).to.equal('Arm CPU (implementer 0x61, part 0x022)');
  });

  it('machineInfo fits the schema, from given text and from this machine', () => {
    const given = machineInfo({ cpuinfo: AMD });
    expect(machineInfoSchema.parse(given)).to.deep.equal(given);
    expect(given.cpu).to.equal('AMD EPYC 7B12');
    expect(given.flags).to.include('avx2');
    const here = machineInfoSchema.parse(machineInfo());
    expect(here.cores).to.be.at.least(1);
    expect(here.node).to.equal(process.version);
    expect(here.arch).to.equal(process.arch);
    // the version the native binding reports is the installed package's
    const pkg = JSON.parse(readFileSync(new URL('../../../node_modules/onnxruntime-node/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(here.onnxruntime).to.equal(pkg.version);
  });
});
