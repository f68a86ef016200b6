/**
 * The inspector's page and style (its script is page-script.ts), served by the inspector itself:
 * no build step, no CDN. The HTML carries no data: the script reads JSON and an event stream and
 * renders with textContent only, so nothing a browser or the local app sent (paths, headers,
 * bodies) can ever become markup. Strict CSP: script and style from this origin only, no inline
 * code.
 */

export const INSPECTOR_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const head = (title: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><link rel="stylesheet" href="/app.css">`;

/** Opened without the key (or with an old one): where to find it. */
export function keyPage(printed: string): string {
  return `${head('devtunnel inspector · key needed')}</head>
<body class="key"><main><h1>devtunnel inspector</h1>
<p>This page shows the requests of your tunnel, cookies and bodies included, so it opens only with the key that devtunnel printed when it started: the whole address, such as <code>${printed}/?key=…</code>, from the <code>devtunnel</code> line, Vite's banner or webpack's log.</p>
<p>devtunnel restarted? Each run has a new key: open the address it printed this time.</p></main></body></html>
`;
}

export function shellPage(): string {
  return `${head('devtunnel inspector')}<script src="/app.js" defer></script></head>
<body><header><h1>devtunnel inspector</h1><span id="tunnel"></span><span id="status">connecting…</span><span id="stats"></span></header>
<nav><input id="search" type="search" placeholder="Filter: path, method, status, request id, trace id" aria-label="Filter">
<select id="kind" aria-label="Show"><option value="">all</option><option value="2">2xx</option><option value="3">3xx</option><option value="4">4xx</option><option value="5">5xx</option><option value="error">tunnel errors</option><option value="messages">event streams, WebSockets</option></select>
<button id="pause" type="button">Pause</button><span id="held"></span><button id="clear" type="button">Clear</button></nav>
<main><section id="list"><table><thead><tr><th>Time</th><th>Method</th><th>Path</th><th>Status</th><th class="num">Size</th><th class="num">Laptop</th><th>Local app · way back</th></tr></thead><tbody></tbody></table>
<p id="empty">No requests yet. Open the tunnel's address in a browser: every request that crosses the tunnel shows here as it happens.</p></section>
<section id="detail" hidden></section></main></body></html>
`;
}

export const APP_CSS = `body{font:13px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{display:flex;gap:1rem;align-items:baseline;padding:.5rem 1rem;background:#234;color:#fff;flex-wrap:wrap}
header h1{font-size:1rem;margin:0}#tunnel,#stats{font-size:.85rem;color:#cde}#status{font-size:.8rem;background:#456;padding:.05rem .5rem;border-radius:3px}
nav{display:flex;gap:.5rem;align-items:center;padding:.5rem 1rem;border-bottom:1px solid #ddd;background:#fff}#search{flex:1;max-width:32rem;padding:.25rem}#held{color:#b35c00}
main{display:flex;gap:1rem;padding:.5rem 1rem;align-items:flex-start}#list{flex:1 1 50%;min-width:0;overflow:auto;max-height:calc(100vh - 7rem)}
#detail{flex:1 1 50%;min-width:0;overflow:auto;max-height:calc(100vh - 7rem);background:#fff;padding:.5rem 1rem;border:1px solid #ddd}
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.25rem .4rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{font-size:.75rem;color:#555;background:#f2f2f2;position:sticky;top:0}.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}#list td:first-child{white-space:nowrap}
#list tbody tr{cursor:pointer}#list tbody tr:hover{background:#f4f8fc}#list tbody tr.selected{background:#e3eefa}
td.path{overflow-wrap:anywhere;max-width:28rem}.s2{color:#187a3c}.s3{color:#166a8a}.s4{color:#b35c00}.s5,.err{color:#a11;font-weight:600}.pending{color:#888}
.bar{display:flex;width:10rem;height:.7rem;background:#eee;margin-top:.25rem}.bar span{display:block;height:100%}.b-head{background:#4a7bd0}.b-body{background:#8fb0e8}.b-back{background:#d09a4a}.b-wait{background:#9a9a9a}
h2{font-size:1rem;margin:.3rem 0 .6rem;overflow-wrap:anywhere}h3{font-size:.85rem;margin:1rem 0 .3rem;color:#345}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}dt{color:#666}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f6f6;padding:.4rem;margin:.2rem 0;white-space:pre-wrap;word-break:break-all;max-height:24rem;overflow:auto;font-size:12px}
.note{color:#666;font-size:.8rem}.side{display:grid;grid-template-columns:1fr 1fr;gap:.8rem}.side>div{min-width:0}
.headers td:first-child{color:#555;white-space:nowrap}form.replay{display:grid;gap:.3rem}form.replay textarea{font:12px monospace;min-height:5rem}
form.replay .row{display:flex;gap:.3rem}form.replay .row input:last-child{flex:1}button{cursor:pointer}
.key main{max-width:36rem;margin:4rem auto;background:#fff;padding:1.5rem;border-radius:6px;box-shadow:0 1px 4px #0002}
`;
