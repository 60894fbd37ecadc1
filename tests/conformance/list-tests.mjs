#!/usr/bin/env node
// Lists the tests of the pinned http-cache-tests suite that its CLI runs (browser-only ones
// left out), with their kind, suite and dependencies, and, when given summaries written by
// summarize.mjs --json, each one's result there.
//
//   node list-tests.mjs [--kind required|optimal|check] [--suite ID] [SUMMARY.json ...]
//
// e.g. node list-tests.mjs --kind required results/nginx.json results/varnish.json
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
let kind, suiteId
const summaries = []
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--kind') kind = args[++i]
  else if (args[i] === '--suite') suiteId = args[++i]
  else if (args[i].startsWith('-')) { console.error(`unknown option ${args[i]}`); process.exit(2) } else summaries.push(args[i])
}
const pkgDir = path.dirname(createRequire(import.meta.url).resolve('http-cache-tests/package.json'))
const imp = rel => import(pathToFileURL(path.join(pkgDir, rel)).href)
const suites = [...(await imp('tests/index.mjs')).default, (await imp('tests/surrogate-control.mjs')).default]
const results = summaries.map(f => {
  const s = JSON.parse(fs.readFileSync(f, 'utf8'))
  const m = new Map(s.failures.map(x => [x.id, x.result]))
  return { name: s.name || path.basename(f, '.json'), get: id => m.get(id) || 'pass' }
})
for (const s of suites) {
  if (suiteId && s.id !== suiteId) continue
  for (const t of s.tests) {
    if (t.browser_only) continue
    const k = t.kind || 'required'
    if (kind && k !== kind) continue
    const cols = [s.id.padEnd(17), t.id.padEnd(50), k.padEnd(8)]
    for (const r of results) cols.push(`${r.name}=${r.get(t.id)}`.padEnd(24))
    cols.push(t.name.replace(/\s+$/, '') + (t.depends_on ? ` [depends on ${t.depends_on.join(', ')}]` : ''))
    console.log(cols.join(' '))
  }
}
