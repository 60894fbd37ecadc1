// Real-browser CORS tests: headless Chromium loads a blank page from origin A
// (http://127.0.0.1:P1, allowed) or origin B (http://localhost:P2, not allowed) and calls
// `fetch` through a cors-edge gateway in front of a small Node upstream API. What the browser
// does with the answer (hands it to the page, or throws a TypeError) is the assertion; the
// upstream's request log and the admin /stats counters say what the gateway did meanwhile.
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
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const JSON_PUT = {
  method: 'PUT',
  headers: { 'Content-Type': 'application/json', Authorization: 'Bearer x' },
};

// ---------------------------------------------------------------------------------------------
// Servers

function listen(server, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server.address().port));
  });
}

function closeServer(server) {
  if (!server?.listening) return Promise.resolve();
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A static server for one page origin: a blank HTML page at `/`. */
function pageServer() {
  return http.createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end('<!doctype html><meta charset="utf-8"><title>page</title><p>blank</p>\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
}

/**
 * The upstream API. Every request is logged. Under /up/ the API runs its own CORS policy
 * (origin A only, with credentials; it answers preflights itself); under /edge/ and /any/ it
 * knows nothing about CORS and the gateway decides. `s-maxage=60, max-age=0`: the gateway may
 * keep a response for a minute, the browser's own cache must not answer for it.
 */
function upstreamServer(state) {
  let served = 0;
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://upstream');
      const origin = req.headers.origin ?? null;
      const body = Buffer.concat(chunks).toString();
      state.log.push({
        method: req.method,
        path: url.pathname,
        origin,
        cookie: req.headers.cookie ?? null,
        authorization: req.headers.authorization ?? null,
      });
      const echo = (extra = {}) =>
        JSON.stringify({
          method: req.method,
          path: url.pathname,
          origin,
          cookie: req.headers.cookie ?? null,
          authorization: req.headers.authorization ?? null,
          contentType: req.headers['content-type'] ?? null,
          body,
          n: ++served,
          ...extra,
        });
      const headers = { 'content-type': 'application/json' };
      const cacheable = req.method === 'GET' && !url.pathname.endsWith('/me');
      headers['cache-control'] = cacheable ? 'max-age=0, s-maxage=60' : 'private, no-store';

      if (url.pathname.startsWith('/up/') || url.pathname.startsWith('/upnv/')) {
        const allowed = origin === state.originA;
        if (req.method === 'OPTIONS') {
          const preflight = { vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers' };
          if (allowed) {
            Object.assign(preflight, {
              'access-control-allow-origin': origin,
              'access-control-allow-credentials': 'true',
              'access-control-allow-methods': 'GET, PUT',
              'access-control-allow-headers': 'Content-Type, Authorization',
              'access-control-max-age': '600',
            });
          }
          res.writeHead(204, preflight);
          res.end();
          return;
        }
        // Under /up/novary/ the API forgets `Vary: Origin`; the gateway must key by origin anyway.
        // Under /cacheable/ the browser may keep the answer, and the API says `Vary: Origin`
        // only to CORS requests (as many do): an answer to an <img> says nothing about Origin.
        if (url.pathname.includes('/cacheable/')) {
          headers['cache-control'] = 'max-age=600';
          if (origin) headers.vary = 'Origin';
          // A real image (a 1x1 GIF): Chromium's opaque-response blocking drops a JSON answer
          // to an <img> before its cache could keep it.
          headers['content-type'] = 'image/gif';
          if (allowed) {
            headers['access-control-allow-origin'] = origin;
            headers['access-control-allow-credentials'] = 'true';
          }
          res.writeHead(200, headers);
          res.end(Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'));
          return;
        } else if (!url.pathname.startsWith('/up/novary/')) headers.vary = 'Origin';
        if (allowed) {
          headers['access-control-allow-origin'] = origin;
          headers['access-control-allow-credentials'] = 'true';
        }
      }
      res.writeHead(200, headers);
      res.end(echo());
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The gateway process

function gatewayConfig({ listen, admin, upstream, originA }) {
  return `listen: ["${listen}"]
admin: { listen: "${admin}" }
server: { grace_period: 1s, shutdown_timeout: 1s }
upstreams:
  api:
    servers: ["${upstream}"]
routes:
  - name: up
    match: { path_prefix: "/up/" }
    upstream: api
    cors: { mode: upstream }
  - name: up-no-vary-always
    match: { path_prefix: "/upnv/" }
    upstream: api
    cors: { mode: upstream, vary_origin_always: false }
  - name: edge
    match: { path_prefix: "/edge/" }
    upstream: api
    cors:
      mode: edge
      allow_origins: ["${originA}"]
      allow_credentials: true
      allow_methods: [GET, PUT]
      allow_headers: [Content-Type, Authorization]
      max_age: 600s
  - name: any
    match: { path_prefix: "/any/" }
    upstream: api
    cors:
      mode: edge
      allow_any_origin: true
      allow_methods: [GET, PUT]
      allow_headers: [Content-Type, Authorization]
`;
}

/**
 * The newest source file the binary is built from (the crates' src/ trees, build scripts and
 * manifests; not their tests, which a rebuild would not relink the binary for).
 */
function newestSource(root) {
  let newest = { mtimeMs: 0, file: null };
  const consider = (file) => {
    const { mtimeMs } = fs.statSync(file);
    if (mtimeMs > newest.mtimeMs) newest = { mtimeMs, file };
  };
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.rs')) consider(file);
    }
  };
  const crates = path.join(root, 'crates');
  for (const crate of fs.readdirSync(crates)) {
    const dir = path.join(crates, crate);
    if (fs.existsSync(path.join(dir, 'src'))) walk(path.join(dir, 'src'));
    for (const name of ['Cargo.toml', 'build.rs']) {
      if (fs.existsSync(path.join(dir, name))) consider(path.join(dir, name));
    }
  }
  return newest;
}

/**
 * Starts `cors-edge run` with every listener on port 0 and `--ready-file`; resolves to the
 * addresses that this very process (the file names its pid) reports once every listener accepts.
 */
async function startGateway(configPath, readyPath) {
  const env = { ...process.env };
  delete env.CORS_EDGE_ADMIN_TOKEN;
  const child = spawn(GATEWAY_BIN, ['run', '-c', configPath, '--ready-file', readyPath], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.once('error', (e) => (output += `spawn error: ${e.message}\n`));
  let status = null;
  exited.then((s) => (status = s));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (fs.existsSync(readyPath)) {
      const ready = JSON.parse(fs.readFileSync(readyPath, 'utf8'));
      if (ready.pid !== child.pid) {
        child.kill('SIGKILL');
        throw new Error(`ready file ${readyPath} names pid ${ready.pid}, the gateway started is ${child.pid}`);
      }
      return { child, exited, output: () => output, ready };
    }
    if (status || child.exitCode !== null) {
      throw new Error(`cors-edge exited before it was ready (${JSON.stringify(status)}):\n${output}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cors-edge wrote no ready file within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopGateway(gateway) {
  if (!gateway || gateway.child.exitCode !== null || gateway.child.signalCode !== null) return;
  gateway.child.kill('SIGINT');
  const timer = new Promise((r) => setTimeout(() => r('timeout'), 5_000));
  if ((await Promise.race([gateway.exited, timer])) === 'timeout') {
    gateway.child.kill('SIGKILL');
    await gateway.exited;
  }
}

// ---------------------------------------------------------------------------------------------
// The browser side

/**
 * Opens a fresh browser context (own cookies, HTTP cache and preflight cache), loads the blank
 * page of `origin`, and hands `(page, messages)` to `fn`; `messages` collects the console, where
 * Chromium explains each CORS refusal.
 */
async function visit(env, origin, fn, { cookies = [] } = {}) {
  const context = await env.browser.newContext();
  try {
    if (cookies.length) await context.addCookies(cookies);
    const page = await context.newPage();
    const messages = [];
    page.on('console', (m) => messages.push(m.text()));
    const response = await page.goto(`${origin}/`);
    assert.equal(response.status(), 200, `the page at ${origin}/ loads`);
    return await fn(page, messages);
  } finally {
    await context.close();
  }
}

/** `fetch(url, opts)` inside the page: `{ok: true, status, body}` or `{ok: false, error}`. */
function browserFetch(page, url, opts = {}) {
  return page.evaluate(
    async ([url, opts]) => {
      try {
        const r = await fetch(url, opts);
        return { ok: true, status: r.status, body: await r.text() };
      } catch (e) {
        return { ok: false, error: String(e) };
      }
    },
    [url, opts],
  );
}

/** One fetch from a fresh page of `origin`. */
function fetchFrom(env, origin, url, opts = {}, visitOpts = {}) {
  return visit(env, origin, async (page, messages) => ({ ...(await browserFetch(page, url, opts)), messages }), visitOpts);
}

function assertReads(result, what) {
  assert.equal(result.ok, true, `${what}: the browser should hand the response to the page, got ${JSON.stringify(result)}`);
  assert.equal(result.status, 200, `${what}: status`);
  return JSON.parse(result.body);
}

function assertBlocked(result, what) {
  assert.equal(result.ok, false, `${what}: the browser should refuse the response, but the page read ${JSON.stringify(result)}`);
  assert.match(result.error, /TypeError/, `${what}: a CORS refusal is a TypeError`);
  assert.ok(
    result.messages.some((m) => /CORS policy/.test(m)),
    `${what}: Chromium should explain a CORS refusal on the console, got ${JSON.stringify(result.messages)}`,
  );
}

// ---------------------------------------------------------------------------------------------

describe('cors-edge seen from a real browser', () => {
  const env = { log: [] };
  const count = (method, pathname, origin) =>
    env.log.filter((r) => r.method === method && r.path === pathname && (origin === undefined || r.origin === origin))
      .length;
  const stats = async () => {
    const r = await fetch(`http://127.0.0.1:${env.adminPort}/stats`);
    assert.equal(r.status, 200, 'admin /stats answers');
    return r.json();
  };

  before(async () => {
    assert.ok(fs.existsSync(GATEWAY_BIN), `gateway binary ${GATEWAY_BIN} (build it: cargo build --release -p cors-edge)`);
    const root = path.resolve(here, '../..');
    if (GATEWAY_BIN.startsWith(path.join(root, 'target') + path.sep)) {
      const newest = newestSource(root);
      assert.ok(
        fs.statSync(GATEWAY_BIN).mtimeMs >= newest.mtimeMs,
        `${GATEWAY_BIN} is older than ${newest.file}: rebuild it (cargo build --release -p cors-edge)`,
      );
    }
    assert.ok(fs.existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install chromium)`);
    env.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cors-edge-browser-'));
    env.pageA = pageServer();
    env.pageB = pageServer();
    env.originA = `http://127.0.0.1:${await listen(env.pageA, '127.0.0.1')}`;
    env.originB = `http://localhost:${await listen(env.pageB, '127.0.0.1')}`;
    env.upstream = upstreamServer(env);
    const upstreamPort = await listen(env.upstream, '127.0.0.1');
    const configPath = path.join(env.dir, 'gateway.yaml');
    fs.writeFileSync(
      configPath,
      gatewayConfig({
        listen: '127.0.0.1:0',
        admin: '127.0.0.1:0',
        upstream: `127.0.0.1:${upstreamPort}`,
        originA: env.originA,
      }),
    );
    env.gateway = await startGateway(configPath, path.join(env.dir, 'ready.json'));
    const port = (address) => Number(address.split(':').pop());
    env.gw = `http://127.0.0.1:${port(env.gateway.ready.listen[0])}`;
    env.adminPort = port(env.gateway.ready.admin);
    // Last resort if the runner is torn down before `after` runs (Playwright cleans up Chromium).
    process.once('exit', () => env.gateway?.child.kill('SIGKILL'));
    env.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  });

  after(async () => {
    // Each step on its own: a failure in one must not leave the others running.
    await env.browser?.close().catch(() => {});
    await stopGateway(env.gateway).catch(() => {});
    await Promise.all([env.pageA, env.pageB, env.upstream].map(closeServer));
    if (env.dir) fs.rmSync(env.dir, { recursive: true, force: true });
  });

  test('upstream mode: the allowed origin reads the response, the other origin is blocked', async () => {
    const url = `${env.gw}/up/data`;
    const a = assertReads(await fetchFrom(env, env.originA, url), 'origin A, GET /up/data');
    assert.equal(a.origin, env.originA, 'the upstream saw origin A');
    assertBlocked(await fetchFrom(env, env.originB, url), 'origin B, GET /up/data');
    assert.equal(count('GET', '/up/data', env.originB), 1, "origin B's request reached the upstream, which refused it");
  });

  test('edge mode: the allowed origin reads the response, the other origin is blocked', async () => {
    const url = `${env.gw}/edge/data`;
    assertReads(await fetchFrom(env, env.originA, url), 'origin A, GET /edge/data');
    assertBlocked(await fetchFrom(env, env.originB, url), 'origin B, GET /edge/data');
    // Control: the same page of origin B reads a route whose policy is `*`.
    assertReads(await fetchFrom(env, env.originB, `${env.gw}/any/data`), 'origin B, GET /any/data (policy *)');
  });

  test('credentialed fetch: the cookie goes through for the allowlisted origin, `*` is refused', async () => {
    const cookies = [{ name: 'sid', value: '1', url: env.gw }];
    const include = { credentials: 'include' };

    const withCookie = assertReads(
      await fetchFrom(env, env.originA, `${env.gw}/edge/me`, include, { cookies }),
      'origin A, credentialed GET /edge/me',
    );
    assert.equal(withCookie.cookie, 'sid=1', 'the cookie reached the upstream');

    const plain = assertReads(await fetchFrom(env, env.originA, `${env.gw}/edge/me`, {}, { cookies }), 'origin A, GET /edge/me');
    assert.equal(plain.cookie, null, 'without credentials: include the browser sends no cookie');

    assertBlocked(
      await fetchFrom(env, env.originB, `${env.gw}/edge/me`, include, { cookies }),
      'origin B, credentialed GET /edge/me',
    );

    // Policy `*`: a plain fetch reads, a credentialed one is refused by the browser.
    assertReads(await fetchFrom(env, env.originA, `${env.gw}/any/me`, {}, { cookies }), 'origin A, GET /any/me');
    assertBlocked(
      await fetchFrom(env, env.originA, `${env.gw}/any/me`, include, { cookies }),
      'origin A, credentialed GET /any/me (policy *)',
    );
  });

  test('upstream mode: PUT with JSON and Authorization goes through a preflight the gateway caches', async () => {
    const url = `${env.gw}/up/item`;
    const before = await stats();
    // Two fresh browser contexts, so the browser's own preflight cache cannot hide the second one.
    for (const i of [1, 2]) {
      const result = await fetchFrom(env, env.originA, url, { ...JSON_PUT, body: JSON.stringify({ i }) });
      const echo = assertReads(result, `origin A, PUT /up/item #${i}`);
      assert.deepEqual(
        [echo.method, echo.contentType, echo.authorization, echo.body],
        ['PUT', 'application/json', 'Bearer x', JSON.stringify({ i })],
        'the PUT reached the upstream intact',
      );
      assert.equal(count('OPTIONS', '/up/item'), 1, `after PUT #${i}: the upstream answered exactly one preflight`);
    }
    assert.equal(count('PUT', '/up/item'), 2);
    const after = await stats();
    assert.equal(after.preflight_hits - before.preflight_hits, 1, 'the second preflight was a gateway cache hit');

    // Origin B: its own preflight goes to the upstream, which refuses; the PUT is never sent.
    assertBlocked(
      await fetchFrom(env, env.originB, url, { ...JSON_PUT, body: '{}' }),
      'origin B, PUT /up/item',
    );
    assert.equal(count('OPTIONS', '/up/item', env.originB), 1, "origin B's preflight reached the upstream");
    assert.equal(count('PUT', '/up/item', env.originB), 0, 'the browser never sent origin B\'s PUT');
  });

  test('edge mode: the gateway answers the PUT preflight itself, the upstream sees no OPTIONS', async () => {
    const url = `${env.gw}/edge/item`;
    const before = await stats();
    for (const i of [1, 2]) {
      const result = await fetchFrom(env, env.originA, url, { ...JSON_PUT, body: JSON.stringify({ i }) });
      const echo = assertReads(result, `origin A, PUT /edge/item #${i}`);
      assert.deepEqual([echo.method, echo.authorization], ['PUT', 'Bearer x']);
    }
    assertBlocked(
      await fetchFrom(env, env.originB, url, { ...JSON_PUT, body: '{}' }),
      'origin B, PUT /edge/item',
    );
    assert.equal(env.log.filter((r) => r.method === 'OPTIONS' && r.path.startsWith('/edge/')).length, 0);
    // Edge mode does not forward Origin (the upstream must not vary on it), so count all PUTs:
    // origin A's two, none from origin B.
    assert.equal(count('PUT', '/edge/item'), 2, "the browser never sent origin B's PUT");
    const after = await stats();
    assert.equal(after.preflight_hits - before.preflight_hits, 3, 'three preflights, all answered by the gateway');
  });

  test('upstream mode: after origin A warmed the cache, origin B is still blocked and A still reads', async () => {
    const url = `${env.gw}/up/warm`;
    const first = assertReads(await fetchFrom(env, env.originA, url), 'origin A warms /up/warm');
    const again = assertReads(await fetchFrom(env, env.originA, url), 'origin A, /up/warm again');
    assert.equal(again.n, first.n, 'served from the gateway cache');
    assert.equal(count('GET', '/up/warm'), 1, 'the cache is warm: one upstream fetch');

    for (const round of [1, 2]) {
      assertBlocked(await fetchFrom(env, env.originB, url), `origin B, /up/warm round ${round}`);
    }
    assert.equal(count('GET', '/up/warm', env.originB), 1, "origin B got its own variant, fetched once");

    const last = assertReads(await fetchFrom(env, env.originA, url), 'origin A, /up/warm after B');
    assert.equal(last.n, first.n, "origin A still gets its cached variant, not origin B's");
    assert.equal(count('GET', '/up/warm', env.originA), 1);
  });

  test('a response cached for the disallowed origin is never served to the allowed one', async () => {
    for (const pathname of ['/up/b-first', '/up/novary/b-first', '/edge/b-first']) {
      const url = `${env.gw}${pathname}`;
      assertBlocked(await fetchFrom(env, env.originB, url), `origin B warms ${pathname}`);
      const a = assertReads(await fetchFrom(env, env.originA, url), `origin A, ${pathname} after B`);
      if (pathname.startsWith('/up/')) assert.equal(a.origin, env.originA, `${pathname}: a response made for origin A`);
      assertBlocked(await fetchFrom(env, env.originB, url), `origin B, ${pathname} again`);
    }
    // Upstream mode: one fetch per origin, each then cached; edge mode: one body for both.
    assert.deepEqual(
      ['/up/b-first', '/up/novary/b-first', '/edge/b-first'].map((p) => count('GET', p)),
      [2, 2, 1],
    );
  });

  test('edge mode: after origin A warmed the cache, origin B is still blocked and A still reads', async () => {
    const url = `${env.gw}/edge/warm`;
    const first = assertReads(await fetchFrom(env, env.originA, url), 'origin A warms /edge/warm');
    for (const round of [1, 2]) {
      assertBlocked(await fetchFrom(env, env.originB, url), `origin B, /edge/warm round ${round}`);
    }
    const last = assertReads(await fetchFrom(env, env.originA, url), 'origin A, /edge/warm after B');
    assert.equal(last.n, first.n, 'served from the shared cache');
    assert.equal(count('GET', '/edge/warm'), 1, 'one upstream fetch: origin B was refused from the cached body');
  });

  // vary_origin_always: an answer to a request without Origin (an <img>) carries Vary: Origin,
  // so the browser does not reuse it for a CORS fetch of the same URL from the same page. The
  // control route /upnv/ turns the option off: there the browser reuses the <img> answer (no
  // ACAO) and the fetch fails, which shows the first case does not pass by accident.
  for (const [prefix, on] of [['/up/', true], ['/upnv/', false]]) {
    test(`vary_origin_always ${on ? 'on' : 'off'}: an <img> load, then a CORS fetch of the same URL from the same page`, async () => {
      const pathname = `${prefix}cacheable/picture.gif`;
      const url = `${env.gw}${pathname}`;
      const result = await visit(env, env.originA, async (page, messages) => {
        const imgResponse = page.waitForResponse((r) => r.url() === url, { timeout: 10_000 });
        const loaded = await page.evaluate(
          (url) =>
            new Promise((resolve) => {
              const img = new Image();
              img.onload = () => resolve('load');
              img.onerror = () => resolve('error');
              img.src = url;
            }),
          url,
        );
        assert.equal(loaded, 'load', 'the <img> loads');
        const vary = (await imgResponse).headers().vary ?? '';
        assert.equal(/(^|,)\s*origin\s*(,|$)/i.test(vary), on, `the <img> answer's Vary: ${JSON.stringify(vary)}`);
        return { ...(await browserFetch(page, url, { credentials: 'include' })), messages };
      });
      assert.equal(count('GET', pathname, null), 1, `${pathname}: the <img> request reached the upstream without Origin`);
      if (on) {
        assert.equal(result.ok, true, `the CORS fetch after an <img> load is readable: ${JSON.stringify(result)}`);
        assert.equal(result.status, 200);
        assert.equal(count('GET', pathname, env.originA), 1, 'the CORS fetch went to the network');
      } else {
        assertBlocked(result, `CORS fetch of ${pathname} after an <img> load, vary_origin_always off`);
        assert.equal(count('GET', pathname, env.originA), 0, 'the browser reused the <img> answer');
      }
    });
  }
});
