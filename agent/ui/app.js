/*
 * agent/ui/app.js - the flightrec console (docs/console.md). Plain
 * JavaScript, no framework, no build step, embedded in the agent's binary.
 * It reads only the agent's query API (docs/api.md).
 *
 * Safety: every string that came from a producer is put on screen as a
 * text node (h() below never parses HTML), control characters and bidi
 * overrides are shown as visible escapes (vis()), and links are built from
 * "#/..." plus an encoded id, so nothing a producer sent can run or steer.
 * The page runs under a Content-Security-Policy without inline script or
 * eval. The query token lives in this tab's sessionStorage only.
 */
'use strict';

/* ---------- small helpers ---------- */

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

/* Control characters, DEL, C1 and bidi controls shown as visible escapes (keepNl: not \n). */
function vis(s, keepNl) {
  if (s === null || s === undefined) return '';
  return String(s).replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => (keepNl && c === '\n' ? c : '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')));
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}
function fmtDur(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return ms + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
  return (ms / 60000).toFixed(1) + ' min';
}
function fmtNum(n) { return n === null || n === undefined ? '-' : Number(n).toLocaleString('en-US'); }
function fmtBytes(n) {
  if (!Number.isFinite(n)) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

function setStatus(msg, bad) {
  const s = document.getElementById('status');
  s.textContent = msg || '';
  s.classList.toggle('bad', !!bad);
}

/* An id, full length, with a copy button; link (optional) is a "#/..." route. */
function idCell(id, link) {
  if (id === null || id === undefined) return h('span', { class: 'muted' }, '-');
  const text = vis(id);
  const main = link ? h('a', { href: link, class: 'id' }, text) : h('span', { class: 'id' }, text);
  const copy = h('button', {
    class: 'copy', type: 'button', title: 'Copy this id', 'aria-label': 'Copy id ' + text,
    onclick: (ev) => {
      ev.stopPropagation();
      copyText(String(id)).then(() => setStatus('copied ' + text));
    },
  }, 'copy');
  return h('span', { class: 'idcell' }, main, copy);
}

async function copyText(t) {
  try { await navigator.clipboard.writeText(t); return; } catch (e) { /* fall back */ }
  const ta = h('textarea', {}, t);
  document.body.append(ta);
  ta.select();
  document.execCommand('copy');
  ta.remove();
}

/* Saves data (a string or a Blob) as a file named name. */
function download(name, data, type) {
  const url = URL.createObjectURL(data instanceof Blob ? data : new Blob([data], { type }));
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) u.set(k, v);
  return u.toString();
}

/* ---------- the API, with the query token ---------- */

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

let tokenAsk = null;
function askToken() {
  if (tokenAsk) return tokenAsk;
  tokenAsk = new Promise((resolve) => {
    const d = document.getElementById('token-dialog');
    const f = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    input.value = '';
    const done = (ev) => {
      ev.preventDefault();
      sessionStorage.setItem('flightrec.token', input.value.trim());
      f.removeEventListener('submit', done);
      d.close();
      tokenAsk = null;
      resolve();
    };
    f.addEventListener('submit', done);
    d.showModal();
    input.focus();
  });
  return tokenAsk;
}

async function api(path, opts) {
  const headers = {};
  const t = sessionStorage.getItem('flightrec.token');
  if (t) headers.Authorization = 'Bearer ' + t;
  const r = await fetch(path, Object.assign({ headers, cache: 'no-store' }, opts || {}));
  if (r.status === 401) {
    await askToken();
    return api(path, opts);
  }
  if (opts && opts.raw) return r;
  let body;
  try { body = await r.json(); } catch (e) { body = { error: 'the answer was not JSON (HTTP ' + r.status + ')' }; }
  if (!r.ok) throw new ApiError(r.status, body.error || ('HTTP ' + r.status));
  return body;
}

async function plain(path) {
  const r = await fetch(path, { cache: 'no-store' });
  return { status: r.status, text: await r.text() };
}

function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, 'Could not load: ', e.message || String(e));
}

/* ---------- router ---------- */

let cleanup = null;
const views = {};

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const hash = location.hash.replace(/^#\/?/, '');
  const qi = hash.indexOf('?');
  const path = (qi < 0 ? hash : hash.slice(0, qi)).split('/');
  const params = new URLSearchParams(qi < 0 ? '' : hash.slice(qi + 1));
  const name = path[0] || 'conversations';
  const view = views[name] || views.conversations;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  setStatus('');
  const arg = path.slice(1).map(decodeURIComponent).join('/');
  cleanup = view(main, params, arg) || null;
}

function go(hash) { location.hash = hash; }

