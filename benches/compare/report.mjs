// The table and the issue-11 targets from one benches/compare/run.sh run.
//   node report.mjs RESULTS.jsonl ROUNDS
// One row per server and scenario: the round with the median req/s (and the spread of the
// rounds). Ratios compare rows of this run only.
import { readFileSync } from "node:fs";

const [file, rounds] = process.argv.slice(2);
const runs = readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const cells = new Map();
for (const r of runs) {
  const key = `${r.server}\t${r.scenario}`;
  if (!cells.has(key)) cells.set(key, []);
  cells.get(key).push(r);
}
const rows = [];
for (const group of cells.values()) {
  group.sort((a, b) => a.rps - b.rps);
  const median = { ...group[Math.floor((group.length - 1) / 2)] };
  median.spread = group.length > 1 ? `${group[0].rps.toFixed(0)}–${group[group.length - 1].rps.toFixed(0)}` : "";
  median.upstreamTotal = group.reduce((n, r) => n + r.upstream, 0);
  median.errorsTotal = group.reduce((n, r) => n + r.errors, 0);
  rows.push(median);
}
const find = (server, scenario) => rows.find((r) => r.server === server && r.scenario === scenario);
const ms = (us) => (us / 1000).toFixed(2);
const ratio = (a, b) => (a && b ? (a.rps / b.rps).toFixed(2) + "x" : "");

const out = [];
out.push("| server | scenario | req/s | spread | p50 ms | p99 ms | p99.9 ms | hit ratio | upstream reqs | server CPU | CPU µs/req | vs nginx | vs floor | notes |");
out.push("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
for (const r of rows) {
  const notes = [];
  if (r.cpu < 0.85) notes.push("server not saturated: load-generator bound");
  if (r.errorsTotal > 0) notes.push(`${r.errorsTotal} errors or non-2xx/3xx`);
  if (r.check.startsWith("NOT")) notes.push(r.check);
  if (r.check.startsWith("answered")) notes.push(r.check);
  if (r.server === "pingora-floor") notes.push("no cache: a fixed 1 KiB answer");
  const floor = find("pingora-floor", r.scenario === "edge-preflight" ? "edge-preflight" : "1k-10o");
  out.push(`| ${r.server} | ${r.scenario} | ${r.rps.toFixed(0)} | ${r.spread} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.p999)} | ` +
    `${r.hit == null ? "-" : r.hit.toFixed(4)} | ${r.upstreamTotal} | ${(100 * r.cpu).toFixed(0)}% | ${r.cpu_us.toFixed(2)} | ` +
    `${r.server === "nginx" ? "" : ratio(r, find("nginx", r.scenario))} | ${r.server === "pingora-floor" || !r.scenario.startsWith("1k-10o") && r.scenario !== "edge-preflight" ? "" : ratio(r, floor)} | ${notes.join("; ")} |`);
}

// Issue 11's and issue 20's targets, each from this run.
const ce = (s) => find("cors-edge", s);
const targets = [
  ["1 KiB hits ≥ 1.0× nginx", ce("1k-10o"), find("nginx", "1k-10o"), 1.0],
  ["1 KiB hits ≥ 1.0× Varnish", ce("1k-10o"), find("varnish", "1k-10o"), 1.0],
  ["1 KiB hits ≥ 0.85× the Pingora floor", ce("1k-10o"), find("pingora-floor", "1k-10o"), 0.85],
  ["64 KiB hits ≥ 1.0× nginx", ce("64k-10o"), find("nginx", "64k-10o"), 1.0],
  ["1 → 100 origins loses ≤ 8% (100 origins ≥ 0.92× 1 origin)", ce("1k-100o"), ce("1k-1o"), 0.92],
  ["cached preflights ≥ 1 KiB hits", ce("preflight"), ce("1k-10o"), 1.0],
  ["edge preflights ≥ 0.95× the floor", ce("edge-preflight"), find("pingora-floor", "edge-preflight"), 0.95],
  ["edge mode, 1000 origins ≥ 1 KiB hits", ce("edge-1000o"), ce("1k-10o"), 1.0],
  ["access log on: hits ≥ 0.9× without", find("cors-edge-log", "1k-10o"), ce("1k-10o"), 0.9],
];
out.push("");
out.push("Targets (issues 11 and 20), from this run:");
out.push("");
out.push("| target | measured | ratio | met |");
out.push("| --- | --- | ---: | --- |");
for (const [name, a, b, min] of targets) {
  if (!a || !b) continue;
  const value = a.rps / b.rps;
  out.push(`| ${name} | ${a.rps.toFixed(0)} vs ${b.rps.toFixed(0)} req/s | ${value.toFixed(2)}x | ${value >= min ? "yes" : "**no**"} |`);
}
const hit = ce("1k-10o");
const nginx = find("nginx", "1k-10o");
if (hit && nginx) {
  out.push(`| 1 KiB hits p99 ≤ nginx's | ${ms(hit.p99)} vs ${ms(nginx.p99)} ms | | ${hit.p99 <= nginx.p99 ? "yes" : "**no**"} |`);
}
// A miss's CPU: the server's own work for a request it must fetch and store (the upstream runs
// on the load generator's CPU, not counted).
const miss = ce("miss");
const nginxMiss = find("nginx", "miss");
if (miss && nginxMiss) {
  out.push(`| CPU per miss ≤ nginx's | ${miss.cpu_us.toFixed(2)} vs ${nginxMiss.cpu_us.toFixed(2)} µs | ` +
    `${(miss.cpu_us / nginxMiss.cpu_us).toFixed(2)}x | ${miss.cpu_us <= nginxMiss.cpu_us ? "yes" : "**no**"} |`);
}
out.push("");
out.push(`Each row: a warm-up with the same load, a two-request HIT check, then ${rounds} measured run(s), ` +
  "the servers taking turns; figures are those of the median run, 'spread' the slowest and fastest, " +
  "'upstream reqs' the sum over the runs (0: every answer came from the cache). 'server CPU' is the " +
  "server's CPU time over the run (100% = the whole of CPU 1) and 'CPU µs/req' that time per request.");
console.log(out.join("\n"));
