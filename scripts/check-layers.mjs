#!/usr/bin/env node
// The floors of src/: a folder may import from its own floor and from the floors below it,
// never from a floor above (so there is no import cycle between folders). Lowest first:
//
//   deps           the CommonJS dependencies, loaded with require() (why: deps/commonjs.ts)
//   errors         TcpProxyError and the list of stable error codes
//   net            addresses as text: HOST:PORT, IPv4-mapped unmapping
//   protocol       wire formats: PROXY header v1/v2, TLS ClientHello/SNI, TLS contexts
//   observability  logger, access log, metrics, close/reject reasons, the package version
//   http           the small HTTP plumbing the admin and toxiproxy APIs share (router, body)
//   admission      who may connect now: access lists, schedule, limits, rate, wait queue
//   balancing      upstream endpoints, balancers, health checks, upstream pool and queue
//   filters        the Filter interface, the built-in filters, one direction's chain
//   inspect        taps written as filters: data log, pcap capture
//   config         the configuration: schema (with the validators of the floors below), durations, sizes, load
//   cluster        limits shared through Redis
//   pipeline       a connection's data pipeline: configured filters + inspection, live filters
//   proxy          listener, connector, bridge: the connection's path
//   toxiproxy      toxiproxy's HTTP API on live filters
//   admin          the admin endpoint: API, metrics, dashboard
//   runtime        one process: listeners from a config, reload, workers, signals
//   cli            the command line: entry points that compose a runtime
//   (src/*.ts)     the package's public API, above everything
//
// Usage: node scripts/check-layers.mjs [SRC_DIR]   (default: src). Exit 1 with one line per
// offending import (and per folder cycle), 0 when the floors hold. Run by npm test
// (test/architecture/layers.test.ts) and npm run lint.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FLOORS = [
  'deps',
  'errors',
  'net',
  'protocol',
  'observability',
  'http',
  'admission',
  'balancing',
  'filters',
  'inspect',
  'config',
  'cluster',
  'pipeline',
  'proxy',
  'toxiproxy',
  'admin',
  'runtime',
  'cli',
  '',
];

/** Relative module specifiers in static imports, `export ... from`, side-effect and dynamic imports. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The top folder of `file` under `root` ('' for a file directly in it). */
function folderOf(root, file) {
  const parts = relative(root, file).split(sep);
  return parts.length > 1 ? parts[0] : '';
}

/** Every problem as one line; empty when the floors hold. */
export function checkLayers(srcDir = 'src') {
  const root = resolve(srcDir);
  const problems = [];
  const edges = new Map();
  for (const file of sourceFiles(root)) {
    const from = folderOf(root, file);
    if (!FLOORS.includes(from)) problems.push(`${relative(root, file)}: folder "${from}" has no floor in scripts/check-layers.mjs`);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(SPECIFIER)) {
      const target = resolve(dirname(file), match[1]);
      if (relative(root, target).startsWith('..')) continue;
      const to = folderOf(root, target);
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from).add(to);
      const line = text.slice(0, match.index).split('\n').length;
      if (FLOORS.indexOf(to) > FLOORS.indexOf(from) && FLOORS.includes(from)) {
        problems.push(`${relative(root, file)}:${line}: ${show(from)} imports ${match[1]} from the higher floor ${show(to)}`);
      }
    }
  }
  for (const group of folderCycles(edges)) problems.push(`import cycle between the folders ${group.map(show).join(', ')}`);
  return problems;
}

function show(folder) {
  return folder === '' ? 'src/' : `src/${folder}/`;
}

/** The groups of folders that import each other, directly or not (Tarjan's strongly connected components). */
function folderCycles(edges) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const cycles = [];
  const visit = (node) => {
    index.set(node, index.size);
    low.set(node, index.get(node));
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node), low.get(next)));
      } else if (stack.includes(next)) low.set(node, Math.min(low.get(node), index.get(next)));
    }
    if (low.get(node) !== index.get(node)) return;
    const group = stack.splice(stack.indexOf(node));
    if (group.length > 1) cycles.push(group.sort());
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = checkLayers(process.argv[2]);
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) process.exit(1);
  console.log('floors hold: no folder imports from a higher floor');
}