/* A timer that stops with the view and can be paused. */
function poller(fn, ms) {
  let stopped = false, timer = null, paused = false;
  const tick = async () => {
    if (stopped) return;
    if (!paused && !document.hidden) {
      try { await fn(); } catch (e) { setStatus('refresh failed: ' + e.message, true); }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return {
    stop() { stopped = true; clearTimeout(timer); },
    pause(p) { paused = p; },
    get paused() { return paused; },
  };
}

/* ---------- conversations ---------- */

const STATUSES = ['', 'active', 'idle', 'closed', 'evicted', 'error'];
const CLASSES = ['', 'validation', 'provider', 'tool', 'projection', 'storage', 'transport', 'runtime'];
const RANGES = [['', 'any time'], ['15m', 'last 15 min'], ['1h', 'last hour'], ['24h', 'last 24 h'], ['7d', 'last 7 days']];

function field(label, control) {
  const id = 'f-' + label.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  control.id = id;
  return h('span', { class: 'field' }, h('label', { for: id }, label), control);
}
function select(name, options, value) {
  return h('select', { name }, options.map((o) => {
    const [v, t] = Array.isArray(o) ? o : [o, o || 'any'];
    return h('option', { value: v, selected: v === value }, t);
  }));
}

views.conversations = (main, params) => {
  const f = Object.fromEntries(params.entries());
  const form = h('form', { class: 'filters', 'aria-label': 'Filter conversations' },
    field('Conversation id', h('input', { name: 'id', type: 'search', placeholder: 'open by id', value: f.id || '' })),
    field('Has errors', h('input', { name: 'has_errors', type: 'checkbox', checked: f.has_errors === 'true' })),
    field('Status', select('status', STATUSES, f.status || '')),
    field('Error class', select('error_class', CLASSES, f.error_class || '')),
    field('Error code', h('input', { name: 'error_code', value: f.error_code || '', size: 18, placeholder: 'tool.timeout' })),
    field('Provider', h('input', { name: 'provider', value: f.provider || '', size: 10 })),
    field('Model', h('input', { name: 'model', value: f.model || '', size: 12 })),
    field('Tool', h('input', { name: 'tool', value: f.tool || '', size: 10 })),
    field('Active since', RANGES.some((r) => r[0] === (f.since || '')) ? select('since', RANGES, f.since || '')
      : h('input', { name: 'since', value: f.since, size: 14 })),
    field('Active before', h('input', { name: 'until', value: f.until || '', size: 14, placeholder: '2026-02-17T19:44Z, 2h' })),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const id = (fd.get('id') || '').trim();
    if (id) { go('#/conv/' + encodeURIComponent(id)); return; }
    go('#/conversations?' + qs({
      has_errors: fd.get('has_errors') ? 'true' : '', status: fd.get('status'),
      error_class: fd.get('error_class'), error_code: fd.get('error_code').trim(),
      provider: fd.get('provider').trim(), model: fd.get('model').trim(), tool: fd.get('tool').trim(),
      since: fd.get('since'), until: fd.get('until').trim(),
    }));
  });
  const summary = h('p', { class: 'summary', role: 'status', 'aria-live': 'polite' }, 'Loading\u2026');
  const table = h('table', { class: 'grid', 'aria-label': 'Conversations' });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Load the next 100');
  const live = h('button', { type: 'button', 'aria-pressed': 'false', class: 'toggle' }, 'Pause updates');
  const exp = h('button', {
    type: 'button', onclick: () => download('conversations.jsonl', rows.map((c) => JSON.stringify(c)).join('\n') + '\n', 'application/x-ndjson'),
  }, 'Export JSON Lines');
  main.append(h('h1', {}, 'Conversations'), form, h('div', { class: 'bar' }, summary, live, exp), table, more);

  const filters = {};
  for (const k of ['has_errors', 'status', 'error_class', 'error_code', 'provider', 'model', 'tool', 'since', 'until'])
    if (f[k]) filters[k] = f[k];
  let rows = [], next = null, sortKey = null, sortDir = 1, updated = null;

  const cols = [
    ['conv_id', 'Conversation'], ['session_id', 'Session'], ['status', 'Status'],
    ['event_count', 'Events'], ['error_count', 'Errors'], ['last_error', 'Last error'],
    ['last_activity_ms', 'Last activity (UTC)'], ['created_ms', 'Created (UTC)'],
  ];
  function render() {
    const sorted = sortKey ? rows.slice().sort((a, b) => {
      const x = sortKey === 'last_error' ? (a.last_error || {}).error_code || '' : a[sortKey];
      const y = sortKey === 'last_error' ? (b.last_error || {}).error_code || '' : b[sortKey];
      return (x > y ? 1 : x < y ? -1 : 0) * sortDir;
    }) : rows;
    const head = h('tr', {}, cols.map(([k, t]) => h('th', {
      scope: 'col', 'aria-sort': sortKey === k ? (sortDir > 0 ? 'ascending' : 'descending') : 'none',
    }, h('button', {
      type: 'button', class: 'sort', onclick: () => {
        sortDir = sortKey === k ? -sortDir : 1; sortKey = k; render();
      },
    }, t))));
    const body = sorted.map((c) => h('tr', { class: c.error_count > 0 ? 'has-errors' : '' },
      h('td', {}, idCell(c.conv_id, '#/conv/' + encodeURIComponent(c.conv_id))),
      h('td', {}, idCell(c.session_id, c.session_id ? '#/find?q=' + encodeURIComponent(c.session_id) : null)),
      h('td', {}, h('span', { class: 'pill st-' + c.status }, c.status)),
      h('td', { class: 'num' }, fmtNum(c.event_count)),
      h('td', { class: 'num' }, fmtNum(c.error_count)),
      h('td', {}, c.last_error ? h('span', { class: 'code' }, vis(c.last_error.error_code)) : ''),
      h('td', {}, fmtTime(c.last_activity_ms)),
      h('td', {}, fmtTime(c.created_ms))));
    table.replaceChildren(h('thead', {}, head), h('tbody', {}, body));
    summary.textContent = rows.length + ' conversation' + (rows.length === 1 ? '' : 's') + ' shown' +
      (next ? ', more match: load the next page below' : ', every match shown') +
      (sortKey ? ' (sorted on screen; the pages come most recently active first)' : '') +
      (updated ? ' \u00b7 updated ' + updated.toLocaleTimeString() : '');
    more.hidden = !next;
  }
  async function page(cursor) {
    return api('/v1/conversations?' + qs(Object.assign({ limit: 100, cursor }, filters)));
  }
  (async () => {
    try {
      const r = await page(null);
      rows = r.conversations; next = r.next_cursor; updated = new Date();
      render();
    } catch (e) { summary.replaceWith(errorBox(e)); }
  })();
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const r = await page(next);
      rows = rows.concat(r.conversations); next = r.next_cursor;
      render();
    } catch (e) { setStatus(e.message, true); }
    more.disabled = false;
  });
  /* counts refresh while the agent ingests: the loaded rows (up to 1000) fetched again */
  const p = poller(async () => {
    const n = Math.min(1000, Math.max(100, rows.length));
    const r = await api('/v1/conversations?' + qs(Object.assign({ limit: n }, filters)));
    const seen = new Set(r.conversations.map((c) => c.conv_id));
    rows = r.conversations.concat(rows.slice(n).filter((c) => !seen.has(c.conv_id)));
    if (rows.length <= n) next = r.next_cursor;
    updated = new Date();
    render();
  }, 5000);
  live.addEventListener('click', () => {
    p.pause(!p.paused);
    live.setAttribute('aria-pressed', String(p.paused));
    live.textContent = p.paused ? 'Resume updates' : 'Pause updates';
  });
  return () => p.stop();
};

/* ---------- one conversation: the timeline ---------- */

const ROW = 26; /* px per timeline row: rows are positioned, only the visible ones exist */
const KINDS = ['conversation', 'turn', 'provider', 'tool', 'middleware', 'transport', 'sem', 'timeline', 'runtime', 'error'];

function evKey(e) { return (e.flightrec.tier || 'hot') + ':' + e.flightrec.id + ':' + e.ts_ms + ':' + e.kind; }

function evLabel(e) {
  const d = e.data || {};
  const fr = e.flightrec || {};
  switch (e.kind) {
    case 'provider': {
      const op = d.operation ? d.operation + ' ' : '';
      return op + [fr.provider || d.provider, fr.model || d.model].filter(Boolean).join(' / ') +
        (d.finish_reason ? ' \u00b7 ' + d.finish_reason : '');
    }
    case 'tool': return (fr.tool || d.name || 'tool') + (d.status ? ' \u00b7 ' + d.status : '');
    case 'middleware': {
      const g = d.guardrail ? ' \u00b7 guardrail ' + (d.guardrail.action || '') + (d.guardrail.category ? ' ' + d.guardrail.category : '') : '';
      return (d.step || (d.chain || []).join(' > ') || 'step') + (d.decision ? ' \u00b7 ' + d.decision : '') + g;
    }
    case 'transport':
      return d.proto === 'ws' ? 'ws ' + (d.event || '') + (d.reason ? ' \u00b7 ' + d.reason : '')
        : [d.method, d.path, d.status].filter((x) => x !== undefined).join(' ');
    case 'turn': return 'turn ' + (e.turn_id || '') + (d.phase ? ' \u00b7 ' + d.phase : '');
    case 'conversation': return 'status ' + (d.status || fr.status || '');
    case 'runtime': return 'cpu ' + (d.cpu_pct ?? '-') + '% \u00b7 rss ' + fmtBytes(d.rss_bytes);
    case 'sem': return 'sem ' + (d.type || '') + (d.seq !== undefined ? ' #' + d.seq : '');
    case 'timeline': return (d.entity_kind || 'entity') + ' ' + (d.entity_id || '') + (d.version !== undefined ? ' v' + d.version : '');
    case 'error': return (d.where || 'failure') + (d.panic ? ' \u00b7 panic' : '');
    default: return e.kind;
  }
}

/* Start and end of an event's bar (ms), and the provider call's phases. */
function evSpan(e) {
  const d = e.data || {};
  let start = e.ts_ms;
  if (e.kind === 'tool' && Number.isFinite(d.started_ms)) start = d.started_ms;
  let dur = e.flightrec.duration_ms;
  if (e.kind === 'tool' && Number.isFinite(d.started_ms) && Number.isFinite(d.ended_ms)) dur = d.ended_ms - d.started_ms;
  if (!Number.isFinite(dur)) dur = 0;
  const phases = [];
  if (e.kind === 'provider' && d.latency) {
    const q = d.latency.queue_ms || 0, t = d.latency.ttft_ms;
    const total = d.latency.provider_ms ?? dur;
    if (q > 0) phases.push(['queue', start, start + q]);
    if (Number.isFinite(t)) {
      phases.push(['ttft', start + q, start + q + t]);
      phases.push(['stream', start + q + t, start + q + total]);
    } else phases.push(['call', start + q, start + q + total]);
    dur = Math.max(dur, q + total);
  }
  return { start, end: start + dur, phases };
}

