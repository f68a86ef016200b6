/**
 * The dashboard's page, script and style, served by the tunnel server itself (no build step, no
 * CDN). The HTML carries no data: the script fetches JSON and renders it with textContent only,
 * so nothing a client sent (names, paths) can ever become markup. Strict CSP: scripts and styles
 * from this server only, no inline code.
 */
import { escapeHtml } from './error-response';

export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const head = (title: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><link rel="stylesheet" href="/dashboard/app.css">`;

export function loginPage(error?: string): string {
  return `${head('devtunnel · sign in')}</head>
<body class="login"><main>
<h1>devtunnel</h1>
<form method="post" action="/dashboard/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<p class="hint">The registration token (DEVTUNNEL_TOKEN) shows the tunnels; the admin token (DEVTUNNEL_ADMIN_TOKEN) can also close them.</p>
</form></main></body></html>
`;
}

export function shellPage(role: 'admin' | 'viewer', csrf: string, canLogout: boolean): string {
  return `${head('devtunnel · tunnels')}
<meta name="devtunnel-role" content="${role}"><meta name="devtunnel-csrf" content="${escapeHtml(csrf)}"><meta name="devtunnel-replay" content="${canLogout ? 'yes' : 'no'}">
<script src="/dashboard/app.js" defer></script></head>
<body><header><h1>devtunnel</h1><span id="status">connecting…</span><span class="role">${role === 'admin' ? 'admin' : 'read-only'}</span>
${canLogout ? '<form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form>' : ''}</header>
<main><section id="routes" hidden><h2>Routes</h2><table><thead><tr>
<th>Route</th><th>Port</th><th>Real app</th><th>Answers</th><th>Tunnels (selected by name)</th><th>Served by tunnels</th><th>By the real app</th><th>Errors</th>
</tr></thead><tbody></tbody></table><h2>Tunnels</h2></section>
<table id="tunnels"><thead><tr>
<th>Name</th><th>Route</th><th>Owner</th><th>Port</th><th>State</th><th>Polls</th><th>Requests</th><th>Errors</th><th>In</th><th>Out</th><th>WebSockets</th><th>Last request</th><th>First seen</th><th>Last seen</th><th></th>
</tr></thead><tbody></tbody></table>
<p id="empty" hidden>No tunnels yet. Start one: <code>devtunnel --server … --port 5173</code></p>
<section id="replay"><h2>Recent requests</h2>
<form id="find"><label for="find-text">Request id, trace id or path</label> <input id="find-text" name="find" size="40" placeholder="all"> <button type="submit">Find</button>
<span class="hint">kept without bodies, cookies or credentials${canLogout ? '; replay one to a tunnel, and the laptop sees it again' : '; sign in with a token to replay'}</span></form>
<table id="captures"><thead><tr><th>Time</th><th>Request id</th><th>Method</th><th>Path</th><th>Served by</th><th>Status</th><th></th></tr></thead><tbody></tbody></table>
<div id="answer" hidden><h2>Answer of the replay</h2><p id="answer-line"></p><pre id="answer-headers"></pre><pre id="answer-body"></pre></div>
</section>
</main></body></html>
`;
}

export const APP_CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1.2rem;background:#234;color:#fff}
header h1{font-size:1.1rem;margin:0}header form{margin-left:auto}
h2{font-size:.95rem;margin:.2rem 0 .5rem}#routes table{margin-bottom:1.2rem}.health-up{color:#187a3c;font-weight:600}.health-down{color:#a11;font-weight:600}.health-unknown{color:#888}
#status{font-size:.85rem;color:#cde}.role{font-size:.8rem;background:#456;padding:.1rem .5rem;border-radius:3px}
main{padding:1rem 1.2rem}table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.35rem .5rem;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{font-size:.8rem;color:#555;background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}
.state-connected{color:#187a3c;font-weight:600}.state-offline{color:#b35c00;font-weight:600}.state-closed,.state-expired{color:#888}
#replay{margin-top:1.5rem}#find{margin:.3rem 0 .6rem}#answer pre{background:#fff;border:1px solid #e4e4e4;padding:.5rem;white-space:pre-wrap;max-height:24rem;overflow:auto}
details summary{cursor:pointer;color:#245}details table{margin:.3rem 0 .6rem;font-size:.8rem}
button.close{color:#a11;border:1px solid #a11;background:#fff;border-radius:3px;cursor:pointer}
.login main{max-width:22rem;margin:4rem auto;background:#fff;padding:1.5rem;border-radius:6px;box-shadow:0 1px 4px #0002}
.login input{width:100%;box-sizing:border-box;margin:.3rem 0 .8rem;padding:.4rem}.error{color:#a11}.hint{color:#666;font-size:.85rem}
`;

/** The page's script: plain DOM, textContent everywhere, one EventSource for live updates. */
export const APP_JS = `'use strict';
(() => {
  const role = document.querySelector('meta[name="devtunnel-role"]').content;
  const csrf = document.querySelector('meta[name="devtunnel-csrf"]').content;
  const body = document.querySelector('#tunnels tbody');
  const status = document.querySelector('#status');
  const open = new Set();

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const bytes = (n) => (n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB');
  const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');

  function recentTable(t) {
    const details = el('details');
    if (open.has(t.port)) details.open = true;
    details.addEventListener('toggle', () => (details.open ? open.add(t.port) : open.delete(t.port)));
    details.append(el('summary', t.recent.length + ' recent request' + (t.recent.length === 1 ? '' : 's')));
    const table = el('table');
    for (const r of [...t.recent].reverse()) {
      const tr = el('tr');
      tr.append(el('td', new Date(r.time).toLocaleTimeString()), el('td', r.method), el('td', r.path), el('td', r.status + (r.code ? ' ' + r.code : '')), el('td', r.durationMs + ' ms', 'num'));
      table.append(tr);
    }
    details.append(table);
    return details;
  }

  async function closeTunnel(t) {
    if (!confirm('Close the tunnel "' + t.name + '" on port ' + t.port + '? Its developer\\'s requests stop until their client registers again.')) return;
    const res = await fetch('/dashboard/api/tunnels/' + encodeURIComponent(t.id) + '/close', { method: 'POST', headers: { 'x-csrf-token': csrf } });
    status.textContent = res.ok ? 'closed ' + t.name : 'could not close ' + t.name + ' (' + res.status + ')';
  }

  function renderRoutes(routes) {
    const section = document.querySelector('#routes');
    section.hidden = !routes || routes.length === 0;
    if (section.hidden) return;
    section.querySelector('tbody').replaceChildren(...routes.map((r) => {
      const tr = el('tr');
      tr.dataset.route = r.name;
      const health = el('td', r.health.state === 'up' ? 'yes' : r.health.state === 'down' ? 'no' : 'not yet known', 'health-' + r.health.state);
      if (r.health.error) health.title = r.health.error;
      const members = r.members.length ? r.members.map((m) => m.name + (m.state === 'connected' ? '' : ' (' + m.state + ')')).join(', ') : 'none: the real app serves everyone';
      tr.append(el('td', r.name, 'name'), el('td', r.port, 'num'), el('td', r.upstream + (r.offline === 'error' ? ' (offline tunnels answer 503)' : '')), health, el('td', members, 'members'), el('td', r.served.tunnel, 'num'), el('td', r.served.upstream, 'num'), el('td', r.served.error, 'num'));
      return tr;
    }));
  }

  function render(data) {
    renderRoutes(data.routes);
    const rows = [];
    for (const t of data.tunnels) {
      const tr = el('tr');
      tr.dataset.port = String(t.port);
      const name = el('td');
      name.append(el('div', t.name, 'name'), recentTable(t));
      tr.append(name, el('td', t.route || '–'), el('td', t.owner), el('td', t.port, 'num'), el('td', t.state, 'state-' + t.state), el('td', t.downstream ? t.pollsWaiting + ' + streams' : t.pollsWaiting, 'num'), el('td', t.requests, 'num requests'), el('td', t.errors, 'num'), el('td', bytes(t.bytesIn), 'num'), el('td', bytes(t.bytesOut), 'num'), el('td', t.upgraded, 'num'), el('td', when(t.lastRequestAt)), el('td', when(t.firstSeen)), el('td', when(t.lastSeen)));
      const action = el('td');
      if (role === 'admin' && t.id) {
        const button = el('button', 'Close', 'close');
        button.type = 'button';
        button.addEventListener('click', () => closeTunnel(t));
        action.append(button);
      }
      tr.append(action);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
    document.querySelector('#empty').hidden = rows.length > 0;
    status.textContent = 'live · ' + new Date(data.time).toLocaleTimeString();
  }

  // Recent requests, and replaying one to a tunnel (docs/replay.md).
  const canReplay = document.querySelector('meta[name="devtunnel-replay"]').content === 'yes';
  let tunnels = [];
  async function findCaptures() {
    const find = document.querySelector('#find-text').value.trim();
    const res = await fetch('/dashboard/api/captures' + (find ? '?find=' + encodeURIComponent(find) : ''));
    if (!res.ok) return void (status.textContent = 'could not list requests (' + res.status + ')');
    const data = await res.json();
    document.querySelector('#captures tbody').replaceChildren(...data.captures.map((c) => {
      const tr = el('tr');
      tr.dataset.id = c.id;
      const action = el('td');
      if (canReplay && !c.bodyLeftOut) {
        const select = el('select');
        select.setAttribute('aria-label', 'tunnel to replay to');
        for (const t of tunnels.filter((t) => t.state === 'connected')) {
          const option = el('option', t.name + ' (' + t.port + ')');
          option.value = String(t.port);
          select.append(option);
        }
        const button = el('button', 'Replay', 'replay');
        button.type = 'button';
        button.disabled = select.options.length === 0;
        button.addEventListener('click', () => replayTo(c, select.value));
        action.append(select, ' ', button);
      } else if (c.bodyLeftOut) action.append(el('span', 'had a body (not kept)', 'hint'));
      tr.append(el('td', new Date(c.time).toLocaleTimeString()), el('td', c.id), el('td', c.method), el('td', c.url), el('td', (c.route ? c.route + ': ' : '') + c.servedBy + (c.replayOf ? ' (replay of ' + c.replayOf + ')' : '')), el('td', c.status, 'num'), action);
      return tr;
    }));
  }
  async function replayTo(c, port) {
    status.textContent = 'replaying ' + c.id + '…';
    const res = await fetch('/dashboard/api/captures/' + encodeURIComponent(c.id) + '/replay', { method: 'POST', headers: { 'x-csrf-token': csrf, 'content-type': 'application/x-www-form-urlencoded' }, body: 'port=' + encodeURIComponent(port) });
    const data = await res.json().catch(() => ({}));
    const box = document.querySelector('#answer');
    box.hidden = false;
    if (!res.ok) {
      document.querySelector('#answer-line').textContent = 'Not replayed: ' + ((data.error && data.error.message) || res.status);
      document.querySelector('#answer-headers').textContent = '';
      document.querySelector('#answer-body').textContent = '';
      return;
    }
    const a = data.answer;
    document.querySelector('#answer-line').textContent = c.method + ' ' + c.url + ' to ' + data.tunnel + ' (' + data.port + '): ' + a.status + ', ' + bytes(a.bytes) + ', ' + a.ms + ' ms' + (a.cut ? ' (body cut at 64 KiB)' : '');
    document.querySelector('#answer-headers').textContent = a.headers.map((h) => h[0] + ': ' + h[1]).join('\\n');
    document.querySelector('#answer-body').textContent = a.body;
    status.textContent = 'replayed ' + c.id;
    findCaptures();
  }
  document.querySelector('#find').addEventListener('submit', (e) => {
    e.preventDefault();
    findCaptures();
  });

  const events = new EventSource('/dashboard/events');
  events.addEventListener('message', (e) => {
    const data = JSON.parse(e.data);
    const first = tunnels.length === 0 && data.tunnels.length > 0;
    tunnels = data.tunnels;
    render(data);
    if (first) findCaptures();
  });
  findCaptures();
  events.addEventListener('error', () => (status.textContent = 'reconnecting…'));
})();
`;
