/**
 * The dashboard's browser script (plain modern JavaScript; it runs in the page, not in Node,
 * so it is a string here). Every REFRESH it fetches /api/stats and the ten busiest connections,
 * derives rates from counter differences, keeps a short history for the charts, and updates
 * the page in place (rows are keyed, so a button under the pointer is never replaced mid-click).
 * Data is only ever inserted as text, never as HTML.
 *
 * `?refresh=MS` changes the poll interval (minimum 200 ms); `#token=T` hands over the admin
 * token, which is then kept in sessionStorage and removed from the address bar.
 *
 * Written without template literals: this file is itself one.
 */
export const DASHBOARD_SCRIPT = String.raw`
(() => {
  'use strict';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  const refreshParam = Number(new URLSearchParams(location.search).get('refresh'));
  const REFRESH_MS = refreshParam >= 200 ? refreshParam : 1000;
  const HISTORY_POINTS = 60;

  const state = { token: takeToken(), previous: null, history: [], colors: new Map(), timer: 0 };
  const el = (id) => document.getElementById(id);

  class AuthError extends Error {}

  function takeToken() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
    if (fromHash) {
      sessionStorage.setItem('tcpproxy-admin-token', fromHash);
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem('tcpproxy-admin-token') || '';
  }

  async function api(method, path) {
    const headers = state.token ? { Authorization: 'Bearer ' + state.token } : {};
    const response = await fetch(path, { method: method, headers: headers, cache: 'no-store' });
    if (response.status === 401) throw new AuthError('token required');
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error((body && body.error) || method + ' ' + path + ': HTTP ' + response.status);
    return body;
  }

  // ---- formatting ----
  const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  function count(n) { return integer.format(n); }
  function rate(n) { return n < 10 && n > 0 ? decimal.format(n) : integer.format(n); }
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? integer.format(n) : decimal.format(n)) + ' ' + units[i];
  }
  function duration(ms) {
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  }
  function sum(record) { let total = 0; for (const key in record) total += record[key]; return total; }

  // ---- small DOM helpers ----
  function setValue(node, value, text) {
    node.dataset.value = String(value);
    node.textContent = text;
  }
  function cell(text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }
  function button(label, action, data, danger) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.dataset.action = action;
    for (const key in data) b.dataset[key] = data[key];
    if (danger) b.className = 'danger';
    return b;
  }
  // Updates tbody to one row per item, reusing rows by key and moving them only when out of order.
  function syncRows(tbody, items, keyOf, fill, emptyText, columns) {
    const existing = new Map();
    for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.key, tr);
    const wanted = new Set();
    items.forEach((item, index) => {
      const key = keyOf(item);
      wanted.add(key);
      let tr = existing.get(key);
      if (!tr) { tr = document.createElement('tr'); tr.dataset.key = key; }
      fill(tr, item);
      if (tbody.rows[index] !== tr) tbody.insertBefore(tr, tbody.rows[index] || null);
    });
    for (const [key, tr] of existing) if (!wanted.has(key)) tr.remove();
    if (items.length === 0) {
      const tr = document.createElement('tr');
      tr.dataset.key = '';
      const td = cell(emptyText, 'empty');
      td.colSpan = columns;
      tr.append(td);
      tbody.replaceChildren(tr);
    }
  }
  function colorOf(name) {
    if (!state.colors.has(name)) state.colors.set(name, COLORS[state.colors.size % COLORS.length]);
    return state.colors.get(name);
  }

  // ---- charts: SVG line charts over the kept history ----
  function niceCeiling(v) {
    if (v <= 0) return 1;
    const magnitude = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= v) return step * magnitude;
    return 10 * magnitude;
  }
  function svg(tag, attributes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const key in attributes) node.setAttribute(key, attributes[key]);
    return node;
  }
  function drawChart(svgNode, legendNode, field, format) {
    const width = svgNode.clientWidth || 600;
    const height = svgNode.clientHeight || 190;
    const left = 64, right = 8, top = 8, bottom = 20;
    const plotW = width - left - right, plotH = height - top - bottom;
    svgNode.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    const points = state.history;
    const names = points.length ? Object.keys(points[points.length - 1].listeners) : [];
    let max = 0;
    for (const p of points) for (const name of names) max = Math.max(max, (p.listeners[name] || {})[field] || 0);
    max = niceCeiling(max);
    const newest = points.length ? points[points.length - 1].time : 0;
    const span = HISTORY_POINTS * REFRESH_MS;
    const x = (t) => left + plotW * (1 - (newest - t) / span);
    const y = (v) => top + plotH * (1 - v / max);
    const nodes = [];
    for (const fraction of [0, 0.5, 1]) {
      const yy = y(max * fraction);
      nodes.push(svg('line', { class: 'gridline', x1: left, x2: width - right, y1: yy, y2: yy }));
      const label = svg('text', { class: 'axis', x: left - 8, y: yy + 4, 'text-anchor': 'end' });
      label.textContent = format(max * fraction);
      nodes.push(label);
    }
    const ago = svg('text', { class: 'axis', x: left, y: height - 4 });
    ago.textContent = '-' + Math.round(span / 1000) + 's';
    const now = svg('text', { class: 'axis', x: width - right, y: height - 4, 'text-anchor': 'end' });
    now.textContent = 'now';
    nodes.push(ago, now);
    for (const name of names) {
      const series = points.filter((p) => p.listeners[name] !== undefined);
      if (series.length < 2) continue;
      const line = series.map((p, i) => (i ? 'L' : 'M') + x(p.time).toFixed(1) + ' ' + y(p.listeners[name][field]).toFixed(1)).join(' ');
      const base = y(0).toFixed(1);
      const area = line + ' L' + x(series[series.length - 1].time).toFixed(1) + ' ' + base + ' L' + x(series[0].time).toFixed(1) + ' ' + base + ' Z';
      nodes.push(svg('path', { class: 'area', d: area, fill: colorOf(name) }));
      nodes.push(svg('path', { class: 'line', d: line, stroke: colorOf(name), 'data-listener': name }));
    }
    svgNode.replaceChildren(...nodes);
    legendNode.replaceChildren(...names.map((name) => {
      const item = document.createElement('span');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colorOf(name);
      item.append(swatch, name);
      return item;
    }));
  }

  // ---- rendering ----
  function render(stats, connections) {
    const previous = state.previous;
    const seconds = previous ? (stats.time - previous.time) / 1000 : 0;
    const before = new Map(previous ? previous.listeners.map((l) => [l.name, l]) : []);
    const perSecond = (now, then) => (seconds > 0 && then !== undefined ? Math.max(0, (now - then) / seconds) : 0);
    const rows = stats.listeners.map((l) => {
      const p = before.get(l.name);
      return {
        listener: l,
        refused: sum(l.rejections),
        newRate: perSecond(l.connections_total, p && p.connections_total),
        inRate: perSecond(l.bytes_from_client, p && p.bytes_from_client),
        outRate: perSecond(l.bytes_to_client, p && p.bytes_to_client),
        refusedRate: perSecond(sum(l.rejections), p && sum(p.rejections)),
      };
    });
    state.previous = stats;
    if (previous) {
      const point = { time: stats.time, listeners: {} };
      for (const r of rows) point.listeners[r.listener.name] = { active: r.listener.active, throughput: r.inRate + r.outRate };
      state.history.push(point);
      if (state.history.length > HISTORY_POINTS) state.history.shift();
    }
    renderSummary(rows, stats.upstreams);
    renderCluster(stats.cluster);
    drawChart(el('chart-active'), el('legend-active'), 'active', count);
    drawChart(el('chart-throughput'), el('legend-throughput'), 'throughput', (v) => bytes(v) + '/s');
    el('window-hint').textContent = 'last ' + Math.round((HISTORY_POINTS * REFRESH_MS) / 1000) + ' s';
    renderListeners(rows);
    renderUpstreams(stats.upstreams);
    renderRefusals(stats.listeners);
    renderConnections(connections);
  }

  function total(rows, pick) { let t = 0; for (const r of rows) t += pick(r); return t; }

  function renderSummary(rows, upstreams) {
    const summary = (name) => document.querySelector('[data-testid="summary-' + name + '"]');
    const active = total(rows, (r) => r.listener.active);
    setValue(summary('active'), active, count(active));
    el('summary-active-sub').textContent = rows.length + (rows.length === 1 ? ' listener' : ' listeners') +
      ', ' + count(total(rows, (r) => r.listener.queue_length)) + ' queued';
    const newRate = total(rows, (r) => r.newRate);
    setValue(summary('connection-rate'), newRate, rate(newRate) + '/s');
    el('summary-connection-rate-sub').textContent = count(total(rows, (r) => r.listener.connections_total)) + ' in total';
    const inRate = total(rows, (r) => r.inRate);
    setValue(summary('in-rate'), inRate, bytes(inRate) + '/s');
    el('summary-in-rate-sub').textContent = bytes(total(rows, (r) => r.listener.bytes_from_client)) + ' in total';
    const outRate = total(rows, (r) => r.outRate);
    setValue(summary('out-rate'), outRate, bytes(outRate) + '/s');
    el('summary-out-rate-sub').textContent = bytes(total(rows, (r) => r.listener.bytes_to_client)) + ' in total';
    const refused = total(rows, (r) => r.refused);
    setValue(summary('refusals'), refused, count(refused));
    el('summary-refusals-sub').textContent = rate(total(rows, (r) => r.refusedRate)) + '/s now';
    const up = upstreams.filter((u) => u.state !== 'down').length;
    setValue(summary('upstreams'), up, up + ' / ' + upstreams.length);
    const draining = upstreams.filter((u) => u.state === 'draining').length;
    el('summary-upstreams-sub').textContent = draining + ' draining, ' + (upstreams.length - up) + ' down';
  }

  // limits_scope: cluster: the Redis link's state and, per listener, connections here / in the whole cluster.
  function renderCluster(cluster) {
    el('cluster-card').hidden = !cluster;
    if (!cluster) return;
    const value = document.querySelector('[data-testid="summary-cluster"]');
    setValue(value, cluster.state, cluster.state);
    value.className = 'value ' + (cluster.state === 'up' ? 'ok' : 'bad');
    const counts = cluster.listeners.map((l) => l.name + ' ' + count(l.local) + ' here / ' + count(l.cluster) + ' all');
    el('summary-cluster-sub').textContent = 'on_error ' + cluster.on_error + (counts.length ? ' · ' + counts.join(' · ') : '');
    el('summary-cluster-sub').title = cluster.redis;
  }

  function renderListeners(rows) {
    syncRows(el('listeners'), rows, (r) => r.listener.name, (tr, r) => {
      const l = r.listener;
      tr.dataset.listener = l.name;
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colorOf(l.name);
      const name = cell('');
      name.append(swatch, l.name);
      const cells = [
        name,
        cell(count(l.active), 'num'), cell(count(l.connections_total), 'num'), cell(rate(r.newRate), 'num'),
        cell(bytes(r.inRate) + '/s', 'num'), cell(bytes(r.outRate) + '/s', 'num'),
        cell(count(l.queue_length), 'num'), cell(count(r.refused), 'num'),
      ];
      const fields = ['name', 'active', 'total', 'new_rate', 'in_rate', 'out_rate', 'queued', 'refused'];
      cells.forEach((c, i) => { c.dataset.field = fields[i]; });
      cells[1].dataset.value = String(l.active);
      cells[2].dataset.value = String(l.connections_total);
      tr.replaceChildren(...cells);
    }, 'No listeners', 8);
  }

  function renderUpstreams(upstreams) {
    syncRows(el('upstreams'), upstreams, (u) => u.listener + ' ' + u.address, (tr, u) => {
      tr.dataset.upstream = u.listener + ' ' + u.address;
      const badge = document.createElement('span');
      badge.className = 'badge ' + u.state;
      badge.textContent = u.state;
      const stateCell = cell('');
      stateCell.append(badge);
      const actionCell = cell('', 'num');
      const draining = u.state === 'draining';
      actionCell.append(button(draining ? 'Enable' : 'Drain', draining ? 'enable' : 'drain', { listener: u.listener, address: u.address }));
      tr.replaceChildren(cell(u.listener), cell(u.address, 'mono'), stateCell, cell(count(u.active), 'num'),
        cell(count(u.connections_total), 'num'), cell(count(u.connect_failures), 'num'), actionCell);
    }, 'No upstreams', 7);
  }

  function renderRefusals(listeners) {
    const byReason = {};
    for (const l of listeners) for (const reason in l.rejections) byReason[reason] = (byReason[reason] || 0) + l.rejections[reason];
    const reasons = Object.keys(byReason);
    const max = Math.max(1, ...reasons.map((r) => byReason[r]));
    const container = el('refusals');
    container.replaceChildren(...reasons.map((reason) => {
      const row = document.createElement('div');
      row.className = 'bar-row' + (byReason[reason] === 0 ? ' zero' : '');
      row.dataset.reason = reason;
      row.dataset.value = String(byReason[reason]);
      const label = document.createElement('span');
      label.className = 'mono';
      label.textContent = reason;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = ((100 * byReason[reason]) / max).toFixed(1) + '%';
      bar.append(fill);
      const value = document.createElement('span');
      value.className = 'num';
      value.textContent = count(byReason[reason]);
      row.append(label, bar, value);
      return row;
    }));
    el('refusals-hint').textContent = count(sum(byReason)) + ' in total';
  }

  function renderConnections(connections) {
    syncRows(el('connections'), connections, (c) => c.id, (tr, c) => {
      tr.dataset.connectionId = c.id;
      const actionCell = cell('', 'num');
      actionCell.append(button('Close', 'close', { id: c.id }, true));
      tr.replaceChildren(cell(c.id, 'mono'), cell(c.listener), cell(c.client, 'mono'), cell(c.upstream || '–', 'mono'),
        cell(duration(c.age_ms), 'num'), cell(bytes(c.bytes_from_client), 'num'), cell(bytes(c.bytes_to_client), 'num'),
        cell(bytes(c.bytes_from_client + c.bytes_to_client), 'num'), actionCell);
    }, 'No open connections', 9);
  }

  // ---- status, polling, actions ----
  function setStatus(kind, text) {
    const pill = el('status');
    pill.className = 'pill ' + kind;
    pill.textContent = kind === 'live' ? 'live' : kind === 'offline' ? 'offline' : 'connecting';
    el('updated').textContent = text;
  }
  function toast(text) {
    el('toast').textContent = text;
  }

  async function refresh() {
    clearTimeout(state.timer);
    try {
      const results = await Promise.all([api('GET', '/api/stats'), api('GET', '/api/connections?sort=bytes&limit=10')]);
      el('auth').hidden = true;
      render(results[0], results[1]);
      setStatus('live', 'updated ' + new Date(results[0].time).toLocaleTimeString());
    } catch (error) {
      if (error instanceof AuthError) {
        el('auth').hidden = false;
        setStatus('offline', 'token required');
        return; // polling resumes when a token is entered
      }
      setStatus('offline', error.message);
    }
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  async function act(target) {
    const d = target.dataset;
    try {
      if (d.action === 'close') {
        await api('DELETE', '/api/connections/' + encodeURIComponent(d.id));
        toast('closed connection ' + d.id);
      } else {
        await api('POST', '/api/upstreams/' + encodeURIComponent(d.listener) + '/' + encodeURIComponent(d.address) + '/' + d.action);
        toast(d.action + ' ' + d.address);
      }
    } catch (error) {
      toast(error.message);
    }
    refresh();
  }

  document.addEventListener('click', (event) => {
    const target = event.target.closest('button[data-action]');
    if (target) act(target);
  });
  el('auth').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = el('token').value.trim();
    sessionStorage.setItem('tcpproxy-admin-token', state.token);
    refresh();
  });
  refresh();
})();
`;