/* Redaction markers in stored text: what replaced a value, never the value. */
const MARK = /\[REDACTED:([A-Za-z0-9_.-]+)\]|\[TRUNCATED:(\d+)\]|\[([a-z0-9_]+):hmac:[0-9a-f]{4}:[0-9a-f]+\]|hmac:[0-9a-f]{4}:[0-9a-f]{16}/g;
const TAGS = new Set(['public', 'internal', 'pii', 'secret']);
function markInfo(m) {
  if (m[1]) return TAGS.has(m[1]) ? 'masked: the whole value (tag ' + m[1] + ', action mask)'
    : 'detector ' + m[1] + ' (action scan: the match replaced)';
  if (m[2]) return 'truncated: ' + m[2] + ' bytes before the cut (action truncate)';
  if (m[3]) return 'detector ' + m[3] + ' (scan, keyed hash: equal values give equal tokens)';
  return 'keyed hash of the whole value (action hash, or an id holding a secret)';
}
function markedText(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(MARK)) {
    if (m.index > last) out.push(vis(text.slice(last, m.index), true));
    out.push(h('mark', { class: 'redacted', title: markInfo(m) }, m[0]));
    last = m.index + m[0].length;
  }
  out.push(vis(text.slice(last), true));
  return out;
}
function redactedPlaces(obj, path, out) {
  if (typeof obj === 'string') {
    for (const m of obj.matchAll(MARK)) out.push([path || '(value)', m[0], markInfo(m)]);
  } else if (Array.isArray(obj)) obj.forEach((v, i) => redactedPlaces(v, path + '[' + i + ']', out));
  else if (obj && typeof obj === 'object') {
    for (const [k, v] of Object.entries(obj)) {
      for (const m of k.matchAll(MARK)) out.push([(path ? path + '.' : '') + '(key)', m[0], markInfo(m)]);
      redactedPlaces(v, (path ? path + '.' : '') + k, out);
    }
  }
  return out;
}

/* What was said in an event, as `flightrec show --text` prints it: [who, text] lines. A message's
   content is a string or parts: the GenAI conventions' ({type: text, content}, tool_call with
   name and arguments, tool_call_response with response), OpenAI's and the Vercel AI SDK's
   ({type: text, text}, tool-call with toolName and input, tool-result with output). */
function callText(name, args) {
  return (name || '?') + '(' + (args === undefined || args === null ? '' : typeof args === 'string' ? args : JSON.stringify(args)) + ')';
}
function partLines(role, p, out) {
  if (p === null || typeof p !== 'object') { if (p !== null && p !== undefined) out.push([role, p]); return; }
  const type = typeof p.type === 'string' ? p.type : undefined;
  let text = p.text;
  if (text === undefined && (type === undefined || type === 'text' || type === 'reasoning')) text = p.content;
  const name = p.name || p.toolName;
  const args = p.arguments !== undefined ? p.arguments : p.input;
  if (typeof text === 'string') out.push([type === 'reasoning' ? role + ' (reasoning)' : role, text]);
  else if (name && (type === undefined ? args !== undefined : type.includes('call') && !type.includes('response'))) out.push([role, callText(name, args)]);
  else out.push([role, p.response !== undefined ? p.response : p.output !== undefined ? p.output : p]);
}
function messageLines(m, roleElse, out) {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) { if (m !== null && m !== undefined) out.push([roleElse, m]); return; }
  const role = typeof m.role === 'string' ? m.role : roleElse;
  const content = !Array.isArray(m.content) && Array.isArray(m.parts) ? m.parts : m.content;
  if (Array.isArray(content)) content.forEach((p) => partLines(role, p, out));
  else if (content !== undefined && content !== null) out.push([role, content]);
  if (Array.isArray(m.tool_calls)) {
    for (const tc of m.tool_calls) { if (tc && tc.function) out.push([role, callText(tc.function.name, tc.function.arguments)]); else partLines(role, tc, out); }
  } else if (content === undefined || content === null) out.push([role, m]);
}
function saidLines(e) {
  const d = e.data || {};
  const out = [];
  if (e.kind === 'provider') {
    const rq = d.request || {};
    if (Array.isArray(rq.system)) rq.system.forEach((p) => partLines('system', p, out));
    else if (rq.system !== undefined) out.push(['system', rq.system]);
    if (Array.isArray(rq.messages)) rq.messages.forEach((m) => messageLines(m, '?', out));
    const r = d.response;
    if (r === undefined || r === null) return out;
    if (Array.isArray(r.choices) && r.choices.length) messageLines(r.choices[0].message, 'assistant', out);
    else {
      const n = out.length;
      if (Array.isArray(r.messages)) r.messages.forEach((m) => messageLines(m, 'assistant', out));
      if (r.content !== undefined || Array.isArray(r.tool_calls)) messageLines({ content: r.content, tool_calls: r.tool_calls }, 'assistant', out);
      if (out.length === n) out.push(['response', r]);
    }
  } else if (e.kind === 'tool') {
    if (d.args !== undefined) out.push(['args', d.args]);
    if (d.result !== undefined) out.push(['result', d.result]);
  } else if (e.kind === 'middleware') {
    if (d.prompt_before !== undefined) out.push(['prompt before', d.prompt_before]);
    if (d.prompt_after !== undefined) out.push(['prompt after', d.prompt_after]);
    if (d.rationale !== undefined) out.push(['rationale', d.rationale]);
  }
  return out;
}

