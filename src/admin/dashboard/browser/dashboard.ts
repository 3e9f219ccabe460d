/**
 * The dashboard's browser script (compiled by its own tsconfig against the DOM library and
 * inlined into the page by ../page.ts). Every REFRESH it fetches /api/stats and the ten
 * busiest connections, derives rates from counter differences, keeps a short history for the
 * charts, and updates the page in place (rows are keyed, so a button under the pointer is never
 * replaced mid-click). Data is only ever inserted as text, never as HTML.
 *
 * `?refresh=MS` changes the poll interval (minimum 200 ms); `#token=T` hands over the admin
 * token, which is then kept in sessionStorage and removed from the address bar.
 *
 * A classic script, not a module (no top-level import or export), wrapped in a function so
 * that nothing leaks into the page's globals.
 */
type StatsPayload = import('../../api-payloads.js').StatsPayload;
type ConnectionInfo = import('../../api-payloads.js').ConnectionInfo;
type ListenerInfo = import('../../api-payloads.js').ListenerInfo;
type UpstreamView = import('../../api-payloads.js').UpstreamView;
type ListenerStats = StatsPayload['listeners'][number];
type UpstreamStats = StatsPayload['upstreams'][number];

(() => {
  /** One listener's figures of this poll, with the rates derived from the previous one. */
  interface ListenerRow {
    listener: ListenerStats;
    refused: number;
    newRate: number;
    inRate: number;
    outRate: number;
    refusedRate: number;
  }
  type ChartField = 'active' | 'throughput';
  interface HistoryPoint {
    time: number;
    listeners: Record<string, Record<ChartField, number>>;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
  const refreshParam = Number(new URLSearchParams(location.search).get('refresh'));
  const REFRESH_MS = refreshParam >= 200 ? refreshParam : 1000;
  const HISTORY_POINTS = 60;

  const state = {
    token: takeToken(),
    previous: null as StatsPayload | null,
    history: [] as HistoryPoint[],
    colors: new Map<string, string>(),
    timer: 0,
    capturing: new Set<string>(),
  };

  /** The page's fixed elements (page.ts): a missing one is a bug in the page, not a state to handle. */
  function el<T extends Element = HTMLElement>(id: string): T {
    const node = document.getElementById(id);
    if (node === null) throw new Error('dashboard: no element #' + id);
    return node as unknown as T;
  }
  function summaryValue(name: string): HTMLElement {
    const node = document.querySelector<HTMLElement>('[data-testid="summary-' + name + '"]');
    if (node === null) throw new Error('dashboard: no summary ' + name);
    return node;
  }

  class AuthError extends Error {}

  function takeToken(): string {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
    if (fromHash) {
      sessionStorage.setItem('tcpproxy-admin-token', fromHash);
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem('tcpproxy-admin-token') ?? '';
  }

  function authHeaders(): Record<string, string> {
    return state.token ? { Authorization: 'Bearer ' + state.token } : {};
  }

  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers = authHeaders();
    const init: RequestInit = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) throw new AuthError('token required');
    const answer = (await response.json().catch(() => null)) as unknown;
    if (!response.ok) throw new Error(errorText(answer) || method + ' ' + path + ': HTTP ' + response.status);
    return answer as T;
  }

  /** The `error` field of an API error document, when there is one. */
  function errorText(answer: unknown): string {
    if (typeof answer !== 'object' || answer === null || !('error' in answer)) return '';
    return typeof answer.error === 'string' ? answer.error : '';
  }

  function messageOf(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
  }

  // ---- formatting ----
  const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  function count(n: number): string {
    return integer.format(n);
  }
  function rate(n: number): string {
    return n < 10 && n > 0 ? decimal.format(n) : integer.format(n);
  }
  function bytes(n: number): string {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? integer.format(n) : decimal.format(n)) + ' ' + units[i];
  }
  function duration(ms: number): string {
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
    return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
  }
  function sum(record: Readonly<Record<string, number>>): number {
    let total = 0;
    for (const key in record) total += record[key];
    return total;
  }

  // ---- small DOM helpers ----
  function setValue(node: HTMLElement, value: number | string, text: string): void {
    node.dataset.value = String(value);
    node.textContent = text;
  }
  function cell(text: string, className?: string): HTMLTableCellElement {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }
  function button(label: string, action: string, data: Record<string, string>, danger?: boolean): HTMLButtonElement {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.dataset.action = action;
    for (const key in data) b.dataset[key] = data[key];
    if (danger) b.className = 'danger';
    return b;
  }
  // Updates tbody to one row per item, reusing rows by key and moving them only when out of order.
  function syncRows<T>(
    tbody: HTMLTableSectionElement,
    items: readonly T[],
    keyOf: (item: T) => string,
    fill: (tr: HTMLTableRowElement, item: T) => void,
    emptyText: string,
    columns: number,
  ): void {
    const existing = new Map<string | undefined, HTMLTableRowElement>();
    for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.key, tr);
    const wanted = new Set<string>();
    items.forEach((item, index) => {
      const key = keyOf(item);
      wanted.add(key);
      let tr = existing.get(key);
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.key = key;
      }
      fill(tr, item);
      if (tbody.rows[index] !== tr) tbody.insertBefore(tr, tbody.rows[index] || null);
    });
    for (const [key, tr] of existing) if (key === undefined || !wanted.has(key)) tr.remove();
    if (items.length === 0) {
      const tr = document.createElement('tr');
      tr.dataset.key = '';
      const td = cell(emptyText, 'empty');
      td.colSpan = columns;
      tr.append(td);
      tbody.replaceChildren(tr);
    }
  }
  function colorOf(name: string): string {
    let color = state.colors.get(name);
    if (color === undefined) {
      color = COLORS[state.colors.size % COLORS.length];
      state.colors.set(name, color);
    }
    return color;
  }

  // ---- charts: SVG line charts over the kept history ----
  function niceCeiling(v: number): number {
    if (v <= 0) return 1;
    const magnitude = Math.pow(10, Math.floor(Math.log10(v)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= v) return step * magnitude;
    return 10 * magnitude;
  }
  function svg(tag: string, attributes: Record<string, string | number>): SVGElement {
    const node = document.createElementNS(SVG_NS, tag);
    for (const key in attributes) node.setAttribute(key, String(attributes[key]));
    return node;
  }
  function drawChart(svgNode: SVGSVGElement, legendNode: HTMLElement, field: ChartField, format: (value: number) => string): void {
    const width = svgNode.clientWidth || 600;
    const height = svgNode.clientHeight || 190;
    const left = 64,
      right = 8,
      top = 8,
      bottom = 20;
    const plotW = width - left - right,
      plotH = height - top - bottom;
    svgNode.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    const points = state.history;
    const last = points[points.length - 1];
    const names = last ? Object.keys(last.listeners) : [];
    let max = 0;
    for (const p of points) for (const name of names) max = Math.max(max, p.listeners[name]?.[field] || 0);
    max = niceCeiling(max);
    const newest = last ? last.time : 0;
    const span = HISTORY_POINTS * REFRESH_MS;
    const x = (t: number) => left + plotW * (1 - (newest - t) / span);
    const y = (v: number) => top + plotH * (1 - v / max);
    const nodes: SVGElement[] = [];
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
      const series = points.flatMap((p) => {
        const values = p.listeners[name];
        return values === undefined ? [] : [{ time: p.time, value: values[field] }];
      });
      const first = series[0];
      const final = series[series.length - 1];
      if (first === undefined || final === undefined || series.length < 2) continue;
      const line = series.map((p, i) => (i ? 'L' : 'M') + x(p.time).toFixed(1) + ' ' + y(p.value).toFixed(1)).join(' ');
      const base = y(0).toFixed(1);
      const area = line + ' L' + x(final.time).toFixed(1) + ' ' + base + ' L' + x(first.time).toFixed(1) + ' ' + base + ' Z';
      nodes.push(svg('path', { class: 'area', d: area, fill: colorOf(name) }));
      nodes.push(svg('path', { class: 'line', d: line, stroke: colorOf(name), 'data-listener': name }));
    }
    svgNode.replaceChildren(...nodes);
    legendNode.replaceChildren(
      ...names.map((name) => {
        const item = document.createElement('span');
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = colorOf(name);
        item.append(swatch, name);
        return item;
      }),
    );
  }

  // ---- rendering ----
  function render(stats: StatsPayload, connections: ConnectionInfo[], control: ListenerInfo[]): void {
    const previous = state.previous;
    const seconds = previous ? (stats.time - previous.time) / 1000 : 0;
    const before = new Map(previous ? previous.listeners.map((l) => [l.name, l]) : []);
    const perSecond = (now: number, then: number | undefined) => (seconds > 0 && then !== undefined ? Math.max(0, (now - then) / seconds) : 0);
    const rows = stats.listeners.map((l): ListenerRow => {
      const p = before.get(l.name);
      return {
        listener: l,
        refused: sum(l.rejections),
        newRate: perSecond(l.connections_total, p?.connections_total),
        inRate: perSecond(l.bytes_from_client, p?.bytes_from_client),
        outRate: perSecond(l.bytes_to_client, p?.bytes_to_client),
        refusedRate: perSecond(sum(l.rejections), p && sum(p.rejections)),
      };
    });
    state.previous = stats;
    if (previous) {
      const point: HistoryPoint = { time: stats.time, listeners: {} };
      for (const r of rows) point.listeners[r.listener.name] = { active: r.listener.active, throughput: r.inRate + r.outRate };
      state.history.push(point);
      if (state.history.length > HISTORY_POINTS) state.history.shift();
    }
    renderSummary(rows, stats.upstreams);
    renderCluster(stats.cluster);
    drawChart(el<SVGSVGElement>('chart-active'), el('legend-active'), 'active', count);
    drawChart(el<SVGSVGElement>('chart-throughput'), el('legend-throughput'), 'throughput', (v) => bytes(v) + '/s');
    el('window-hint').textContent = 'last ' + Math.round((HISTORY_POINTS * REFRESH_MS) / 1000) + ' s';
    renderListeners(rows, new Map(control.map((l) => [l.name, l])));
    renderUpstreams(stats.upstreams);
    renderRefusals(stats.listeners);
    renderConnections(connections, stats.run_time_control === true);
  }

  function total(rows: readonly ListenerRow[], pick: (row: ListenerRow) => number): number {
    let t = 0;
    for (const r of rows) t += pick(r);
    return t;
  }

  function renderSummary(rows: readonly ListenerRow[], upstreams: readonly UpstreamStats[]): void {
    const active = total(rows, (r) => r.listener.active);
    setValue(summaryValue('active'), active, count(active));
    el('summary-active-sub').textContent =
      rows.length + (rows.length === 1 ? ' listener' : ' listeners') + ', ' + count(total(rows, (r) => r.listener.queue_length)) + ' queued';
    const newRate = total(rows, (r) => r.newRate);
    setValue(summaryValue('connection-rate'), newRate, rate(newRate) + '/s');
    el('summary-connection-rate-sub').textContent = count(total(rows, (r) => r.listener.connections_total)) + ' in total';
    const inRate = total(rows, (r) => r.inRate);
    setValue(summaryValue('in-rate'), inRate, bytes(inRate) + '/s');
    el('summary-in-rate-sub').textContent = bytes(total(rows, (r) => r.listener.bytes_from_client)) + ' in total';
    const outRate = total(rows, (r) => r.outRate);
    setValue(summaryValue('out-rate'), outRate, bytes(outRate) + '/s');
    el('summary-out-rate-sub').textContent = bytes(total(rows, (r) => r.listener.bytes_to_client)) + ' in total';
    const refused = total(rows, (r) => r.refused);
    setValue(summaryValue('refusals'), refused, count(refused));
    el('summary-refusals-sub').textContent = rate(total(rows, (r) => r.refusedRate)) + '/s now';
    const up = upstreams.filter((u) => u.state !== 'down').length;
    setValue(summaryValue('upstreams'), up, up + ' / ' + upstreams.length);
    const draining = upstreams.filter((u) => u.state === 'draining').length;
    el('summary-upstreams-sub').textContent = draining + ' draining, ' + (upstreams.length - up) + ' down';
  }

  // limits_scope: cluster: the Redis link's state and, per listener, connections here / in the whole cluster.
  function renderCluster(cluster: StatsPayload['cluster']): void {
    el('cluster-card').hidden = !cluster;
    if (!cluster) return;
    const value = summaryValue('cluster');
    setValue(value, cluster.state, cluster.state);
    value.className = 'value ' + (cluster.state === 'up' ? 'ok' : 'bad');
    const counts = cluster.listeners.map((l) => l.name + ' ' + count(l.local) + ' here / ' + count(l.cluster) + ' all');
    el('summary-cluster-sub').textContent = 'on_error ' + cluster.on_error + (counts.length ? ' · ' + counts.join(' · ') : '');
    el('summary-cluster-sub').title = cluster.redis;
  }

  // Run-time control: listeners created at run time are marked, live filters named.
  function renderListeners(rows: readonly ListenerRow[], control: ReadonlyMap<string, ListenerInfo>): void {
    syncRows(
      el<HTMLTableSectionElement>('listeners'),
      rows,
      (r) => r.listener.name,
      (tr, r) => {
        const l = r.listener;
        tr.dataset.listener = l.name;
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = colorOf(l.name);
        const name = cell('');
        name.append(swatch, l.name);
        const info = control.get(l.name);
        const cells = [
          name,
          cell(count(l.active), 'num'),
          cell(count(l.connections_total), 'num'),
          cell(rate(r.newRate), 'num'),
          cell(bytes(r.inRate) + '/s', 'num'),
          cell(bytes(r.outRate) + '/s', 'num'),
          cell(count(l.queue_length), 'num'),
          cell(count(r.refused), 'num'),
          cell((info ? info.live_filters : []).map((f) => String(f.name) + ' (' + String(f.type) + ')').join(', ')),
        ];
        if (info?.runtime) name.append(' (run time)');
        const fields = ['name', 'active', 'total', 'new_rate', 'in_rate', 'out_rate', 'queued', 'refused', 'live_filters'];
        cells.forEach((c, i) => {
          c.dataset.field = fields[i];
        });
        cells[1].dataset.value = String(l.active);
        cells[2].dataset.value = String(l.connections_total);
        tr.replaceChildren(...cells);
      },
      'No listeners',
      9,
    );
  }

  function renderUpstreams(upstreams: readonly UpstreamStats[]): void {
    syncRows(
      el<HTMLTableSectionElement>('upstreams'),
      upstreams,
      (u) => u.listener + ' ' + u.address,
      (tr, u) => {
        tr.dataset.upstream = u.listener + ' ' + u.address;
        const badge = document.createElement('span');
        badge.className = 'badge ' + u.state;
        badge.textContent = u.state;
        const stateCell = cell('');
        stateCell.append(badge);
        const actionCell = cell('', 'num');
        const draining = u.state === 'draining';
        actionCell.append(button(draining ? 'Enable' : 'Drain', draining ? 'enable' : 'drain', { listener: u.listener, address: u.address }));
        tr.replaceChildren(
          cell(u.listener),
          cell(u.address, 'mono'),
          stateCell,
          cell(count(u.active), 'num'),
          cell(count(u.connections_total), 'num'),
          cell(count(u.connect_failures), 'num'),
          actionCell,
        );
      },
      'No upstreams',
      7,
    );
  }

  function renderRefusals(listeners: readonly ListenerStats[]): void {
    const byReason: Record<string, number> = {};
    for (const l of listeners) for (const reason in l.rejections) byReason[reason] = (byReason[reason] || 0) + l.rejections[reason];
    const reasons = Object.keys(byReason);
    const max = Math.max(1, ...reasons.map((r) => byReason[r]));
    const container = el('refusals');
    container.replaceChildren(
      ...reasons.map((reason) => {
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
      }),
    );
    el('refusals-hint').textContent = count(sum(byReason)) + ' in total';
  }

  // On-demand capture: "Capture" starts a pcap of the connection, "Save pcap" stops it and downloads it.
  function renderConnections(connections: readonly ConnectionInfo[], canCapture: boolean): void {
    syncRows(
      el<HTMLTableSectionElement>('connections'),
      connections,
      (c) => c.id,
      (tr, c) => {
        tr.dataset.connectionId = c.id;
        const actionCell = cell('', 'num');
        if (canCapture) {
          actionCell.append(state.capturing.has(c.id) ? button('Save pcap', 'save-capture', { id: c.id }) : button('Capture', 'capture', { id: c.id }), ' ');
        }
        actionCell.append(button('Close', 'close', { id: c.id }, true));
        tr.replaceChildren(
          cell(c.id, 'mono'),
          cell(c.listener),
          cell(c.client, 'mono'),
          cell(c.upstream ?? '–', 'mono'),
          cell(duration(c.age_ms), 'num'),
          cell(bytes(c.bytes_from_client), 'num'),
          cell(bytes(c.bytes_to_client), 'num'),
          cell(bytes(c.bytes_from_client + c.bytes_to_client), 'num'),
          actionCell,
        );
      },
      'No open connections',
      9,
    );
  }

  // ---- run-time upstream management ----
  function upstreamsPath(listener: string): string {
    return '/api/listeners/' + encodeURIComponent(listener) + '/upstreams';
  }

  function syncListenerChoice(listeners: readonly ListenerStats[]): string {
    const select = el<HTMLSelectElement>('manage-listener');
    const names = listeners.map((l) => l.name);
    if (
      Array.from(select.options)
        .map((o) => o.value)
        .join('\n') !== names.join('\n')
    ) {
      const chosen = select.value;
      select.replaceChildren(
        ...names.map((name) => {
          const option = document.createElement('option');
          option.value = name;
          option.textContent = name;
          return option;
        }),
      );
      if (names.includes(chosen)) select.value = chosen;
    }
    return select.value;
  }

  // An input the operator is editing keeps what they typed until saved.
  function numberInput(name: string, value: number | null): HTMLInputElement {
    const input = document.createElement('input');
    input.type = 'number';
    input.min = '1';
    input.step = '1';
    input.name = name;
    input.setAttribute('aria-label', name);
    input.value = value === null ? '' : String(value);
    input.addEventListener('input', () => {
      input.dataset.dirty = '1';
    });
    return input;
  }
  function refreshInput(input: HTMLInputElement, value: number | null): void {
    if (input.dataset.dirty || document.activeElement === input) return;
    input.value = value === null ? '' : String(value);
  }

  function renderManaged(listener: string, upstreams: readonly UpstreamView[]): void {
    syncRows(
      el<HTMLTableSectionElement>('manage-upstreams'),
      upstreams,
      (u) => u.address,
      (tr, u) => {
        tr.dataset.managed = u.address;
        tr.dataset.listener = listener;
        if (!tr.querySelector('input')) {
          const weight = cell('', 'num');
          weight.append(numberInput('weight', u.weight));
          const max = cell('', 'num');
          max.append(numberInput('max_connections', u.max_connections));
          const actions = cell('', 'num');
          actions.append(
            button('Save', 'save-upstream', { listener: listener, address: u.address }),
            ' ',
            button('Remove', 'remove-upstream', { listener: listener, address: u.address }, true),
          );
          tr.replaceChildren(cell(u.address, 'mono'), cell('', 'mono'), cell('', 'num'), weight, max, actions);
        }
        // The row's six cells, made above when the row was new.
        const cells = tr.cells;
        cells[1].textContent = u.endpoints.map((e) => e.address + ' ' + e.state).join(', ') || 'unresolved';
        let active = 0;
        for (const e of u.endpoints) active += e.active;
        setValue(cells[2], active, count(active));
        cells[3].dataset.value = String(u.weight);
        refreshInput(cells[3].firstChild as HTMLInputElement, u.weight);
        refreshInput(cells[4].firstChild as HTMLInputElement, u.max_connections);
      },
      'No upstreams',
      6,
    );
  }

  async function refreshManaged(listeners: readonly ListenerStats[]): Promise<void> {
    const listener = syncListenerChoice(listeners);
    if (!listener) return;
    renderManaged(listener, await api<UpstreamView[]>('GET', upstreamsPath(listener)));
  }

  function positiveOrNull(text: string): number | null {
    return text.trim() === '' ? null : Number(text);
  }

  async function saveUpstream(d: DOMStringMap): Promise<void> {
    const address = d.address ?? '';
    const row = Array.from(el<HTMLTableSectionElement>('manage-upstreams').rows).find((tr) => tr.dataset.managed === address);
    const weight = row?.querySelector<HTMLInputElement>('input[name=weight]');
    const max = row?.querySelector<HTMLInputElement>('input[name=max_connections]');
    if (!weight || !max) throw new Error('no upstream ' + address + ' on the page');
    const body: { max_connections: number | null; weight?: number } = { max_connections: positiveOrNull(max.value) };
    if (weight.value.trim() !== '') body.weight = Number(weight.value);
    await api('PATCH', upstreamsPath(d.listener ?? '') + '/' + encodeURIComponent(address), body);
    delete weight.dataset.dirty;
    delete max.dataset.dirty;
    toast('saved ' + address);
  }

  // ---- status, polling, actions ----
  function setStatus(kind: 'live' | 'offline', text: string): void {
    const pill = el('status');
    pill.className = 'pill ' + kind;
    pill.textContent = kind;
    el('updated').textContent = text;
  }
  function toast(text: string): void {
    el('toast').textContent = text;
  }

  async function refresh(): Promise<void> {
    clearTimeout(state.timer);
    try {
      const [stats, connections] = await Promise.all([
        api<StatsPayload>('GET', '/api/stats'),
        api<ConnectionInfo[]>('GET', '/api/connections?sort=bytes&limit=10'),
      ]);
      // Run-time control is there with one process only (the stats say so).
      const control = stats.run_time_control ? await api<ListenerInfo[]>('GET', '/api/listeners') : [];
      el('auth').hidden = true;
      render(stats, connections, control);
      await refreshManaged(stats.listeners);
      setStatus('live', 'updated ' + new Date(stats.time).toLocaleTimeString());
    } catch (error) {
      if (error instanceof AuthError) {
        el('auth').hidden = false;
        setStatus('offline', 'token required');
        return; // polling resumes when a token is entered
      }
      setStatus('offline', messageOf(error));
    }
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  async function act(target: HTMLElement): Promise<void> {
    const d = target.dataset;
    const id = d.id ?? '';
    const address = d.address ?? '';
    try {
      const capturePath = '/api/connections/' + encodeURIComponent(id) + '/capture';
      if (d.action === 'close') {
        await api('DELETE', '/api/connections/' + encodeURIComponent(id));
        toast('closed connection ' + id);
      } else if (d.action === 'save-upstream') {
        await saveUpstream(d);
      } else if (d.action === 'remove-upstream') {
        await api('DELETE', upstreamsPath(d.listener ?? '') + '/' + encodeURIComponent(address));
        toast('removed ' + address + ': open connections finish');
      } else if (d.action === 'capture') {
        await api('POST', capturePath);
        state.capturing.add(id);
        toast('capturing connection ' + id);
      } else if (d.action === 'save-capture') {
        state.capturing.delete(id);
        await api('DELETE', capturePath);
        const response = await fetch(capturePath, { headers: authHeaders(), cache: 'no-store' });
        if (!response.ok) throw new Error('capture download: HTTP ' + response.status);
        const link = document.createElement('a');
        link.href = URL.createObjectURL(await response.blob());
        link.download = 'tcpproxy-connection-' + id + '.pcap';
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 10000);
        toast('saved the capture of connection ' + id);
      } else {
        await api('POST', '/api/upstreams/' + encodeURIComponent(d.listener ?? '') + '/' + encodeURIComponent(address) + '/' + d.action);
        toast(d.action + ' ' + address);
      }
    } catch (error) {
      toast(messageOf(error));
    }
    void refresh();
  }

  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest<HTMLElement>('button[data-action]') : null;
    if (target) void act(target);
  });
  el('manage-listener').addEventListener('change', () => {
    el('manage-upstreams').replaceChildren();
    void refresh();
  });
  const addForm = el<HTMLFormElement>('add-upstream');
  addForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void addUpstream();
  });
  async function addUpstream(): Promise<void> {
    const field = (name: string) => (addForm.elements.namedItem(name) as HTMLInputElement).value;
    const body: { address: string; weight?: number; max_connections?: number } = { address: field('address').trim() };
    if (field('weight') !== '') body.weight = Number(field('weight'));
    if (field('max_connections') !== '') body.max_connections = Number(field('max_connections'));
    try {
      await api('POST', upstreamsPath(el<HTMLSelectElement>('manage-listener').value), body);
      toast('added ' + body.address);
      addForm.reset();
    } catch (error) {
      toast(messageOf(error));
    }
    void refresh();
  }
  el('auth').addEventListener('submit', (event) => {
    event.preventDefault();
    state.token = el<HTMLInputElement>('token').value.trim();
    sessionStorage.setItem('tcpproxy-admin-token', state.token);
    void refresh();
  });
  void refresh();
})();
