/**
 * report.html opened in a real browser: headless Chromium (Debian's `chromium` package; CI installs it) renders the
 * page, takes a screenshot and dumps the DOM it built. Skipped, saying so, only when Chromium is not installed.
 * Set ONNXPRESS_KEEP_SCREENSHOT=<file.png> to keep the screenshot and look at it.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import { buildReport, writeReport } from '../../src/eval/report.js';
import { MACHINE, fourVariants, variant } from './report-fixtures.js';

/** The Chromium binary: $CHROMIUM, or the first of the usual names on the PATH. */
function findChromium(): string | undefined {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

describe('eval/report: report.html in headless Chromium', function () {
  this.timeout(90_000);
  const chromium = findChromium();
  let tmp: string;
  let html: string;
  // four variants, one of them named to break naive HTML
  const names = ['float', 'int8', 'pruned', '<b>pruned & "int8"</b>'];

  before(async function () {
    if (!chromium) {
      this.skip(); // mocha prints it as pending; the reason:
      return;
    }
    tmp = await mkdtemp(join(tmpdir(), 'onnxpress-report-html-'));
    const vs = fourVariants();
    vs[3] = { ...variant(names[3]!, { parent: 'pruned', top1: 0.8, p50: [1.5], bytes: 420_000, zeroShare: 0.5 }) };
    const report = buildReport({ variants: vs, machine: MACHINE, reference: 'float', createdAt: '2025-01-02T03:04:05.000Z', version: '0.1.0' });
    html = (await writeReport(tmp, report)).html;
  });
  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  /** Runs Chromium headless on report.html with extra flags; its own profile folder, no network needed. */
  function run(...flags: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(
      chromium!,
      ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', `--user-data-dir=${join(tmp, 'profile')}`, '--window-size=1200,900', ...flags, pathToFileURL(html).href],
      { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('renders a screenshot that is not blank and shows the chart', async function () {
    if (!chromium) this.skip();
    const png = join(tmp, 'report.png');
    const r = run(`--screenshot=${png}`);
    expect(existsSync(png), `chromium wrote no screenshot (exit ${r.status}): ${r.stderr.slice(-2000)}`).to.equal(true);
    if (process.env.ONNXPRESS_KEEP_SCREENSHOT) copyFileSync(png, process.env.ONNXPRESS_KEEP_SCREENSHOT);
    const img = PNG.sync.read(await readFile(png));
    expect(img.width).to.be.greaterThan(600);
    expect(img.height).to.be.greaterThan(400);
    const colours = new Set<number>();
    let markerBlue = 0;
    for (let i = 0; i < img.data.length; i += 4) {
      const [red, green, blue] = [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
      colours.add((red << 16) | (green << 8) | blue);
      // the cpu colour #2563eb of the frontier markers and line (blended with white at 75% where filled)
      if (Math.abs(red - 37) < 40 && Math.abs(green - 99) < 40 && blue > 200) markerBlue++;
    }
    expect(colours.size, 'the screenshot is a single colour').to.be.greaterThan(50);
    expect(markerBlue, 'no chart markers visible in the screenshot').to.be.greaterThan(200);
  });

  it('builds the SVG with exactly one point per variant, each with a tooltip', function () {
    if (!chromium) this.skip();
    const r = run('--dump-dom');
    expect(r.status, r.stderr.slice(-2000)).to.equal(0);
    const dom = r.stdout;
    const svgs = dom.match(/<svg class="chart"[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs).to.have.length(1);
    const points = [...svgs[0]!.matchAll(/<g class="point" data-variant="([^"]*)"[^>]*><title>([^<]*)<\/title><circle /g)];
    // the DOM serializer escapes & < > in attributes and text as the page did: decode to compare with the names
    const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
    expect(points.map((m) => decode(m[1]!)).sort()).to.deep.equal([...names].sort());
    expect(dom.match(/data-variant=/g)).to.have.length(names.length);
    for (const m of points) expect(decode(m[2]!)).to.match(new RegExp(`^${decode(m[1]!).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.* — cpu, batch 1\\n`));
    // the hostile name stayed text: no <b> element was created from it
    expect(dom).not.to.match(/<b>pruned/);
    // axes: tick labels and titles
    expect(svgs[0]).to.match(/p50 latency \(ms\)/);
    expect(svgs[0]).to.match(/Top-1 \(%\)/);
  });
});

if (!findChromium()) {
  // said once, so a skipped run is not mistaken for a passing one
  console.warn('eval/report: report.html in headless Chromium: SKIPPED, chromium is not installed (apt-get install chromium, or set CHROMIUM)');
}