views.conv = (main, params, id) => {
  const title = h('h1', {}, 'Conversation ', h('span', { class: 'id' }, vis(id)));
  const meta = h('div', { class: 'meta' }, 'Loading\u2026');
  const controls = h('div', { class: 'bar' });
  const info = h('p', { class: 'summary', role: 'status', 'aria-live': 'polite' });
  const anomalies = h('div', { class: 'anomalies' });
  const axis = h('div', { class: 'tl-axis', 'aria-hidden': 'true' });
  const strip = h('div', { class: 'tl-strip' });
  const spacer = h('div', { class: 'tl-spacer' });
  const scroller = h('div', {
    class: 'tl-scroll', tabindex: '0', role: 'listbox',
    'aria-label': 'Events in time order; arrow keys move, Enter opens the detail',
  }, spacer);
  const detail = h('aside', { class: 'detail', 'aria-label': 'Event detail', tabindex: '-1' },
    h('p', { class: 'muted' }, 'Select an event (click, or arrow keys and Enter) to see its stored envelope.'));
  main.append(title, meta, controls, info, anomalies,
    h('div', { class: 'tl-wrap' }, h('div', { class: 'tl-main' }, axis, scroller, strip), detail));

  let conv = null, all = [], shown = [], t0 = 0, t1 = 1, sel = -1, anom = [], lastSig = '', total = 0;
  let kindFilter = params.get('kind') || '', textFilter = params.get('filter') || '';
  const anomByRow = new Map();
  /* finish_reason -> what it says of the answer, and what happened to an answer that did not
     reach the user whole (the agent's rules: GET /v1/finish-meanings, as `show` and `stats`) */
  const finishMeaning = new Map(), finishCut = new Map();
  const cutShort = (e) => !e.flightrec.error_code && e.kind === 'provider' && e.data &&
    finishCut.get(e.data.finish_reason);

  const kindSel = select('kind', [['', 'every kind']].concat(KINDS.map((k) => [k, k])), kindFilter);
  const filterIn = h('input', { type: 'search', value: textFilter, placeholder: 'turn, span, code, model\u2026' });
  const pauseBtn = h('button', { type: 'button', class: 'toggle', 'aria-pressed': 'false' }, 'Pause live');
  const exportBtn = h('button', { type: 'button' }, 'Export JSON Lines');
  const bundleBtn = h('button', { type: 'button' }, 'Create incident bundle');
  controls.append(field('Kind', kindSel), field('Filter rows', filterIn), pauseBtn, exportBtn, bundleBtn);

  function matches(e) {
    if (kindFilter && e.kind !== kindFilter) return false;
    if (!textFilter) return true;
    const t = textFilter.toLowerCase();
    const fr = e.flightrec;
    return [e.kind, e.turn_id, e.span_id, e.trace_id, e.request_id, e.event_id, e.stream_id,
      e.inference_id, e.parent_span_id, fr.error_code, fr.model, fr.provider, fr.tool, evLabel(e)]
      .some((v) => v && String(v).toLowerCase().includes(t));
  }

  function computeRange() {
    t0 = Infinity; t1 = -Infinity;
    if (conv) { t0 = conv.created_ms; t1 = conv.last_activity_ms; }
    for (const e of all) {
      const s = evSpan(e);
      t0 = Math.min(t0, s.start); t1 = Math.max(t1, s.end, s.start);
    }
    if (!Number.isFinite(t0)) { t0 = 0; t1 = 1; }
    if (t1 <= t0) t1 = t0 + 1;
  }
  const pct = (ms) => ((ms - t0) / (t1 - t0)) * 100;

  function renderAxis() {
    axis.replaceChildren(h('span', { class: 'tl-label-col' }, 'time \u00b7 kind \u00b7 what \u00b7 tier'),
      h('span', { class: 'tl-bar-col' }, [0, 0.25, 0.5, 0.75, 1].map((f) => {
        const s = h('span', { class: 'tick' }, '+' + fmtDur(Math.round((t1 - t0) * f)));
        s.style.left = (f * 100) + '%';
        return s;
      })));
  }

  function rowEl(i) {
    const e = shown[i];
    const fr = e.flightrec;
    const sp = evSpan(e);
    const bar = h('span', { class: 'span-bar k-' + e.kind + (fr.error_code ? ' err' : '') });
    bar.style.left = pct(sp.start) + '%';
    bar.style.width = Math.max(0.15, pct(sp.end) - pct(sp.start)) + '%';
    for (const [name, a, b] of sp.phases) {
      const ph = h('span', { class: 'phase ph-' + name, title: name + ' ' + fmtDur(b - a) });
      ph.style.left = ((a - sp.start) / Math.max(1, sp.end - sp.start)) * 100 + '%';
      ph.style.width = ((b - a) / Math.max(1, sp.end - sp.start)) * 100 + '%';
      bar.append(ph);
    }
    const d = e.data || {};
    const badges = [];
    if (fr.error_code) badges.push(h('span', { class: 'pill err', title: fr.error_class + ' failure: ' + vis(fr.error_message || '') }, vis(fr.error_code)));
    const cut = cutShort(e);
    if (cut) badges.push(h('span', { class: 'pill warn cut', title: 'the answer ' + cut + ' (finish_reason ' + vis(d.finish_reason) + ')' }, finishMeaning.get(d.finish_reason)));
    if (d.retries > 0) badges.push(h('span', { class: 'pill warn', title: d.retries + ' retries' }, '\u21bb' + d.retries));
    const an = anomByRow.get(fr.id);
    if (an && (fr.tier || 'hot') === 'hot') badges.push(h('span', { class: 'pill warn' }, 'SEM ' + an.join(', ')));
    const dur = sp.end > sp.start ? fmtDur(sp.end - sp.start) : '';
    const row = h('div', {
      class: 'tl-row' + (i === sel ? ' sel' : '') + (fr.error_code ? ' has-err' : ''),
      role: 'option', 'aria-selected': String(i === sel), id: 'ev-' + i, 'data-i': i,
    },
    h('span', { class: 'tl-label-col' },
      h('span', { class: 'off' }, '+' + fmtDur(e.ts_ms - t0)),
      h('span', { class: 'kind k-' + e.kind }, e.kind),
      h('span', { class: 'what', title: vis(evLabel(e)) }, vis(evLabel(e)), dur ? h('span', { class: 'muted' }, ' ' + dur) : ''),
      badges,
      h('span', { class: 'tier t-' + (fr.tier || 'hot') }, fr.tier || 'hot')),
    h('span', { class: 'tl-bar-col' }, bar));
    row.style.top = (i * ROW) + 'px';
    return row;
  }

  let drawn = '';
  function draw(force) {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - 10);
    const last = Math.min(shown.length, Math.ceil((scroller.scrollTop + scroller.clientHeight) / ROW) + 10);
    const sig = first + ':' + last + ':' + sel;
    if (!force && sig === drawn) return;
    drawn = sig;
    spacer.style.height = (shown.length * ROW) + 'px';
    const rows = [];
    for (let i = first; i < last; i++) rows.push(rowEl(i));
    spacer.replaceChildren(...rows);
  }
  scroller.addEventListener('scroll', () => requestAnimationFrame(() => draw(false)));
  scroller.addEventListener('click', (ev) => {
    const r = ev.target.closest('.tl-row');
    if (r) select_(Number(r.dataset.i), true);
  });
  scroller.addEventListener('keydown', (ev) => {
    const page = Math.max(1, Math.floor(scroller.clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, j: 1, k: -1, PageDown: page, PageUp: -page };
    if (ev.key in moves) { ev.preventDefault(); select_(Math.min(shown.length - 1, Math.max(0, (sel < 0 ? -1 : sel) + moves[ev.key])), false); }
    else if (ev.key === 'Home') { ev.preventDefault(); select_(0, false); }
    else if (ev.key === 'End') { ev.preventDefault(); select_(shown.length - 1, false); }
    else if (ev.key === 'Enter' && sel >= 0) { ev.preventDefault(); detail.focus(); }
  });

  function select_(i, fromClick) {
    if (i < 0 || i >= shown.length) return;
    sel = i;
    const top = i * ROW;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW > scroller.scrollTop + scroller.clientHeight) scroller.scrollTop = top + ROW - scroller.clientHeight;
    scroller.setAttribute('aria-activedescendant', 'ev-' + i);
    draw(true);
    showDetail(shown[i]);
    if (fromClick) scroller.focus();
  }

  function relLink(label, e2) {
    const i = shown.indexOf(e2);
    return h('li', {}, h('button', {
      type: 'button', class: 'link', onclick: () => {
        if (i >= 0) select_(i, true);
        else { kindFilter = ''; textFilter = ''; kindSel.value = ''; filterIn.value = ''; apply(); select_(shown.indexOf(e2), true); }
      },
    }, label + ': ' + e2.kind + ' ' + vis(evLabel(e2)) + ' at +' + fmtDur(e2.ts_ms - t0)));
  }

  function showDetail(e) {
    const fr = e.flightrec;
    const ids = ['conv_id', 'session_id', 'turn_id', 'run_id', 'request_id', 'stream_id', 'event_id',
      'trace_id', 'span_id', 'parent_span_id', 'inference_id', 'runtime_key'];
    const findable = new Set(['session_id', 'trace_id', 'request_id', 'turn_id', 'span_id', 'event_id', 'inference_id']);
    const idRows = ids.filter((k) => e[k] !== undefined).map((k) => h('tr', {},
      h('th', { scope: 'row' }, k),
      h('td', {}, idCell(e[k], k === 'conv_id' ? '#/conv/' + encodeURIComponent(e[k])
        : findable.has(k) ? '#/find?q=' + encodeURIComponent(e[k]) : null))));
    const norm = Object.entries(fr).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) =>
      h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, vis(typeof v === 'object' ? JSON.stringify(v) : v))));
    const env = Object.assign({}, e);
    delete env.flightrec;
    const places = redactedPlaces(env, '', []);
    const said = saidLines(e);
    const related = [];
    let moreRelated = 0;
    for (const e2 of all) {
      if (e2 === e) continue;
      if (related.length >= 50) {
        if ((e.turn_id && e2.turn_id === e.turn_id) || (e.span_id && (e2.span_id === e.span_id || e2.parent_span_id === e.span_id)) ||
          (e.request_id && e2.request_id === e.request_id)) moreRelated++;
        continue;
      }
      if (e.turn_id && e2.turn_id === e.turn_id && (e2.kind === 'turn' || e2.kind === 'provider' || e2.kind === 'tool')) related.push(relLink('same turn', e2));
      else if (e.span_id && (e2.span_id === e.span_id || e2.parent_span_id === e.span_id)) related.push(relLink('same span or child', e2));
      else if (e.parent_span_id && e2.span_id === e.parent_span_id) related.push(relLink('parent span', e2));
      else if (e.request_id && e2.request_id === e.request_id) related.push(relLink('same request', e2));
    }
    if (moreRelated) related.push(h('li', { class: 'muted' }, moreRelated + ' more: filter the rows by its turn, span or request id to see them all'));
    const ext = [];
    if (e.trace_id) ext.push(h('li', {}, h('a', { href: '#/find?q=' + encodeURIComponent(e.trace_id) }, 'every event of trace ', vis(e.trace_id))));
    if (e.request_id) ext.push(h('li', {}, h('a', { href: '#/find?q=' + encodeURIComponent(e.request_id) }, 'every event of request ', vis(e.request_id))));
    detail.replaceChildren(
      h('h2', {}, e.kind + ' at ' + fmtTime(e.ts_ms) + ' UTC'),
      fr.error_code ? h('p', { class: 'error' }, fr.error_class + ' \u00b7 ' + vis(fr.error_code) + (fr.error_message ? ': ' + vis(fr.error_message) : '')) : '',
      ...(said.length ? [h('h3', {}, 'What was said (redacted, as kept)'), h('dl', { class: 'said' }, said.map(([who, t]) =>
        [h('dt', {}, vis(who)), h('dd', {}, markedText(typeof t === 'string' ? t : JSON.stringify(t)))]))] : []),
      h('h3', {}, 'Ids'), h('table', { class: 'kv' }, idRows),
      h('h3', {}, 'Normalized by flightrec'), h('table', { class: 'kv' }, norm),
      h('h3', {}, 'Redacted places (', String(places.length), ')'),
      places.length ? h('ul', { class: 'redactions' }, places.map(([p, m, why]) =>
        h('li', {}, h('code', {}, vis(p)), ' ', h('mark', { class: 'redacted' }, m), ' \u2014 ', why)))
        : h('p', { class: 'muted' }, 'Nothing in this event was replaced by redaction.'),
      h('h3', {}, 'Related in this conversation (', String(related.length), ')'),
      related.length ? h('ul', { class: 'related' }, related) : h('p', { class: 'muted' }, 'none'),
      ext.length ? h('ul', { class: 'related' }, ext) : '',
      h('h3', {}, 'Stored envelope (redacted, as kept)'),
      h('pre', { class: 'envelope' }, markedText(JSON.stringify(env, null, 2))));
  }

  function apply() {
    shown = all.filter(matches);
    if (sel >= shown.length) sel = -1;
    const errs = all.filter((e) => e.flightrec.error_code).length;
    const cuts = all.filter(cutShort).length;
    const tiers = {};
    for (const e of all) tiers[e.flightrec.tier || 'hot'] = (tiers[e.flightrec.tier || 'hot'] || 0) + 1;
    const loading = total > all.length ? ' (loaded ' + all.length + ' of ' + total + ': loading the other ' + (total - all.length) + '\u2026)' : '';
    info.textContent = shown.length + ' of ' + all.length + ' events shown' + loading +
      (shown.length < all.length ? ' (filtered: clear the filter to see all)' : '') + ' \u00b7 ' + errs + ' failure' + (errs === 1 ? '' : 's') +
      (cuts ? ' \u00b7 ' + cuts + ' answer' + (cuts === 1 ? '' : 's') + ' cut short or filtered' : '') +
      ' \u00b7 tiers: ' + Object.entries(tiers).map(([t, n]) => t + ' ' + n).join(', ') +
      (pauseBtn.getAttribute('aria-pressed') === 'true' ? ' \u00b7 live updates paused' : ' \u00b7 live');
    renderAxis();
    draw(true);
  }

  function renderMeta(r) {
    conv = r.conversation;
    const c = conv || {};
    meta.replaceChildren(h('dl', { class: 'facts' },
      h('dt', {}, 'Conversation'), h('dd', {}, idCell(id)),
      h('dt', {}, 'Session'), h('dd', {}, idCell(c.session_id, c.session_id ? '#/find?q=' + encodeURIComponent(c.session_id) : null)),
      h('dt', {}, 'Status'), h('dd', {}, conv ? h('span', { class: 'pill st-' + c.status }, c.status) : 'not in the index (read from the archive)'),
      h('dt', {}, 'Events'), h('dd', {}, fmtNum(c.event_count)),
      h('dt', {}, 'Failures'), h('dd', {}, fmtNum(c.error_count)),
      h('dt', {}, 'Created'), h('dd', {}, fmtTime(c.created_ms)),
      h('dt', {}, 'Last activity'), h('dd', {}, fmtTime(c.last_activity_ms)),
      h('dt', {}, 'Runtime'), h('dd', {}, vis(c.current_runtime_key || '-'))),
    r.cold_segments_skipped ? h('p', { class: 'warn' }, r.cold_segments_skipped + ' cold segment(s) could not be read (the agent has no cold key): older events may be missing.') : '');
    anom = r.anomalies || [];
    anomByRow.clear();
    for (const a of anom) {
      const l = anomByRow.get(a.event_row) || [];
      l.push(a.anomaly + ' (seq ' + a.seq + ', expected ' + a.expected + ')');
      anomByRow.set(a.event_row, l);
    }
    anomalies.replaceChildren(anom.length ? h('details', {},
      h('summary', {}, anom.length + ' SEM ordering anomal' + (anom.length === 1 ? 'y' : 'ies') + ' (duplicate, gap, reorder)'),
      h('ul', {}, anom.map((a) => h('li', {}, fmtTime(a.ts_ms) + ' \u00b7 ' + a.anomaly + ' \u00b7 stream ', vis(a.stream_id || '-'), ' \u00b7 seq ' + a.seq + ' (expected ' + a.expected + ')')))) : '');
  }

  async function loadStrip() {
    /* runtime samples over the conversation's time span, as a strip chart on the same axis */
    const r = await api('/v1/events?' + qs({ kind: 'runtime', since: t0, until: t1 + 1, limit: 1000 }));
    const pts = r.events.filter((e) => e.data).sort((a, b) => a.ts_ms - b.ts_ms);
    if (!pts.length) { strip.replaceChildren(h('span', { class: 'tl-label-col muted' }, 'no runtime samples in this time span')); return; }
    const W = 1000, H = 40;
    const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', class: 'chart', role: 'img', 'aria-label': 'CPU and RSS over the conversation' });
    const series = [['cpu_pct', 'cpu'], ['rss_bytes', 'rss'], ['loop_lag_ms', 'lag']];
    const legend = [];
    for (const [k, cls] of series) {
      const vals = pts.filter((e) => Number.isFinite(e.data[k]));
      if (!vals.length) continue;
      const max = Math.max(...vals.map((e) => e.data[k])) || 1;
      s.append(svg('polyline', {
        class: 'line ' + cls, fill: 'none',
        points: vals.map((e) => (pct(e.ts_ms) * W / 100).toFixed(1) + ',' + (H - 2 - (e.data[k] / max) * (H - 4)).toFixed(1)).join(' '),
      }));
      legend.push(h('span', { class: 'lg ' + cls }, cls + ' max ' + (k === 'rss_bytes' ? fmtBytes(max) : max)));
    }
    strip.replaceChildren(h('span', { class: 'tl-label-col' }, 'runtime (' + pts.length + ' samples) ', legend), h('span', { class: 'tl-bar-col' }, s));
  }

  /* The first events at once, the rest in chunks right after: a long conversation is usable
     while it loads, and no chunk holds the page for long. Each chunk twice the last, up to
     CHUNK_MAX: the agent reads the whole conversation for every slice it answers, so a
     200k-event one in fixed chunks of 5,000 took 40 requests of ~1.8 s each; now 8. */
  const FIRST = 500, CHUNK = 5000, CHUNK_MAX = 40000;
  let loadGen = 0;
  async function loadAll() {
    const gen = ++loadGen;
    const path = '/v1/conversations/' + encodeURIComponent(id);
    let r = await api(path + '?limit=' + FIRST);
    const show = () => {
      lastSig = r.conversation ? r.conversation.event_count + ':' + r.conversation.last_activity_ms : String(all.length);
      renderMeta(r);
      computeRange();
      apply();
      if (sel >= 0 && shown[sel]) showDetail(shown[sel]);
    };
    let got = r.events;
    total = r.total_events;
    if (gen !== loadGen) return;
    all = got;
    show();
    /* rows on screen with their handlers: what bench/console.sh measures */
    if (!performance.getEntriesByName('timeline-interactive').length) performance.mark('timeline-interactive');
    let chunk = CHUNK;
    while (got.length < total) {
      const next = await api(path + '?offset=' + got.length + '&limit=' + chunk);
      chunk = Math.min(2 * chunk, CHUNK_MAX);
      if (gen !== loadGen) return;
      if (next.total_events !== total) { /* it changed in between: read it whole */
        r = await api(path);
        got = r.events;
        total = got.length;
        break;
      }
      got = got.concat(next.events);
      r = next;
      all = got;
      apply();
    }
    if (gen !== loadGen) return;
    all = got;
    show();
    if (!performance.getEntriesByName('timeline-complete').length) performance.mark('timeline-complete');
    loadMeanings().catch((e) => console.warn('finish reasons: ' + e.message));
    loadStrip().catch((e) => strip.replaceChildren(h('span', { class: 'muted' }, 'runtime samples: ' + e.message)));
  }

  /* what the finish reasons of the loaded calls mean, asked once per reason */
  async function loadMeanings() {
    const want = new Set();
    for (const e of all) {
      const f = e.kind === 'provider' && e.data && e.data.finish_reason;
      if (typeof f === 'string' && f && !finishMeaning.has(f)) want.add(f);
    }
    const list = [...want];
    for (let i = 0; i < list.length; i += 32) {
      const r = await api('/v1/finish-meanings?' + list.slice(i, i + 32).map((f) => 'reason=' + encodeURIComponent(f)).join('&'));
      for (const [k, v] of Object.entries(r.meanings)) finishMeaning.set(k, v);
      for (const [k, v] of Object.entries(r.cut_short)) finishCut.set(k, v);
    }
    if (list.length) apply();
  }

  kindSel.addEventListener('change', () => { kindFilter = kindSel.value; sel = -1; apply(); });
  filterIn.addEventListener('input', () => { textFilter = filterIn.value.trim(); sel = -1; apply(); });
  exportBtn.addEventListener('click', () => {
    download('conversation-' + id.replace(/[^A-Za-z0-9._-]/g, '_') + '.jsonl',
      shown.map((e) => JSON.stringify(e)).join('\n') + '\n', 'application/x-ndjson');
  });
  bundleBtn.addEventListener('click', () => createBundle({ conv_id: id }, bundleBtn));

  loadAll().then(() => {
    const want = params.get('event');
    if (want) {
      const i = shown.findIndex((e) => e.event_id === want || String(e.flightrec.id) === want);
      if (i >= 0) select_(i, true);
    }
  }).catch((e) => { meta.replaceChildren(errorBox(e)); });

  /* live: the index row is cheap to ask for; the events are read again only when it changed */
  const p = poller(async () => {
    if (!all.length && !conv) return;
    const r = await api('/v1/conversations/' + encodeURIComponent(id) + '?summary=true');
    const c = r.conversation;
    const sig = c ? c.event_count + ':' + c.last_activity_ms : lastSig;
    if (sig === lastSig) return;
    const keepTop = scroller.scrollTop, keepSel = sel >= 0 ? evKey(shown[sel]) : null;
    await loadAll();
    scroller.scrollTop = keepTop;
    if (keepSel) { sel = shown.findIndex((e) => evKey(e) === keepSel); draw(true); }
    setStatus('updated ' + new Date().toLocaleTimeString());
  }, 2000);
  pauseBtn.addEventListener('click', () => {
    p.pause(!p.paused);
    pauseBtn.setAttribute('aria-pressed', String(p.paused));
    pauseBtn.textContent = p.paused ? 'Resume live' : 'Pause live';
    apply();
  });
  return () => p.stop();
};

