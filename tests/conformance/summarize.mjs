#!/usr/bin/env node
// Summarizes the raw results of the http-cache-tests CLI (a JSON object: test id -> true, or
// [errorName, message]) using the suite's own test definitions and its own classification
// (lib/display.mjs determineTestResult, the one cache-tests.fyi uses, dependencies honoured).
//
//   node summarize.mjs RESULTS.json [--json SUMMARY.json] [--meta KEY=VALUE ...]
//                                   [--compare BASELINE.json [--flaky FLAKY.json]]
//
// --json     writes the summary (counts per kind, failures, Vary group) as JSON
// --meta     adds KEY=VALUE to the summary (name, version, ...); repeatable
// --compare  exits 1 if, against BASELINE.json (a summary written by --json), any `required` or
//            `optimal` test that passed in the baseline does not pass now (by name: a test fixed
//            elsewhere does not hide it), the number of passed `required` or `optimal` tests
//            dropped, fewer tests of the Vary group (suites `vary` and `vary-parse`) passed, or
//            any required Vary test did not pass.
// --flaky    FLAKY.json: {"test-id": "why its result changes between runs", ...}; those tests are
//            not held to their baseline result by name (they still count in the totals).
//
// Result kinds (suite README): `required` tests fail on a conformance problem; `optimal` tests
// "fail" when the cache did not do the best it could (usually: did not reuse a stored response);
// `check` tests only record a behaviour (yes/no) and are never failures.
import fs from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const VARY_SUITES = new Set(['vary', 'vary-parse'])
const KINDS = ['required', 'optimal', 'check']

function usage (msg) {
  if (msg) console.error(`summarize.mjs: ${msg}`)
  console.error('usage: node summarize.mjs RESULTS.json [--json SUMMARY.json] [--meta KEY=VALUE ...] [--compare BASELINE.json]')
  process.exit(2)
}

function parseArgs (argv) {
  const opts = { meta: {} }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i] }
    if (a === '--json') opts.json = next()
    else if (a === '--compare') opts.compare = next()
    else if (a === '--flaky') opts.flaky = next()
    else if (a === '--meta') {
      const kv = next()
      const eq = kv.indexOf('=')
      if (eq < 1) usage(`--meta takes KEY=VALUE, not ${kv}`)
      opts.meta[kv.slice(0, eq)] = kv.slice(eq + 1)
    } else if (a === '-h' || a === '--help') usage()
    else if (a.startsWith('-')) usage(`unknown option ${a}`)
    else if (!opts.results) opts.results = a
    else usage(`unexpected argument ${a}`)
  }
  if (!opts.results) usage('RESULTS.json is required')
  return opts
}

async function loadSuite () {
  const require = createRequire(import.meta.url)
  const pkgDir = path.dirname(require.resolve('http-cache-tests/package.json'))
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'))
  const imp = rel => import(pathToFileURL(path.join(pkgDir, rel)).href)
  // the same test list as the suite's cli.mjs: tests/index.mjs plus Surrogate-Control
  const suites = [...(await imp('tests/index.mjs')).default, (await imp('tests/surrogate-control.mjs')).default]
  const { determineTestResult } = await imp('lib/display.mjs')
  return { version: `${pkg.name}@${pkg.version}`, suites, determineTestResult }
}

// determineTestResult returns [fontawesome glyph, colour, text symbol]; map the symbol to a name
const RESULT_NAMES = {
  '-': 'untested',
  '✅': 'pass',
  '⛔️': 'fail',
  '⚠️': 'optional_fail',
  Y: 'yes',
  N: 'no',
  '🔹': 'setup_fail',
  '⁉️': 'harness_fail',
  '⚪️': 'dependency_fail',
  '↻': 'retry'
}
const PASSED = new Set(['pass', 'yes'])

export function summarize (suite, raw, meta = {}) {
  const counts = {}
  for (const k of KINDS) counts[k] = { total: 0, passed: 0, not_passed: 0, untested: 0, by_result: {} }
  const failures = []
  const vary = { tests: 0, passed: 0, required_failures: [], optimal_failures: [] }
  for (const s of suite.suites) {
    for (const t of s.tests) {
      if (t.browser_only === true) continue // the CLI never runs these
      const kind = t.kind || 'required'
      const c = counts[kind]
      if (!c) throw new Error(`unknown test kind ${kind} for ${t.id}`)
      const name = RESULT_NAMES[suite.determineTestResult(suite.suites, t.id, raw)[2]]
      if (!name) throw new Error(`unknown result for ${t.id}`)
      c.by_result[name] = (c.by_result[name] || 0) + 1
      if (name === 'untested') { c.untested++; continue }
      c.total++
      const passed = PASSED.has(name)
      if (passed) c.passed++
      else c.not_passed++
      const r = raw[t.id]
      let message = Array.isArray(r) ? String(r[1]) : ''
      if (name === 'dependency_fail') message = `depends on ${t.depends_on.join(', ')}${message ? `; own result: ${message}` : ''}`
      if (!passed) failures.push({ id: t.id, suite: s.id, kind, result: name, message })
      if (VARY_SUITES.has(s.id)) {
        vary.tests++
        if (passed) vary.passed++
        else if (kind === 'required') vary.required_failures.push(t.id)
        else if (kind === 'optimal') vary.optimal_failures.push(t.id)
      }
    }
  }
  const unknown = Object.keys(raw).filter(id => !suite.suites.some(s => s.tests.some(t => t.id === id)))
  return {
    suite: suite.version,
    ...meta,
    date: meta.date || new Date().toISOString(),
    counts,
    vary,
    failed: {
      required: failures.filter(f => f.kind === 'required').map(f => f.id),
      optimal: failures.filter(f => f.kind === 'optimal').map(f => f.id),
      check_no: failures.filter(f => f.kind === 'check').map(f => f.id)
    },
    failures,
    ...(unknown.length ? { unknown_ids: unknown } : {})
  }
}

