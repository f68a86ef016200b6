/**
 * The inspector page's script: the list (live, filtered, paused), one request in full, the replay
 * form. Plain DOM, textContent everywhere, one EventSource for live updates; served as
 * `/app.js` under the CSP of assets.ts.
 */
export const APP_JS = `'use strict';
(() => {
  const $ = (s) => document.querySelector(s);
  const tbody = $('#list tbody');
  const detail = $('#detail');
  const rows = new Map();
  const held = new Map();
  let max = 500;
  let paused = false;
  let selected;

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const bytes = (n) => (n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB');
  const msText = (v) => (v === undefined || v === null ? '–' : v + ' ms');
  const statusText = (r) => (r.status === undefined || r.status === null ? (r.state === 'pending' ? '…' : '–') : String(r.status)) + (r.error ? ' ' + r.error : '');
  const statusClass = (r) => (r.error && r.status >= 500 ? 'err' : r.status ? 's' + String(r.status)[0] : 'pending');
  const post = (path, body) => fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body || {}) });

  function bar(r) {
    const b = el('div', undefined, 'bar');
    const total = Math.max((r.waitedMs || 0) + (r.totalMs || r.localMs || 0), 0.1);
    const part = (ms, cls, title) => {
      if (!ms || ms <= 0) return;
      const s = el('span', undefined, cls);
      s.style.width = Math.min(100, (ms / total) * 100) + '%';
      s.title = title + ': ' + ms.toFixed(1) + ' ms';
      b.append(s);
    };
    part(r.waitedMs, 'b-wait', 'waiting in the cluster');
    part(r.headersMs, 'b-head', 'local app, to its headers');
    if (r.localMs !== undefined && r.headersMs !== undefined) part(r.localMs - r.headersMs, 'b-body', 'local app, its body');
    if (r.via === 'upload' && r.totalMs !== undefined && r.localMs !== undefined) part(r.totalMs - r.localMs, 'b-back', 'on the way back');
    return b;
  }

  function matches(r) {
    const kind = $('#kind').value;
    if (kind === 'error' && !r.error) return false;
    if (kind === 'messages' && r.messageCount === undefined) return false;
    if (/^[2-5]$/.test(kind) && String(r.status || '')[0] !== kind) return false;
    const q = $('#search').value.trim().toLowerCase();
    if (!q) return true;
    return [r.method, r.url, r.status, r.error, r.requestId, r.traceparent, r.contentType].some((v) => v !== undefined && v !== null && String(v).toLowerCase().includes(q));
  }

  function cells(tr, r) {
    const timing = el('td');
    timing.append(el('span', msText(r.localMs) + (r.via === 'upload' && r.totalMs !== undefined && r.localMs !== undefined ? ' · ' + msText(Math.round((r.totalMs - r.localMs) * 10) / 10) : '')), bar(r));
    tr.replaceChildren(el('td', new Date(r.time).toLocaleTimeString()), el('td', r.method), el('td', r.url, 'path'), el('td', statusText(r), statusClass(r)), el('td', bytes(r.bytesOut), 'num'), el('td', msText(r.totalMs), 'num'), timing);
    tr.hidden = !matches(r);
  }

  function put(r) {
    let tr = rows.get(r.seq);
    if (!tr) {
      if (paused) {
        held.set(r.seq, r);
        if (held.size > max) held.delete(held.keys().next().value);
        return;
      }
      tr = el('tr');
      tr.dataset.seq = String(r.seq);
      tr.addEventListener('click', () => open(r.seq));
      rows.set(r.seq, tr);
      tbody.prepend(tr);
      while (rows.size > max) {
        const [oldest, row] = rows.entries().next().value;
        row.remove();
        rows.delete(oldest);
      }
    }
    tr.summary = r;
    cells(tr, r);
    if (r.seq === selected && !paused) refreshDetail();
  }

  function clearAll() {
    rows.clear();
    held.clear();
    tbody.replaceChildren();
  }

  function showHeld() {
    $('#held').textContent = paused ? held.size + ' new while paused' : '';
  }

  /** The page keeps the rows the inspector keeps: the oldest go when it let them go. */
  function trim(kept) {
    while (rows.size > kept) {
      const [oldest, row] = rows.entries().next().value;
      row.remove();
      rows.delete(oldest);
    }
  }

  function showTop(data) {
    if (data.stats) trim(data.stats.kept);
    if (data.tunnel) $('#tunnel').textContent = (data.tunnel.url || 'not registered yet') + ' → ' + data.tunnel.target + ' · ' + data.tunnel.status;
    if (data.stats) {
      max = data.stats.maxRecords;
      const s = data.stats;
      const st = $('#stats');
      st.textContent = s.kept + ' kept of ' + s.seen + ' seen · ' + bytes(s.bytes) + ' of ' + bytes(s.maxBytes);
      st.dataset.kept = String(s.kept);
      st.dataset.bytes = String(s.bytes);
      st.dataset.maxBytes = String(s.maxBytes);
      st.dataset.maxRecords = String(s.maxRecords);
    }
    $('#empty').hidden = rows.size > 0;
  }

  function headersTable(pairs) {
    const t = el('table', undefined, 'headers');
    for (const [n, v] of pairs) {
      const tr = el('tr');
      tr.append(el('td', n), el('td', v));
      t.append(tr);
    }
    return t;
  }

  function bodyBlock(b) {
    const box = el('div', undefined, 'body');
    if (b.kind === 'none') return box.append(el('p', b.size ? bytes(b.size) + ' (not kept)' : 'no body', 'note')), box;
    box.append(el('p', bytes(b.size) + (b.cut ? ', cut: the first ' + bytes(b.kept) + ' kept' : '') + (b.kind === 'binary' ? ', binary: its start in hex' : b.kind === 'json' ? ', JSON' : '') + (b.note ? ' · ' + b.note : ''), 'note'));
    if (b.text !== undefined) box.append(el('pre', b.text, 'body-' + b.kind));
    return box;
  }

  function messagesBlock(m) {
    const box = el('div', undefined, 'messages');
    box.append(el('h3', m.kind === 'websocket' ? 'WebSocket messages' : 'Events'));
    box.append(el('p', m.count + ' messages, ' + bytes(m.bytes) + (m.control ? ', ' + m.control + (m.kind === 'websocket' ? ' pings and pongs' : ' comments') : '') + (m.last.length ? '; the last ' + m.last.length + ':' : ''), 'note'));
    const t = el('table');
    for (const x of m.last) {
      const tr = el('tr');
      tr.append(el('td', x.from === 'app' ? 'app →' : '← browser'), el('td', '+' + Math.round(x.at) + ' ms', 'num'), el('td', x.kind + (x.compressed ? ' (compressed)' : '')), el('td', bytes(x.size), 'num'), el('td', x.preview, 'path'));
      t.append(tr);
    }
    box.append(t);
    return box;
  }

  function answerBlock(title, a) {
    const box = el('div');
    box.append(el('h3', title));
    box.append(el('p', 'Status ' + (a.status === undefined || a.status === null ? '–' : a.status) + (a.error ? ' · ' + (a.error.code || a.error) + (a.error.message ? ': ' + a.error.message : '') : '') + (a.localMs !== undefined ? ' · ' + msText(a.localMs) : ''), 'status-line'));
    box.append(headersTable(a.responseHeaders || []), bodyBlock(a.responseBody));
    return box;
  }

  function timeline(d) {
    const dl = el('dl');
    const row = (k, v) => dl.append(el('dt', k), el('dd', v));
    row('waiting in the cluster', d.waitedMs === undefined ? '– (the server does not say: an older version)' : msText(d.waitedMs) + ' (for a poll or room in this client\\'s window)');
    row('on the way here', 'not timed on the laptop (its clock is not the server\\'s): the server\\'s log line for requestId ' + (d.requestId || '–') + ' has the whole trip (clientMs: from the hand-over to the answer)');
    row('local app, to its headers', msText(d.headersMs));
    row('local app, its body', d.localMs !== undefined && d.headersMs !== undefined ? msText(Math.round((d.localMs - d.headersMs) * 10) / 10) : '–');
    row('on the way back', d.via === 'upload' ? msText(d.totalMs !== undefined && d.localMs !== undefined ? Math.round((d.totalMs - d.localMs) * 10) / 10 : undefined) + ' (its own upload, confirmed once the browser had the last byte)' : d.via === 'batch' ? 'sent with the other small answers of its turn: not timed further' : d.via === 'poll' ? 'sent in an upload that waits as the next poll: not timed further' : '–');
    row('on the laptop in all', msText(d.totalMs));
    return dl;
  }

  function replayForm(d) {
    const form = el('form', undefined, 'replay');
    const method = el('input');
    method.name = 'method';
    method.value = d.method;
    method.size = 7;
    const url = el('input');
    url.name = 'url';
    url.value = d.url;
    const line = el('div', undefined, 'row');
    line.append(method, url);
    const headers = el('textarea');
    headers.name = 'headers';
    headers.value = d.requestHeaders.map(([n, v]) => n + ': ' + v).join('\\n');
    const body = el('textarea');
    body.name = 'body';
    body.value = d.editableBody === undefined ? '' : d.editableBody;
    if (d.editableBody === undefined && d.requestBody.size > 0) body.placeholder = 'The body is binary or was cut: "Replay as it was" sends it as kept; text here replaces it.';
    const asWas = el('button', 'Replay as it was');
    asWas.type = 'button';
    asWas.className = 'as-was';
    const edited = el('button', 'Replay edited');
    edited.type = 'submit';
    edited.className = 'edited';
    const result = el('p', undefined, 'note replay-result');
    const buttons = el('div', undefined, 'row');
    buttons.append(asWas, edited);
    form.append(line, headers, body, buttons, result);
    const send = async (edit) => {
      result.textContent = 'sending…';
      const res = await post('/api/requests/' + d.seq + '/replay', edit);
      const answer = await res.json();
      result.textContent = res.ok ? 'answered ' + answer.status : answer.message || 'failed (' + res.status + ')';
      if (res.ok) refreshDetail(true);
    };
    asWas.addEventListener('click', () => send({}));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const pairs = headers.value.split('\\n').filter((l) => l.trim()).map((l) => {
        const at = l.indexOf(':');
        return at < 0 ? [l.trim(), ''] : [l.slice(0, at).trim(), l.slice(at + 1).trim()];
      });
      const edit = { method: method.value.trim(), url: url.value.trim(), headers: pairs };
      if (body.value !== '' || d.editableBody !== undefined) edit.body = body.value;
      send(edit);
    });
    return form;
  }

  function renderDetail(d) {
    // Edits in the replay form of the same request survive a refresh (a replay's answer, live updates).
    const previous = detail.querySelector('form.replay');
    const edits = previous && Number(detail.dataset.seq) === d.seq ? [...previous.elements].filter((e) => e.name).map((e) => [e.name, e.value]) : [];
    detail.dataset.seq = String(d.seq);
    detail.hidden = false;
    const facts = el('dl');
    const fact = (k, v) => v !== undefined && v !== null && facts.append(el('dt', k), el('dd', v, 'fact-' + k.replace(/\\W+/g, '-')));
    fact('request id', d.requestId);
    fact('traceparent', d.traceparent);
    fact('arrived', new Date(d.time).toLocaleString());
    fact('state', d.state);
    fact('request body', bytes(d.bytesIn));
    fact('answer', bytes(d.bytesOut));
    if (d.errorMessage) fact('error', d.errorMessage);
    if (d.evicted) fact('kept', 'no longer: pushed out by newer requests');
    const original = { status: d.status, error: d.error ? { code: d.error, message: d.errorMessage } : undefined, responseHeaders: d.responseHeaders, responseBody: d.responseBody, localMs: d.localMs };
    const side = el('div', undefined, 'side');
    side.append(answerBlock('Answer', original));
    const last = d.replays[d.replays.length - 1];
    if (last) side.append(answerBlock('Replay at ' + new Date(last.time).toLocaleTimeString() + ' (' + last.method + ' ' + last.url + ')', last));
    detail.replaceChildren(el('h2', d.method + ' ' + d.url + ' → ' + statusText(d)), facts, el('h3', 'Where its time went'), timeline(d),
      el('h3', 'Request headers'), headersTable(d.requestHeaders), el('h3', 'Request body'), bodyBlock(d.requestBody), side);
    if (d.messages) detail.append(messagesBlock(d.messages));
    detail.append(el('h3', 'Replay to the local app'), d.upgrade ? el('p', 'An upgrade (a WebSocket) cannot be replayed.', 'note') : replayForm(d));
    const form = detail.querySelector('form.replay');
    for (const [name, value] of edits) if (form && form.elements[name]) form.elements[name].value = value;
  }

  async function refreshDetail(force) {
    if (selected === undefined) return;
    const res = await fetch('/api/requests/' + selected);
    if (res.ok) {
      // A replay form being edited is left alone by live updates; the rest follows the request.
      const editing = detail.contains(document.activeElement) && document.activeElement.form;
      if (force || !editing) renderDetail(await res.json());
    } else {
      detail.replaceChildren(el('p', 'No longer kept: newer requests pushed it out, or the list was cleared.', 'note'));
    }
  }

  function open(seq) {
    selected = seq;
    for (const [s, tr] of rows) tr.classList.toggle('selected', s === seq);
    refreshDetail();
  }

  $('#search').addEventListener('input', () => rows.forEach((tr) => (tr.hidden = !matches(tr.summary))));
  $('#kind').addEventListener('change', () => rows.forEach((tr) => (tr.hidden = !matches(tr.summary))));
  $('#pause').addEventListener('click', () => {
    paused = !paused;
    $('#pause').textContent = paused ? 'Resume' : 'Pause';
    $('#status').textContent = paused ? 'paused' : 'live';
    if (!paused) {
      const waiting = [...held.values()];
      held.clear();
      waiting.forEach(put);
    }
    showHeld();
  });
  $('#clear').addEventListener('click', () => post('/api/clear'));

  const events = new EventSource('/events');
  events.addEventListener('snapshot', (e) => {
    const data = JSON.parse(e.data);
    clearAll();
    showTop(data);
    data.requests.forEach(put);
    showTop(data);
    showHeld();
    $('#status').textContent = paused ? 'paused' : 'live';
  });
  events.addEventListener('changes', (e) => {
    const data = JSON.parse(e.data);
    if (data.cleared) clearAll();
    data.requests.forEach(put);
    showTop(data);
    showHeld();
  });
  events.addEventListener('error', () => ($('#status').textContent = 'reconnecting… (devtunnel stopped? open the address it prints)'));
})();
`;