/* ---------- incidents ---------- */

async function createBundle(sel, btn) {
  btn.disabled = true;
  setStatus('building the incident bundle\u2026');
  try {
    const r = await api('/v1/incidents?' + qs(sel), { method: 'POST' });
    setStatus('bundle ' + r.name + ': ' + r.events + ' events, ' + fmtBytes(r.bytes));
    go('#/incidents?made=' + encodeURIComponent(r.name));
  } catch (e) { setStatus('bundle not created: ' + e.message, true); }
  btn.disabled = false;
}

views.incidents = (main, params) => {
  const made = params.get('made');
  const list = h('div', {}, 'Loading\u2026');
  const form = h('form', { class: 'filters', 'aria-label': 'New incident bundle' },
    field('Conversation id', h('input', { name: 'conv_id', size: 24 })),
    field('Error class', select('error_class', CLASSES, '')),
    field('Error code', h('input', { name: 'error_code', size: 20 })),
    field('Window', select('since', RANGES.slice(1), '1h')),
    h('button', { type: 'submit' }, 'Create bundle'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    const sel = { conv_id: fd.get('conv_id').trim() };
    if (!sel.conv_id) Object.assign(sel, { error_class: fd.get('error_class'), error_code: fd.get('error_code').trim(), since: fd.get('since') });
    createBundle(sel, form.querySelector('button'));
  });
  main.append(h('h1', {}, 'Incident bundles'),
    h('p', {}, 'A bundle is everything stored about a conversation, or about the failures of a time window, in one signed file (docs/bundles.md).'),
    form, list);
  (async () => {
    try {
      const r = await api('/v1/incidents');
      list.replaceChildren(
        h('h2', {}, 'Bundles (' + r.bundles.length + ')'),
        r.bundles.length ? h('table', { class: 'grid', 'aria-label': 'Bundles' },
          h('thead', {}, h('tr', {}, ['Bundle', 'Size', 'Created (UTC)', 'Upload', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, r.bundles.map((b) => h('tr', { class: b.name === made ? 'sel' : '' },
            h('td', {}, idCell(b.name)), h('td', { class: 'num' }, fmtBytes(b.bytes)), h('td', {}, fmtTime(b.mtime_ms)),
            h('td', {}, b.upload ? vis(b.upload.state + (b.upload.attempts ? ' after ' + b.upload.attempts + ' attempt(s)' : '') + (b.upload.error ? ': ' + b.upload.error : '')) : 'not queued'),
            h('td', {}, h('button', { type: 'button', onclick: () => fetchBundle(b.name) }, 'Download'))))))
          : h('p', { class: 'muted' }, 'No bundles yet.'),
        h('p', { class: 'muted' }, r.upload_to ? 'Uploads go to ' + vis(r.upload_to) + '.' : 'No upload destination is set (incident.upload_to): bundles stay here.'));
    } catch (e) { list.replaceChildren(errorBox(e)); }
  })();
};

async function fetchBundle(name) {
  const r = await api('/v1/incidents/' + encodeURIComponent(name), { raw: true });
  if (!r.ok) { setStatus('download failed: HTTP ' + r.status, true); return; }
  download(name, await r.blob());
}

/* ---------- errors and usage dashboard ---------- */

const DASH_RANGES = [['15m', 'last 15 min', '1m'], ['1h', 'last hour', '1m'], ['6h', 'last 6 h', '5m'], ['24h', 'last 24 h', '15m'], ['7d', 'last 7 days', '2h']];

views.dashboard = (main, params) => {
  const range = params.get('range') || '1h';
  const r0 = DASH_RANGES.find((r) => r[0] === range) || DASH_RANGES[1];
  const rangeSel = select('range', DASH_RANGES.map((r) => [r[0], r[1]]), r0[0]);
  rangeSel.addEventListener('change', () => go('#/dashboard?range=' + rangeSel.value));
  const body = h('div', {}, 'Loading\u2026');
  main.append(h('h1', {}, 'Errors and usage'), h('div', { class: 'bar' }, field('Range', rangeSel)), body);
  async function load() {
    const until = Date.now();
    const since = until - parseRange(r0[0]);
    const [errs, codes, prov, tools] = await Promise.all([
      api('/v1/stats?' + qs({ by: 'error', since, until, step: r0[2] })),
      api('/v1/errors?' + qs({ by: 'code', since, until, limit: 20 })),
      api('/v1/stats?' + qs({ by: 'provider', since, until })),
      api('/v1/stats?' + qs({ by: 'tool', since, until })),
    ]);
    const total = errs.rows.reduce((n, r) => n + r.calls, 0);
    body.replaceChildren(
      h('p', { class: 'big' }, h('span', { id: 'error-total' }, fmtNum(total)), ' failures in the ' + r0[1] +
        ' (from the per-minute rollups, hot tier; the same count as ', h('code', {}, 'flightrec errors'), ' over hot data)'),
      h('h2', {}, 'Failures per ' + r0[2] + ', by class'), stackChart(errs, since, until),
      h('h2', {}, 'Top error codes'),
      codes.groups.length ? h('table', { class: 'grid', 'aria-label': 'Top error codes' },
        h('thead', {}, h('tr', {}, ['Error code', 'Failures', 'Conversations hit', 'First (UTC)', 'Last (UTC)'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, codes.groups.map((g) => h('tr', {},
          h('td', {}, h('a', { href: '#/find?error_code=' + encodeURIComponent(g.key) + '&since=' + since, title: 'the failures' }, vis(g.key || '(none)'))),
          h('td', { class: 'num' }, fmtNum(g.count)),
          h('td', { class: 'num' }, h('a', { href: '#/conversations?' + qs({ error_code: g.key, since }), title: 'the conversations it hit' }, fmtNum(g.conversations))),
          h('td', {}, fmtTime(g.first_ms)), h('td', {}, fmtTime(g.last_ms)))))) : h('p', { class: 'muted' }, 'No failures in this range.'),
      h('h2', {}, 'Provider calls: latency and tokens'), usageTable(prov.rows, true),
      h('h2', {}, 'Tool calls'), usageTable(tools.rows, false));
  }
  load().catch((e) => body.replaceChildren(errorBox(e)));
  const p = poller(load, 15000);
  return () => p.stop();
};

function parseRange(r) {
  const n = parseInt(r, 10), u = r.slice(-1);
  return n * ({ m: 60000, h: 3600000, d: 86400000 }[u] || 60000);
}

const CLASS_COLORS = ['provider', 'tool', 'transport', 'runtime', 'storage', 'projection', 'validation'];
function stackChart(st, since, until) {
  const step = st.step_ms;
  const first = Math.floor(since / step) * step;
  const n = Math.max(1, Math.ceil((until - first) / step));
  const byBucket = new Map(), classes = new Set();
  for (const r of st.rows) {
    classes.add(r.k1);
    const m = byBucket.get(r.bucket_ms) || {};
    m[r.k1] = (m[r.k1] || 0) + r.calls;
    byBucket.set(r.bucket_ms, m);
  }
  const max = Math.max(1, ...[...byBucket.values()].map((m) => Object.values(m).reduce((a, b) => a + b, 0)));
  const W = 1000, H = 160, bw = W / n;
  const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + (H + 16), class: 'stack', role: 'img', 'aria-label': 'Failures per step, stacked by class' });
  for (let i = 0; i < n; i++) {
    const b = first + i * step, m = byBucket.get(b);
    if (!m) continue;
    let y = H;
    for (const c of CLASS_COLORS.concat([...classes].filter((c) => !CLASS_COLORS.includes(c)))) {
      if (!m[c]) continue;
      const hgt = (m[c] / max) * H;
      y -= hgt;
      const rect = svg('rect', { x: (i * bw + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: hgt.toFixed(1), class: 'c-' + (CLASS_COLORS.includes(c) ? c : 'other') });
      const t = svg('title', {});
      t.textContent = fmtTime(b) + ' \u00b7 ' + c + ': ' + m[c];
      rect.append(t);
      s.append(rect);
    }
  }
  const lab = svg('text', { x: 2, y: H + 13, class: 'axis' });
  lab.textContent = fmtTime(first) + ' UTC';
  const lab2 = svg('text', { x: W - 2, y: H + 13, class: 'axis', 'text-anchor': 'end' });
  lab2.textContent = 'max ' + max + ' per step';
  s.append(lab, lab2);
  const legend = h('p', { class: 'legend' }, [...classes].sort().map((c) => h('span', { class: 'lg c-' + (CLASS_COLORS.includes(c) ? c : 'other') }, c)));
  return h('div', {}, s, legend);
}

function usageTable(rows, tokens) {
  if (!rows.length) return h('p', { class: 'muted' }, 'No calls in this range.');
  const head = tokens ? ['Provider', 'Model', 'Calls', 'Failures', 'p50 \u2264 ms', 'p99 \u2264 ms', 'Input tokens', 'Output tokens', 'Cached', 'Reasoning']
    : ['Tool', '', 'Calls', 'Failures', 'p50 \u2264 ms', 'p99 \u2264 ms'];
  return h('table', { class: 'grid', 'aria-label': tokens ? 'Provider usage' : 'Tool usage' },
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, vis(r.k1 || '-')), h('td', {}, vis(r.k2 || '')),
      h('td', { class: 'num' }, fmtNum(r.calls)), h('td', { class: 'num' }, fmtNum(r.errors)),
      h('td', { class: 'num' }, r.latency ? fmtNum(r.latency.p50_ms) : '-'),
      h('td', { class: 'num' }, r.latency ? fmtNum(r.latency.p99_ms) : '-'),
      tokens ? [h('td', { class: 'num' }, fmtNum(r.tokens.input)), h('td', { class: 'num' }, fmtNum(r.tokens.output)),
        h('td', { class: 'num' }, fmtNum(r.tokens.cached)), h('td', { class: 'num' }, fmtNum(r.tokens.reasoning))] : []))));
}

