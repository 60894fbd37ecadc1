// Starts the origin server of http-cache-tests (node_modules/http-cache-tests/server/server.mjs)
// bound to loopback only, on the port given as the first argument.
//
//   node server.mjs PORT [PIDFILE] [READYFILE]
//
// PORT 0 lets the OS pick the port; once the server listens, READYFILE (when given) is written
// atomically as {"pid": <this process>, "port": <the port>}, which lib.sh waits for.
//
// This is what `npm run server --port=PORT` does inside the package (that script backgrounds
// itself with `&` and listens on every interface); here it stays a foreground child we own and
// listens on 127.0.0.1 only. The suite's server reads its settings from npm's config env vars.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import process from 'node:process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const port = process.argv[2]
if (!/^[0-9]+$/.test(port || '')) {
  console.error('usage: node server.mjs PORT [PIDFILE] [READYFILE]')
  process.exit(2)
}
const pkgDir = path.dirname(createRequire(import.meta.url).resolve('http-cache-tests/package.json'))

process.env.npm_config_protocol = 'http'
process.env.npm_config_port = port
process.env.npm_config_pidfile = process.argv[3] || path.join(process.env.TMPDIR || '/tmp', `http-cache-tests-${port}.pid`)

// server.mjs calls server.listen(port): pin the host to loopback.
const readyFile = process.argv[4]
const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (p, ...rest) {
  if (typeof p === 'number' || (typeof p === 'string' && /^[0-9]+$/.test(p))) {
    if (readyFile) {
      this.once('listening', () => {
        const tmp = `${readyFile}.tmp`
        fs.writeFileSync(tmp, JSON.stringify({ pid: process.pid, port: this.address().port }) + '\n')
        fs.renameSync(tmp, readyFile)
      })
    }
    return listen.call(this, Number(p), '127.0.0.1', ...rest)
  }
  return listen.call(this, p, ...rest)
}

process.chdir(pkgDir) // the server serves its static files from the working directory
await import(pathToFileURL(path.join(pkgDir, 'server', 'server.mjs')).href)
