// The loadtest HTML report in a real browser: `cors-edge loadtest --report FILE.html --json`
// runs against a small Node API on loopback (one path forgets `Vary: Origin`, one answers
// 404, so leaks and a status mix show up), then headless Chromium opens the file with the
// network unused and the test checks that every chart rendered and shows the numbers of the
// JSON report printed by the same run.
//
// Environment: CORS_EDGE_BIN (default ../../target/release/cors-edge relative to this
// file), CHROMIUM_PATH (default /usr/bin/chromium), REPORT_SCREENSHOT (where to save a PNG
// of the page; default: the test's temp dir).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, process.env.CORS_EDGE_BIN ?? '../../target/release/cors-edge');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The API: reflects the generated origins with Vary: Origin, except /p/3 (no Vary) and
 *  /p/4 (404); says HIT for every other answer per path so the hit ratio is not trivial. */
function api() {
  const seen = new Map();
  return http.createServer((req, res) => {
    const url = new URL(req.url, 'http://api');
    const origin = req.headers.origin;
    const headers = { 'content-type': 'text/plain', 'cache-control': 'max-age=60' };
    const n = (seen.get(url.pathname) ?? 0) + 1;
    seen.set(url.pathname, n);
    headers['x-cache'] = n % 3 === 0 ? 'MISS' : 'HIT';
    if (!url.pathname.endsWith('/p/3')) headers.vary = 'Origin';
    if (origin && origin.endsWith('.loadtest.example')) headers['access-control-allow-origin'] = origin;
    if (url.pathname.endsWith('/p/4')) {
      res.writeHead(404, headers);
      res.end('not found');
      return;
    }
    res.writeHead(req.method === 'OPTIONS' ? 204 : 200, headers);
    res.end(req.method === 'OPTIONS' ? undefined : 'ok');
  });
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('loadtest --report', () => {
  let server;
  let browser;
  let dir;
  let report;
  let page;
  const requested = [];
  const problems = [];

  before(async () => {
    assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --release -p cors-edge`);
    server = api();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cors-edge-report-'));
    const html = path.join(dir, 'report.html');
    const result = await run([
      'loadtest', `http://127.0.0.1:${port}/api`,
      '--paths', '4', '--origins', '4', '--concurrency', '4',
      '--preflight-share', '0.1', '--no-origin-share', '0.1',
      '--requests', '4000', '--duration', '2s', '--rate', '2500',
      '--report', html, '--json',
    ]);
    // Leaks were seen (/p/3 forgets Vary: Origin), so the run fails: exit 1, not a crash.
    assert.equal(result.code, 1, result.stderr);
    report = JSON.parse(result.stdout);
    assert.ok(fs.existsSync(html), 'the report file was written');

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    page = await context.newPage();
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
    await page.goto(pathToFileURL(html).href);
    await page.waitForSelector('body[data-rendered="true"]', { timeout: 10000 });
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the page loads nothing but itself and runs without errors', () => {
    assert.deepEqual(problems, []);
    assert.ok(requested.length >= 1);
    for (const url of requested) assert.ok(url.startsWith('file://'), `fetched ${url}`);
  });

  test('the run itself is what the report should show', () => {
    assert.ok(report.requests > 0 && report.requests <= 4000);
    assert.ok(report.leaks.missing_vary_origin > 0, 'the /p/3 leaks were counted');
    assert.ok(report.status['404'] > 0 && report.status['200'] > 0);
    assert.ok(report.timeline.length >= 2, 'several points over time');
  });

  test('the summary tiles carry the JSON numbers', async () => {
    const tile = (name) => page.$eval(`[data-tile="${name}"]`, (node) => node.dataset.raw);
    assert.equal(Number(await tile('requests')), report.requests);
    assert.equal(Number(await tile('errors')), report.errors);
    assert.equal(Number(await tile('leaks')), report.leaks.total);
    assert.equal(Number(await tile('p99 latency µs')), report.latency_us.p99);
    assert.equal(Number(await tile('hit ratio')), report.cache.hit_ratio);
    assert.equal(await page.$eval('#verdict', (node) => node.textContent), 'FAIL');
  });

  test('the time series charts plot every point of the timeline', async () => {
    const series = (chart, name) => page.$eval(
      `svg[data-chart="${chart}"] [data-series="${name}"]`,
      (node) => ({ values: JSON.parse(node.dataset.values), drawn: Number(node.dataset.drawn ?? -1) }),
    );
    const rps = await series('rps', 'req/s');
    assert.deepEqual(rps.values, report.timeline.map((p) => p.requests_per_second));
    assert.equal(rps.drawn, report.timeline.length);
    const p99 = await series('latency', 'p99');
    assert.deepEqual(p99.values, report.timeline.map((p) => (p.p99_us === null ? null : p.p99_us / 1000)));
    const hits = await series('hits', 'hit ratio');
    assert.deepEqual(hits.values, report.timeline.map((p) => (p.hit_ratio === null ? null : p.hit_ratio * 100)));
    const leaks = await page.$eval('svg[data-chart="problems"] g[data-series="leaks"]', (n) => JSON.parse(n.dataset.values));
    assert.deepEqual(leaks, report.timeline.map((p) => p.leaks));
    assert.equal(leaks.reduce((a, b) => a + b, 0), report.leaks.total);
    // Drawn at a visible size, with a path that has a length.
    for (const chart of ['rps', 'latency', 'hits', 'problems', 'histogram', 'status']) {
      const box = await page.$eval(`svg[data-chart="${chart}"]`, (node) => node.getBoundingClientRect().toJSON());
      assert.ok(box.width > 300 && box.height > 60, `${chart}: ${JSON.stringify(box)}`);
    }
    const length = await page.$eval('svg[data-chart="rps"] path', (node) => node.getTotalLength());
    assert.ok(length > 100, `rps line length ${length}`);
  });

  test('the histogram and the status mix add up to the responses', async () => {
    const bars = await page.$$eval('svg[data-chart="histogram"] rect', (nodes) => nodes.map((n) => Number(n.dataset.count)));
    assert.equal(bars.length, report.latency_histogram.length);
    assert.equal(bars.reduce((a, b) => a + b, 0), report.responses);
    const statuses = await page.$$eval('tr[data-status]', (rows) => rows.map((r) => r.dataset.status));
    assert.deepEqual(statuses, Object.keys(report.status));
    const leakRows = await page.$$eval('#leaks table tr', (rows) => rows.length);
    assert.equal(leakRows, 1 + report.leaks.examples.length);
  });

  test('a screenshot of the page', async () => {
    const target = process.env.REPORT_SCREENSHOT ?? path.join(dir, 'report.png');
    await page.screenshot({ path: target, fullPage: true });
    assert.ok(fs.statSync(target).size > 10000);
  });
});