/* ---------- health ---------- */

function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp), v = Number(line.slice(sp + 1));
    const name = key.replace(/\{.*$/, '');
    m.set(key, v);
    m.set(name + '#sum', (m.get(name + '#sum') || 0) + v);
  }
  return m;
}

views.health = (main) => {
  const body = h('div', {}, 'Loading\u2026');
  main.append(h('h1', {}, 'Health'), body);
  let prev = null;
  async function load() {
    const [ready, metrics] = await Promise.all([plain('/readyz'), plain('/metrics')]);
    const m = parseMetrics(metrics.text);
    const now = Date.now();
    const accepted = m.get('flightrec_events_accepted_total#sum') || 0;
    let rate = '-';
    if (prev) rate = ((accepted - prev.accepted) / ((now - prev.t) / 1000)).toFixed(1) + ' events/s';
    prev = { t: now, accepted };
    const g = (k) => m.get(k);
    const tier = (t, what) => g('flightrec_archive_' + what + '{tier="' + t + '"}');
    const lastRun = g('flightrec_retention_last_run_timestamp_seconds');
    body.replaceChildren(
      h('p', { class: ready.status === 200 ? 'ok big' : 'error big', id: 'readiness' }, ready.status === 200 ? 'Ready' : 'Not ready', ': ', vis(ready.text.trim())),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Ingest queue'), h('dd', { id: 'queue' }, fmtNum(g('flightrec_queue_events')) + ' of ' + fmtNum(g('flightrec_queue_capacity_events')) + ' events (high water ' + fmtNum(g('flightrec_queue_high_water_events')) + ')'),
        h('dt', {}, 'Ingest rate'), h('dd', { id: 'rate' }, rate + ' (committed; ' + fmtNum(accepted) + ' since start)'),
        h('dt', {}, 'Rejected'), h('dd', {}, fmtNum(g('flightrec_events_rejected_total#sum') || 0) + ' events'),
        h('dt', {}, 'Hot store'), h('dd', {}, fmtBytes(g('flightrec_store_bytes'))),
        h('dt', {}, 'Retention'), h('dd', { id: 'retention' }, lastRun ? 'last run ' + fmtTime(lastRun * 1000) + ' UTC, ' + (g('flightrec_retention_last_run_ok') ? 'ok' : 'failed') + ' (' + fmtNum(g('flightrec_retention_runs_total')) + ' runs)' : 'no run yet'),
        h('dt', {}, 'Warm tier'), h('dd', {}, fmtNum(tier('warm', 'segments') || 0) + ' segments, ' + fmtBytes(tier('warm', 'bytes') || 0)),
        h('dt', {}, 'Cold tier'), h('dd', {}, fmtNum(tier('cold', 'segments') || 0) + ' segments, ' + fmtBytes(tier('cold', 'bytes') || 0)),
        h('dt', {}, 'Bad segments'), h('dd', {}, fmtNum(g('flightrec_archive_bad_segments') || 0)),
        h('dt', {}, 'Incident outbox'), h('dd', {}, fmtNum(g('flightrec_incident_outbox_bundles') || 0) + ' bundle(s) waiting'),
        g('flightrec_ship_up') !== undefined ? [h('dt', {}, 'Shipping'), h('dd', {}, (g('flightrec_ship_up') ? 'up' : 'down') + ', ' + g('flightrec_ship_lag_seconds') + ' s behind')] : ''),
      h('p', { class: 'muted' }, 'From /readyz and /metrics, every 5 s.'));
  }
  load().catch((e) => body.replaceChildren(errorBox(e)));
  const p = poller(load, 5000);
  return () => p.stop();
};

