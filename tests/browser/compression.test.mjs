// Compression seen from a real browser: headless Chromium loads a page served through the
// gateway and fetches a large uncompressed JSON document from the same origin. The gateway
// compresses it for the coding Chromium accepts (over plain HTTP Chromium offers gzip and
// deflate; br and zstd only over HTTPS), stores that copy, and serves the second fetch from
// cache; the page must read the very document the upstream sent both times.
//
// Environment: CORS_EDGE_BIN (the gateway binary, default ../../target/release/cors-edge
// relative to this file), CHROMIUM_PATH (default /usr/bin/chromium).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const GATEWAY_BIN = path.resolve(here, process.env.CORS_EDGE_BIN ?? '../../target/release/cors-edge');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'];

/** About 170 KB of JSON, compressible as API answers are. */
const DOCUMENT = JSON.stringify(
  Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'], ok: i % 2 === 0 })),
);

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** The upstream: never compresses, logs the Accept-Encoding each request brought. */
function upstreamServer(log) {
  return http.createServer((req, res) => {
    log.push({ path: req.url, acceptEncoding: req.headers['accept-encoding'] ?? null });
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end('<!doctype html><meta charset="utf-8"><title>page</title><p>blank</p>\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/json',
      // The gateway keeps it a minute; the browser's own cache must not answer for it.
      'cache-control': 'max-age=0, s-maxage=60',
      etag: '"doc-1"',
    });
    res.end(DOCUMENT);
  });
}

async function startGateway(dir, upstreamPort) {
  const configPath = path.join(dir, 'gateway.yaml');
  const readyPath = path.join(dir, 'ready.json');
  fs.writeFileSync(
    configPath,
    `listen: ["127.0.0.1:0"]
admin: { listen: "127.0.0.1:0" }
server: { grace_period: 1s, shutdown_timeout: 1s }
upstreams:
  api:
    servers: ["127.0.0.1:${upstreamPort}"]
routes:
  - name: api
    upstream: api
`,
  );
  const env = { ...process.env };
  delete env.CORS_EDGE_ADMIN_TOKEN;
  const child = spawn(GATEWAY_BIN, ['run', '-c', configPath, '--ready-file', readyPath], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (fs.existsSync(readyPath)) {
      const ready = JSON.parse(fs.readFileSync(readyPath, 'utf8'));
      if (ready.pid === child.pid) return { child, exited, ready };
    }
    if (child.exitCode !== null) throw new Error(`cors-edge exited before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cors-edge wrote no ready file within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('compression seen from a real browser', () => {
  const env = { log: [] };

  before(async () => {
    assert.ok(fs.existsSync(GATEWAY_BIN), `gateway binary ${GATEWAY_BIN} (build it: cargo build --release -p cors-edge)`);
    assert.ok(fs.existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install chromium)`);
    env.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cors-edge-compression-'));
    env.upstream = upstreamServer(env.log);
    const upstreamPort = await listen(env.upstream);
    env.gateway = await startGateway(env.dir, upstreamPort);
    env.gw = `http://127.0.0.1:${Number(env.gateway.ready.listen[0].split(':').pop())}`;
    process.once('exit', () => env.gateway?.child.kill('SIGKILL'));
    env.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  });

  after(async () => {
    await env.browser?.close().catch(() => {});
    if (env.gateway && env.gateway.child.exitCode === null) {
      env.gateway.child.kill('SIGINT');
      await env.gateway.exited;
    }
    env.upstream?.closeAllConnections?.();
    await new Promise((r) => (env.upstream?.listening ? env.upstream.close(() => r()) : r()));
    if (env.dir) fs.rmSync(env.dir, { recursive: true, force: true });
  });

  test('a compressed JSON answer is decoded by the browser, the second one from cache', async () => {
    // Each visit in a fresh context: its own HTTP cache, so the request reaches the gateway.
    const visit = async (fetches) => {
      const context = await env.browser.newContext();
      try {
        const page = await context.newPage();
        // What came over the wire, as Chromium's network stack saw it.
        const wire = [];
        page.on('response', async (r) => {
          if (r.url().endsWith('/doc.json')) {
            wire.push({ ifNoneMatch: (await r.request().allHeaders())['if-none-match'] ?? null, headers: await r.allHeaders() });
          }
        });
        assert.equal((await page.goto(`${env.gw}/`)).status(), 200, 'the page loads through the gateway');
        const reads = [];
        for (let i = 0; i < fetches; i++) {
          reads.push(
            await page.evaluate(async (url) => {
              const r = await fetch(url);
              return {
                status: r.status,
                xCache: r.headers.get('x-cache'),
                encoding: r.headers.get('content-encoding'),
                body: await r.text(),
              };
            }, `${env.gw}/doc.json`),
          );
        }
        return { reads, wire };
      } finally {
        await context.close();
      }
    };
    const first = await visit(1);
    // The second visit fetches twice: the second time its own cache holds the document and
    // revalidates it with the weakened ETag (the gateway answers from cache: a 304, which
    // Chromium reports as its cached 200).
    const second = await visit(2);
    const reads = [...first.reads, ...second.reads];
    assert.deepEqual(
      reads.map((r) => [r.status, r.xCache]),
      [
        [200, 'MISS'],
        [200, 'HIT'],
        [200, 'HIT'],
      ],
    );
    for (const [i, read] of reads.entries()) {
      assert.match(read.encoding ?? '', /^(gzip|br|zstd)$/, `fetch ${i + 1}: compressed on the wire`);
      assert.equal(read.body, DOCUMENT, `fetch ${i + 1}: the page reads the upstream's document`);
      assert.deepEqual(JSON.parse(read.body)[2999], { id: 2999, name: 'item 2999', tags: ['a', 'b'], ok: false });
    }
    const wire = [...first.wire, ...second.wire];
    assert.deepEqual(
      wire.map((w) => w.ifNoneMatch),
      [null, null, 'W/"doc-1"'],
      'the browser revalidates with the weakened ETag',
    );
    for (const { headers } of wire.slice(0, 2)) {
      assert.match(headers['content-encoding'] ?? '', /^(gzip|br|zstd)$/);
      assert.match(headers.vary ?? '', /accept-encoding/i);
      assert.equal(headers.etag, 'W/"doc-1"', 'the compressed copy has the weakened ETag');
    }
    // One upstream fetch, asking for the one coding the gateway chose; never compressed there.
    const fetched = env.log.filter((r) => r.path === '/doc.json');
    assert.equal(fetched.length, 1, 'the later fetches were served from cache');
    assert.equal(fetched[0].acceptEncoding, reads[0].encoding, 'the upstream was asked for the chosen coding only');
  });
});
