// The upstream of benches/compare/run.sh: a small static API on 127.0.0.1.
//
//   node upstream.mjs PORT     (0: any free port, printed as `listening PORT`)
//
// Paths (any suffix): /o/1k/..., /o/64k/... per-origin answers (ACAO echoes an allowed origin,
// Vary: Origin); /s/1k/..., /s/64k/... shared answers (ACAO: *, no Vary); /e/1k/... no CORS at
// all (for a gateway that stamps CORS itself). Every GET answers 1 KiB or 64 KiB with
// Cache-Control: public, max-age=600. OPTIONS preflights answer 204 with
// Access-Control-Max-Age: 600 (and the same Cache-Control). GET /__count returns how many
// requests were served so far (itself excluded): the script reads it around each measured run
// to prove that the caches under test did not go upstream.
import http from "node:http";

const port = Number(process.argv[2]);
const bodies = { "1k": Buffer.alloc(1024, "a"), "64k": Buffer.alloc(65536, "b") };
const allowed = /^https:\/\/o[0-9]+\.loadtest\.example$/;
let served = 0;

const server = http.createServer((req, res) => {
  if (req.url === "/__count") {
    res.writeHead(200, { "content-type": "text/plain", "cache-control": "no-store" });
    res.end(String(served));
    return;
  }
  served += 1;
  const url = req.url;
  const origin = req.headers.origin;
  const headers = { "cache-control": "public, max-age=600" };
  if (url.startsWith("/o/")) {
    if (origin && allowed.test(origin)) {
      headers["access-control-allow-origin"] = origin;
    }
    headers.vary = "Origin";
  } else if (url.startsWith("/s/")) {
    headers["access-control-allow-origin"] = "*";
  }
  if (req.method === "OPTIONS") {
    headers.vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";
    if (headers["access-control-allow-origin"]) {
      headers["access-control-allow-methods"] = "GET, POST, PUT, DELETE";
      headers["access-control-allow-headers"] = "authorization, content-type";
      headers["access-control-max-age"] = "600";
    }
    res.writeHead(204, headers);
    res.end();
    return;
  }
  const body = url.includes("/64k/") ? bodies["64k"] : bodies["1k"];
  headers["content-type"] = "application/octet-stream";
  headers["content-length"] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === "HEAD" ? undefined : body);
});
server.keepAliveTimeout = 60_000;
// Port 0: the OS picks one; its number is printed once the server listens.
server.listen(port, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500));
}