/* ---------- find anything ---------- */

views.find = (main, params) => {
  const q = (params.get('q') || '').trim();
  const code = params.get('error_code');
  const body = h('div', {}, 'Searching\u2026');
  main.append(h('h1', {}, code ? 'Failures with code ' : 'Find ', h('span', { class: 'id' }, vis(code || q))), body);
  document.getElementById('find-q').value = q;
  (async () => {
    const parts = [];
    if (code) {
      const r = await api('/v1/errors?' + qs({ error_code: code, since: params.get('since'), limit: 1000 }));
      parts.push(eventTable('Failures (newest first' + (r.errors.length >= 1000 ? '; the first 1000 shown \u2014 narrow the range for more' : '') + ')', r.errors));
      body.replaceChildren(...parts);
      return;
    }
    if (!q) { body.replaceChildren(h('p', {}, 'Type an id or some text in the Find box.')); return; }
    const tries = [
      api('/v1/conversations?' + qs({ conv_id: q })).then((r) => (r.conversations.length ? { conv: r.conversations[0] } : null), (e) => ({ f: 'conversation', error: e })),
    ];
    // an id cut short (copied from a log line or a chat): the conversations it starts
    tries.push(api('/v1/conversations?' + qs({ prefix: q, limit: 20 })).then((r) => ({ prefixed: r.conversations.filter((c) => c.conv_id !== q) }), (e) => ({ f: 'conversation id prefix', error: e })));
    for (const f of ['trace_id', 'request_id', 'session_id', 'turn_id', 'span_id', 'event_id', 'inference_id'])
      tries.push(api('/v1/events?' + qs({ [f]: q, limit: 1000 })).then((r) => ({ f, events: r.events }), (e) => ({ f, error: e })));
    tries.push(api('/v1/events?' + qs({ text: q, limit: 200 })).then((r) => ({ f: 'text', events: r.events }), (e) => ({ f: 'text', error: e })));
    const res = await Promise.all(tries);
    let any = false;
    for (const r of res) {
      if (!r) continue;
      if (r.conv) {
        any = true;
        parts.push(h('section', {}, h('h2', {}, 'Conversation'),
          h('p', {}, idCell(r.conv.conv_id, '#/conv/' + encodeURIComponent(r.conv.conv_id)), ' \u00b7 ' + r.conv.event_count + ' events, ' + r.conv.error_count + ' failures, last active ' + fmtTime(r.conv.last_activity_ms))));
      } else if (r.prefixed) {
        if (!r.prefixed.length) continue;
        any = true;
        parts.push(h('section', {}, h('h2', {}, 'Conversations whose id starts with it' + (r.prefixed.length >= 19 ? ' (the 20 most recently active)' : '')),
          h('ul', {}, r.prefixed.map((c) => h('li', {}, idCell(c.conv_id, '#/conv/' + encodeURIComponent(c.conv_id)), ' \u00b7 ' + c.event_count + ' events, ' + c.error_count + ' failures, last active ' + fmtTime(c.last_activity_ms))))));
      } else if (r.error) {
        parts.push(h('p', { class: 'error' }, r.f + ': ' + r.error.message));
      } else if (r.events && r.events.length) {
        any = true;
        const lim = r.f === 'text' ? 200 : 1000;
        parts.push(eventTable((r.f === 'text' ? 'Stored text containing it (hot tier, newest first)' : 'Events with ' + r.f + ' = this id') +
          (r.events.length >= lim ? ' \u2014 the first ' + lim + ' shown; narrow the search for more' : ''), r.events));
      }
    }
    if (!any) parts.unshift(h('p', {}, 'Nothing found: no conversation with this id or one starting with it, no event with it as trace, request, session, turn, span, event or inference id, and no stored text containing it.'));
    body.replaceChildren(...parts);
  })().catch((e) => body.replaceChildren(errorBox(e)));
};