function pad (s, n) { s = String(s); return s + ' '.repeat(Math.max(0, n - s.length)) }

export function printSummary (sum, out = console.log) {
  const title = sum.name ? `${sum.name}${sum.version ? ` (${sum.version})` : ''}` : 'results'
  out(`== ${sum.suite}: ${title}`)
  for (const k of KINDS) {
    const c = sum.counts[k]
    const detail = Object.entries(c.by_result).filter(([r]) => !PASSED.has(r))
      .map(([r, n]) => `${r}=${n}`).join(' ')
    const [p, f] = k === 'check' ? ['yes', 'no'] : ['passed', 'not passed']
    out(`${pad(k, 9)} ${pad(`${p} ${c.passed}/${c.total}`, 18)} ${f} ${c.not_passed}${detail ? `  (${detail})` : ''}`)
  }
  const v = sum.vary
  out(`Vary group (vary, vary-parse): ${v.passed}/${v.tests} passed; ` +
    `required failures: ${v.required_failures.length ? v.required_failures.join(', ') : 'none'}; ` +
    `optimal misses: ${v.optimal_failures.length ? v.optimal_failures.join(', ') : 'none'}`)
  const bad = sum.failures.filter(f => f.kind !== 'check')
  if (bad.length) {
    out('not passed (required, optimal):')
    for (const f of bad) out(`  ${pad(f.kind, 8)} ${pad(f.result, 15)} ${pad(f.id, 42)} ${f.message}`)
  }
  if (sum.unknown_ids) out(`results for unknown test ids: ${sum.unknown_ids.join(', ')}`)
}

// Returns a list of problems (empty when the current summary is at least as good as the baseline).
export function compare (cur, base, out = console.log, flaky = {}) {
  const problems = []
  for (const k of ['required', 'optimal']) {
    const c = cur.counts[k].passed
    const b = base.counts[k].passed
    if (c < b) problems.push(`${k}: ${c} passed, fewer than the baseline's ${b}`)
    else out(`${k}: ${c} passed (baseline ${b})${c > b ? ' — better than the baseline; raise it with --write-baseline' : ''}`)
  }
  const cc = cur.counts.check.passed
  const bc = base.counts.check.passed
  if (cc !== bc) out(`check (informational, not gated): ${cc} yes (baseline ${bc})`)
  if (cur.vary.passed < base.vary.passed) {
    problems.push(`Vary group: ${cur.vary.passed} passed, fewer than the baseline's ${base.vary.passed}`)
  }
  if (cur.vary.required_failures.length) {
    problems.push(`required Vary tests failed: ${cur.vary.required_failures.join(', ')}`)
  }
  const baseFailed = new Set([...base.failed.required, ...base.failed.optimal])
  const newly = cur.failures.filter(f => f.kind !== 'check' && !baseFailed.has(f.id))
  if (newly.length) {
    out('not passed now, passed in the baseline:')
    for (const f of newly) {
      const excused = Object.hasOwn(flaky, f.id)
      out(`  ${pad(f.kind, 8)} ${pad(f.id, 42)} ${f.message}${excused ? `  [listed as flaky: ${flaky[f.id]}]` : ''}`)
      if (!excused) problems.push(`${f.kind} test ${f.id} passed in the baseline and does not pass now: ${f.result}`)
    }
  }
  const curFailed = new Set(cur.failures.map(f => f.id))
  const fixed = [...baseFailed].filter(id => !curFailed.has(id))
  if (fixed.length) out(`passed now, not passed in the baseline: ${fixed.join(', ')}`)
  return problems
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const raw = JSON.parse(fs.readFileSync(opts.results, 'utf8'))
  const suite = await loadSuite()
  const sum = summarize(suite, raw, opts.meta)
  printSummary(sum)
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify(sum, null, 2) + '\n')
    console.log(`summary written to ${opts.json}`)
  }
  if (opts.compare) {
    const base = JSON.parse(fs.readFileSync(opts.compare, 'utf8'))
    console.log(`== compared with ${opts.compare} (${base.name || 'baseline'}, ${base.date || 'undated'})`)
    const flaky = opts.flaky ? JSON.parse(fs.readFileSync(opts.flaky, 'utf8')) : {}
    for (const [id, why] of Object.entries(flaky)) {
      if (typeof why !== 'string' || !why.trim()) throw new Error(`${opts.flaky}: ${id} needs a reason`)
    }
    const problems = compare(sum, base, console.log, flaky)
    if (problems.length) {
      for (const p of problems) console.log(`CONFORMANCE REGRESSION: ${p}`)
      process.exit(1)
    }
    console.log('conformance: no regression against the baseline')
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(err => { console.error(err.stack || String(err)); process.exit(1) })
}
