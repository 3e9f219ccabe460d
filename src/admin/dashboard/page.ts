/**
 * The dashboard served at GET /: one self-contained HTML page (inline style, inline script,
 * SVG charts drawn by the script; nothing is fetched from elsewhere). The Content-Security-Policy
 * allows exactly this style and this script, by hash, and network access only to this origin.
 *
 * The script is browser/dashboard.ts, compiled by its own tsconfig next to this module. It is
 * read on the first request for the page, not at start: a proxy nobody looks at never pays for it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { DASHBOARD_STYLE } from './style.js';

export interface DashboardPage {
  html: string;
  contentSecurityPolicy: string;
}

const BODY = `
<header>
  <span class="dot"></span><h1>tcpproxy</h1><span class="subtitle">live dashboard</span>
  <div class="status"><span id="toast"></span><span id="updated"></span><span id="status" class="pill waiting">connecting</span></div>
</header>
<main>
  <form id="auth" hidden>
    <span>This admin endpoint needs a token.</span>
    <input id="token" type="password" autocomplete="off" placeholder="admin token" aria-label="admin token">
    <button type="submit">Connect</button>
  </form>
  <div class="cards">
    <div class="card"><div class="label">Active connections</div><div class="value" data-testid="summary-active">–</div><div class="sub" id="summary-active-sub"></div></div>
    <div class="card"><div class="label">New connections</div><div class="value" data-testid="summary-connection-rate">–</div><div class="sub" id="summary-connection-rate-sub"></div></div>
    <div class="card"><div class="label">From clients</div><div class="value" data-testid="summary-in-rate">–</div><div class="sub" id="summary-in-rate-sub"></div></div>
    <div class="card"><div class="label">To clients</div><div class="value" data-testid="summary-out-rate">–</div><div class="sub" id="summary-out-rate-sub"></div></div>
    <div class="card"><div class="label">Refused</div><div class="value" data-testid="summary-refusals">–</div><div class="sub" id="summary-refusals-sub"></div></div>
    <div class="card"><div class="label">Upstreams up</div><div class="value" data-testid="summary-upstreams">–</div><div class="sub" id="summary-upstreams-sub"></div></div>
    <div class="card" id="cluster-card" hidden><div class="label">Cluster (Redis)</div><div class="value" data-testid="summary-cluster">–</div><div class="sub" id="summary-cluster-sub"></div></div>
  </div>
  <div class="row">
    <section class="panel"><h2>Active connections <span class="hint" id="window-hint"></span></h2><svg class="chart" id="chart-active" role="img" aria-label="active connections per listener"></svg><div class="legend" id="legend-active"></div></section>
    <section class="panel"><h2>Throughput <span class="hint">bytes/s, both directions</span></h2><svg class="chart" id="chart-throughput" role="img" aria-label="throughput per listener"></svg><div class="legend" id="legend-throughput"></div></section>
  </div>
  <section class="panel"><h2>Listeners</h2><div class="table-wrap"><table>
    <thead><tr><th>Listener</th><th class="num">Active</th><th class="num">Total</th><th class="num">New/s</th><th class="num">From clients/s</th><th class="num">To clients/s</th><th class="num">Queued</th><th class="num">Refused</th><th>Live filters</th></tr></thead>
    <tbody id="listeners"></tbody></table></div></section>
  <div class="row">
    <section class="panel"><h2>Upstreams</h2><div class="table-wrap"><table>
      <thead><tr><th>Listener</th><th>Upstream</th><th>State</th><th class="num">Active</th><th class="num">Connects</th><th class="num">Failures</th><th></th></tr></thead>
      <tbody id="upstreams"></tbody></table></div></section>
    <section class="panel"><h2>Refusals by reason <span class="hint" id="refusals-hint"></span></h2><div class="bars" id="refusals"></div></section>
  </div>
  <section class="panel" id="manage"><h2>Manage upstreams <span class="hint">changes apply at once, without a reload</span></h2>
    <div class="manage-bar">
      <label>Listener <select id="manage-listener" aria-label="listener to manage"></select></label>
      <form id="add-upstream" class="manage-bar">
        <input name="address" placeholder="HOST:PORT" aria-label="new upstream address" required>
        <input name="weight" type="number" min="1" step="1" placeholder="weight (1)" aria-label="weight">
        <input name="max_connections" type="number" min="1" step="1" placeholder="max connections" aria-label="max connections">
        <button type="submit">Add upstream</button>
      </form>
    </div>
    <div class="table-wrap"><table>
      <thead><tr><th>Upstream</th><th>Endpoints</th><th class="num">Active</th><th class="num">Weight</th><th class="num">Max connections</th><th></th></tr></thead>
      <tbody id="manage-upstreams"></tbody></table></div>
    <div class="manage-note">Removing an upstream drains it: no new connections, open ones finish. A config reload puts the file's upstreams back.</div>
  </section>
  <section class="panel"><h2>Busiest connections <span class="hint">top 10 by bytes</span></h2><div class="table-wrap"><table>
    <thead><tr><th>ID</th><th>Listener</th><th>Client</th><th>Upstream</th><th class="num">Age</th><th class="num">From client</th><th class="num">To client</th><th class="num">Total</th><th></th></tr></thead>
    <tbody id="connections"></tbody></table></div></section>
</main>`;

function sha256Source(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

const SCRIPT_FILE = new URL('./browser/dashboard.js', import.meta.url);

async function buildPage(): Promise<DashboardPage> {
  const script = await readFile(SCRIPT_FILE, 'utf8');
  const html =
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<title>tcpproxy dashboard</title><link rel="icon" href="data:,">' +
    `<style>${DASHBOARD_STYLE}</style></head><body>${BODY}<script>${script}</script></body></html>\n`;
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${sha256Source(script)}`,
    `style-src ${sha256Source(DASHBOARD_STYLE)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, contentSecurityPolicy };
}

let page: Promise<DashboardPage> | undefined;

/** The page, built once; a failed read (a build without the script) is retried on the next request. */
export function dashboardPage(): Promise<DashboardPage> {
  page ??= buildPage().catch((error: unknown) => {
    page = undefined;
    throw error;
  });
  return page;
}