function eventTable(title, events) {
  return h('section', {}, h('h2', {}, title + ' (' + events.length + ')'),
    h('button', { type: 'button', onclick: () => download('events.jsonl', events.map((e) => JSON.stringify(e)).join('\n') + '\n', 'application/x-ndjson') }, 'Export JSON Lines'),
    h('table', { class: 'grid', 'aria-label': title },
      h('thead', {}, h('tr', {}, ['Time (UTC)', 'Conversation', 'Kind', 'What', 'Failure', 'Tier'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, events.map((e) => h('tr', {},
        h('td', {}, fmtTime(e.ts_ms)),
        h('td', {}, idCell(e.conv_id, e.conv_id ? '#/conv/' + encodeURIComponent(e.conv_id) + (e.event_id ? '?event=' + encodeURIComponent(e.event_id) : '') : null)),
        h('td', {}, h('span', { class: 'kind k-' + e.kind }, e.kind)),
        h('td', {}, vis(evLabel(e))),
        h('td', {}, e.flightrec.error_code ? h('span', { class: 'code' }, vis(e.flightrec.error_code)) : ''),
        h('td', {}, e.flightrec.tier || 'hot'))))));
}

/* ---------- start ---------- */

document.getElementById('find').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = document.getElementById('find-q').value.trim();
  if (q) go('#/find?q=' + encodeURIComponent(q));
});
document.addEventListener('keydown', (ev) => {
  if (ev.key === '/' && !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) {
    ev.preventDefault();
    document.getElementById('find-q').focus();
  }
});
window.addEventListener('hashchange', route);
(async () => {
  /* ask for the token before the first read when the agent needs one (no 401 round trip) */
  try {
    const r = await fetch('auth.json', { cache: 'no-store' });
    const a = await r.json();
    if (a.token_required && !sessionStorage.getItem('flightrec.token')) await askToken();
  } catch (e) { /* an older agent: the first 401 asks */ }
  route();
})();
