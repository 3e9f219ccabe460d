/** The dashboard's stylesheet: neutral colours that follow the system's light or dark preference. */
export const DASHBOARD_STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f4f6f8; --panel: #ffffff; --text: #1b2430; --muted: #5d6978; --border: #e1e5ea;
  --grid: #e9ecf0; --accent: #2f6fde; --ok: #1e9b53; --warn: #b97f00; --bad: #d23f3f;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1217; --panel: #161b22; --text: #e3e8ee; --muted: #8b97a7; --border: #262e38;
    --grid: #212832; --accent: #5b9bff; --ok: #3ecf7a; --warn: #f0b429; --bad: #ff6b6b;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
header { position: sticky; top: 0; z-index: 2; display: flex; align-items: center; gap: 12px;
  padding: 12px 24px; background: var(--panel); border-bottom: 1px solid var(--border); }
header h1 { margin: 0; font-size: 18px; font-weight: 650; letter-spacing: .2px; }
header .dot { width: 12px; height: 12px; border-radius: 3px; background: var(--accent); }
header .subtitle { color: var(--muted); font-size: 13px; }
.status { margin-left: auto; display: flex; align-items: center; gap: 10px; color: var(--muted); font-size: 13px; }
.pill { padding: 1px 10px; border: 1px solid currentColor; border-radius: 999px; font-size: 12px; font-weight: 600; }
.pill.live { color: var(--ok); } .pill.offline { color: var(--bad); } .pill.waiting { color: var(--muted); }
main { max-width: 1440px; margin: 0 auto; padding: 18px 24px 40px; display: grid; gap: 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; }
.card, .panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; min-width: 0; }
.card { padding: 12px 16px; }
.card .label, .panel h2 { color: var(--muted); font-size: 12px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; }
.card .value { margin-top: 2px; font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
.card .value.ok { color: var(--ok); }
.card .value.bad { color: var(--bad); }
.row { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; }
.panel { padding: 14px 16px; }
.panel h2 { margin: 0 0 10px; display: flex; justify-content: space-between; gap: 8px; }
.panel h2 .hint { text-transform: none; letter-spacing: 0; font-weight: 400; }
svg.chart { display: block; width: 100%; height: 190px; }
svg.chart .gridline { stroke: var(--grid); stroke-width: 1; }
svg.chart .axis { fill: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
svg.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg.chart .area { stroke: none; opacity: .12; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 6px; color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; vertical-align: -1px; }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { padding: 6px 8px; border-bottom: 1px solid var(--border); color: var(--muted); font-size: 12px; font-weight: 600; text-align: left; }
td { padding: 6px 8px; border-bottom: 1px solid var(--border); white-space: nowrap; }
tbody tr:last-child td { border-bottom: none; }
.num { text-align: right; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.empty { padding: 12px 8px; color: var(--muted); }
.badge { display: inline-block; min-width: 70px; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; text-align: center; }
.badge.healthy { color: var(--ok); background: color-mix(in srgb, var(--ok) 14%, transparent); }
.badge.down { color: var(--bad); background: color-mix(in srgb, var(--bad) 14%, transparent); }
.badge.draining { color: var(--warn); background: color-mix(in srgb, var(--warn) 16%, transparent); }
button { padding: 3px 10px; border: 1px solid var(--border); border-radius: 6px; background: transparent;
  color: var(--text); font: inherit; font-size: 12px; cursor: pointer; }
button:hover { border-color: var(--accent); color: var(--accent); }
button.danger:hover { border-color: var(--bad); color: var(--bad); }
.bars { display: grid; gap: 6px; }
.bar-row { display: grid; grid-template-columns: 130px 1fr 64px; align-items: center; gap: 10px; }
.bar { height: 10px; overflow: hidden; border-radius: 5px; background: var(--grid); }
.bar span { display: block; height: 100%; border-radius: 5px; background: var(--bad); }
.bar-row.zero { color: var(--muted); }
#auth { display: flex; align-items: center; gap: 8px; padding: 12px 16px; border: 1px solid var(--warn); border-radius: 10px; background: var(--panel); }
#auth[hidden] { display: none; }
#auth input { flex: 0 1 280px; padding: 4px 8px; border: 1px solid var(--border); border-radius: 6px; background: var(--bg); color: var(--text); font: inherit; }
#toast { min-height: 1em; color: var(--muted); font-size: 12px; }
`;
