// tests/ui/console.mjs - drives the agent's web console in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core) and asserts what is on
// screen against what was ingested. Run by tests/integration/test_agent_console.c:
//
//   node tests/ui/console.mjs BASE_URL TOKEN OUT_DIR EXPECT_JSON
//
// EXPECT_JSON (written by the C test) names the conversations it loaded and
// the figures to compare with (flightrec errors' count, ...). Any console
// error, page error or failed assertion exits non-zero naming it. Screenshots
// of every view go to OUT_DIR. The last line of stdout is JSON with the
// timings `make bench` reports (bench/console.sh).
import { launchChromium } from './chromium.mjs';
import assert from 'node:assert/strict';
import fs from 'node:fs';

const [base, token, outDir, expectFile] = process.argv.slice(2);
const want = JSON.parse(fs.readFileSync(expectFile, 'utf8'));
fs.mkdirSync(outDir, { recursive: true });

const browser = await launchChromium();
const problems = [];
const ctx = await browser.newContext({ viewport: { width: 1500, height: 950 } });
// an agent under valgrind answers slowly: the test says how long to wait (FR_UI_TIMEOUT_MS)
const timeout = Number(process.env.FR_UI_TIMEOUT_MS || 30000);
let page;
// a new tab for a view, as opening a link in one: no state carried from step to step; every
// tab's console and page errors fail the test
const fresh = async () => {
  if (page) await page.close();
  page = await ctx.newPage();
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console error: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
};
await fresh();
const step = async (name, fn) => {
  try { await fn(); } catch (e) {
    await page.screenshot({ path: `${outDir}/failed-${name}.png` }).catch(() => {});
    const where = await page.evaluate(() => [location.hash, document.visibilityState,
      ...[...document.querySelectorAll('.summary')].map((x) => x.textContent)]).catch((x) => [String(x)]);
    console.error(`step ${name}: ${e.stack || e}\npage: ${JSON.stringify(where)}`);
    await browser.close();
    process.exit(1);
  }
  if (problems.length) {
    console.error(`step ${name}: ${problems.join('\n')}`);
    await browser.close();
    process.exit(1);
  }
  console.error('ok', name); // stderr: unbuffered, so a failure shows how far it got
};
// waits poll every 100 ms
const until = (fn, arg, opts) => page.waitForFunction(fn, arg, Object.assign({ polling: 100 }, opts || {}));
const api = async (path) => {
  const r = await fetch(base + path, { headers: { Authorization: 'Bearer ' + token } });
  assert.equal(r.status, 200, path);
  return r.json();
};
const timings = {};

await step('headers', async () => {
  const r = await fetch(base + '/ui/');
  assert.equal(r.status, 200);
  const csp = r.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  const js = await fetch(base + '/ui/app.js');
  assert.match(js.headers.get('content-type'), /javascript/);
  // the data needs the token; the files do not
  assert.equal((await fetch(base + '/v1/conversations')).status, 401);
});

await step('token', async () => {
  await page.goto(base + '/ui/');
  // the query token is asked for once and kept in the tab's session storage
  await page.locator('#token-input').waitFor();
  await page.fill('#token-input', token);
  await page.press('#token-input', 'Enter');
  await page.locator('table.grid tbody tr').first().waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('flightrec.token')), token);
  // later tabs start with it, as this tab keeps it
  await ctx.addInitScript((t) => sessionStorage.setItem('flightrec.token', t), token);
});

await step('conversations', async () => {
  const all = await api('/v1/conversations?limit=1000');
  await until((n) => document.querySelectorAll('table.grid tbody tr').length === n,
    Math.min(100, all.conversations.length));
  assert.equal(all.conversations.length, want.conversations);
  const ids = await page.$$eval('table.grid tbody tr td:first-child .id', (els) => els.map((e) => e.textContent));
  // full ids, never shortened, in the API's order
  assert.deepEqual(ids, all.conversations.slice(0, 100).map((c) => c.conv_id.replace(/[\u0000-\u001f]/g,
    (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'))));
  const counts = await page.$$eval('table.grid tbody tr', (rows) => rows.map((r) => [
    Number(r.cells[3].textContent.replace(/,/g, '')), Number(r.cells[4].textContent.replace(/,/g, ''))]));
  assert.deepEqual(counts, all.conversations.slice(0, 100).map((c) => [c.event_count, c.error_count]));
  assert.match(await page.textContent('.summary'), new RegExp(`^${want.conversations} conversations shown, every match shown`));
  await page.screenshot({ path: `${outDir}/conversations.png` });
  // a filter: only conversations with failures
  await page.check('input[name=has_errors]');
  await page.click('form.filters button[type=submit]');
  const errs = await api('/v1/conversations?has_errors=true&limit=1000');
  await until((n) => location.hash.includes('has_errors=true') &&
    document.querySelectorAll('table.grid tbody tr').length === n, errs.conversations.length);
  assert.equal(errs.conversations.length, want.conversations_with_errors);
});

await step('inert-strings', async () => {
  // a conversation id and a tool argument holding markup and terminal escapes show up as text
  await page.goto(base + '/ui/#/conversations');
  await page.locator('table.grid tbody tr').first().waitFor();
  const text = await page.textContent('table.grid');
  assert.ok(text.includes('<script>window.__pwned=1</script>\\u001b[31m'), 'the hostile id is shown as text');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator('table.grid script, table.grid img').count(), 0);
  await page.goto(base + '/ui/#/conv/' + encodeURIComponent(want.hostile_conv));
  await page.locator('.tl-row').first().waitFor();
  await page.locator('.tl-row', { hasText: 'tool' }).first().click();
  await page.locator('pre.envelope').waitFor();
  assert.ok((await page.textContent('pre.envelope')).includes('<img src=x onerror='));
  assert.equal(await page.locator('.detail img').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
});

await step('timeline', async () => {
  const conv = await api('/v1/conversations/' + encodeURIComponent(want.error_conv));
  await page.goto(base + '/ui/#/conv/' + encodeURIComponent(want.error_conv));
  await until((n) => document.querySelectorAll('.tl-row').length === n, conv.events.length);
  // events in the API's order (time, sequence, arrival), each with its kind and tier
  const kinds = await page.$$eval('.tl-row', (rows) => rows.sort((a, b) => a.dataset.i - b.dataset.i)
    .map((r) => r.querySelector('.kind').textContent + '/' + r.querySelector('.tier').textContent));
  assert.deepEqual(kinds, conv.events.map((e) => e.kind + '/' + (e.flightrec.tier || 'hot')));
  const codes = await page.$$eval('.tl-row .pill.err', (ps) => ps.map((p) => p.textContent));
  assert.deepEqual(codes, conv.events.filter((e) => e.flightrec.error_code).map((e) => e.flightrec.error_code));
  assert.deepEqual(codes, want.error_codes);
  // the 429's two retries
  assert.equal(await page.locator('.tl-row .pill.warn', { hasText: '\u21bb2' }).count(), 1);
  // the call after it succeeded, but its answer stopped at the token limit: marked, and counted
  await page.locator('.tl-row .pill.cut', { hasText: 'truncated' }).waitFor();
  assert.equal(await page.locator('.tl-row .pill.cut').count(),
    conv.events.filter((e) => e.kind === 'provider' && e.data.finish_reason === 'length').length);
  assert.equal(await page.getAttribute('.tl-row .pill.cut', 'title'), 'the answer stopped at the token limit (finish_reason length)');
  assert.match(await page.textContent('.summary'), / 1 answer cut short or filtered /);
  // the SEM duplicate is shown
  assert.match(await page.textContent('.anomalies'), /1 SEM ordering anomaly/);
  assert.equal(await page.locator('.tl-row .pill.warn', { hasText: 'SEM duplicate_seq' }).count(), 1);
  // runtime strip chart on the same axis
  await page.locator('.tl-strip svg polyline').first().waitFor();
  // keyboard: focus the list, move down to the provider call, open it
  await page.focus('.tl-scroll');
  const provIdx = conv.events.findIndex((e) => e.kind === 'provider' && e.data.request);
  for (let i = 0; i <= provIdx; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await page.locator('.detail h2').waitFor();
  assert.match(await page.textContent('.detail h2'), /^provider at /);
  // a redaction marker: which detector, never the value
  const marks = await page.$$eval('.detail ul.redactions li', (ls) => ls.map((l) => l.textContent));
  assert.ok(marks.some((m) => m.includes('[REDACTED:') && m.includes('detector')), marks.join('\n'));
  // what was said, as `show --text` prints it: the system instructions, each message's text or
  // parts (a tool call as name(arguments)), the answer; redaction marks as marks
  const prov = conv.events[provIdx];
  const said = await page.$$eval('.detail dl.said > *', (xs) => xs.map((x) => x.textContent));
  assert.deepEqual(said, ['system', 'You are a weather bot', 'user', prov.data.request.messages[0].content,
    'assistant', 'checking', 'assistant', 'weather({"city":"Tokyo"})', 'assistant', 'sunny']);
  assert.match(said[3], /^\u6771\u4eac\u306e\u5929\u6c17\u306f\uff1f my key is \[REDACTED:[a-z_]+\] and mail \[REDACTED:email\]$/);
  assert.equal(await page.locator('.detail dl.said mark.redacted').count(), 2);
  const body = await page.textContent('body');
  for (const s of want.secrets) assert.ok(!body.includes(s), 'a planted secret is on screen');
  // links to what it correlates with: its turn, its trace
  assert.ok((await page.locator('.detail ul.related li').count()) >= 2);
  assert.equal(await page.locator(`.detail a[href="#/find?q=${encodeURIComponent(want.trace_id)}"]`).count() >= 1, true);
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${outDir}/timeline.png` });
});

await step('big-timeline', async () => {
  await fresh();
  const t0 = Date.now();
  await page.goto(base + '/ui/#/conv/' + encodeURIComponent(want.big_conv));
  await until((n) => {
    const s = document.querySelector('.summary');
    return s && s.textContent.startsWith(n + ' of ' + n + ' events shown');
  }, want.big_events, { timeout: 2 * timeout });
  await page.locator('.tl-row').first().click();
  await page.locator('.detail h2').waitFor();
  timings.timeline_interactive_ms = Date.now() - t0;
  // virtualized: only the rows in view exist
  const rows = await page.locator('.tl-row').count();
  assert.ok(rows > 5 && rows < 200, `${rows} rows in the DOM`);
  // moved to warm by retention, read from its segments: every row says so
  const tiers = await page.$$eval('.tl-row .tier', (t) => [...new Set(t.map((x) => x.textContent))]);
  assert.deepEqual(tiers, ['warm']);
  assert.match(await page.textContent('.summary'), new RegExp(`tiers: warm ${want.big_events}`));
  // the end is reachable: End key selects the last event
  await page.focus('.tl-scroll');
  await page.keyboard.press('End');
  await until((n) => document.querySelector(`#ev-${n - 1}.sel`), want.big_events);
  const r = await fetch(base + '/v1/conversations/' + encodeURIComponent(want.big_conv),
    { headers: { Authorization: 'Bearer ' + token } });
  timings.api_bytes_per_event = Math.round((await r.arrayBuffer()).byteLength / want.big_events);
  await page.screenshot({ path: `${outDir}/timeline-10k.png` });
});

await step('dashboard', async () => {
  await fresh();
  await page.goto(base + '/ui/#/dashboard?range=1h');
  await page.locator('#error-total').waitFor();
  assert.equal(Number((await page.textContent('#error-total')).replace(/,/g, '')), want.errors_total);
  assert.ok((await page.locator('svg.stack rect').count()) > 0);
  const codes = await page.$$eval('table[aria-label="Top error codes"] tbody tr td:first-child', (t) => t.map((x) => x.textContent));
  for (const c of want.error_codes) assert.ok(codes.includes(c), `code ${c} in the top codes`);
  assert.ok((await page.textContent('table[aria-label="Provider usage"]')).includes(want.model));
  await page.screenshot({ path: `${outDir}/dashboard.png` });
  // click through from a code to the conversations it hit
  await page.locator(`table[aria-label="Top error codes"] tr:has-text("${want.error_codes[0]}") a[title="the conversations it hit"]`).click();
  await until(() => location.hash.startsWith('#/conversations?') && location.hash.includes('error_code='));
  await until((id) => {
    const rows = document.querySelectorAll('table.grid tbody tr');
    return rows.length === 1 && rows[0].textContent.includes(id);
  }, want.error_conv);
  // and from its code to the failures themselves
  await page.goBack();
  await page.locator('table[aria-label="Top error codes"] a', { hasText: want.error_codes[0] }).first().click();
  await page.locator('section table tbody tr').first().waitFor();
  assert.ok((await page.textContent('section')).includes(want.error_conv));
});

await step('find', async () => {
  await fresh();
  await page.goto(base + '/ui/#/conversations');
  await page.fill('#find-q', want.trace_id);
  await page.press('#find-q', 'Enter');
  await page.locator('section h2', { hasText: 'trace_id' }).waitFor();
  assert.ok((await page.textContent('main')).includes(want.error_conv));
  // full-text search over stored message text, in a non-Latin script
  // (the trace id is in stored text too, so the previous page already has a "Stored text"
  // section: wait for the new query's page to have rendered its results, not the old one's)
  await page.fill('#find-q', want.text_query);
  await page.press('#find-q', 'Enter');
  await until((q) => {
    const h1 = document.querySelector('main h1');
    return h1 && h1.textContent.includes(q) &&
      [...document.querySelectorAll('main section h2')].some((x) => x.textContent.startsWith('Stored text'));
  }, want.text_query);
  assert.ok((await page.textContent('main')).includes(want.error_conv));
  await page.screenshot({ path: `${outDir}/find.png` });
  // a conversation id cut short: the conversations it starts, linked
  const cut = want.error_conv.slice(0, -1);
  await page.fill('#find-q', cut);
  await page.press('#find-q', 'Enter');
  await page.locator('section h2', { hasText: 'Conversations whose id starts with it' }).waitFor();
  assert.equal(await page.locator(`main section li a[href="#/conv/${encodeURIComponent(want.error_conv)}"]`).count(), 1);
});

await step('incidents', async () => {
  await fresh();
  await page.goto(base + '/ui/#/conv/' + encodeURIComponent(want.error_conv));
  await page.locator('.tl-row').first().waitFor();
  await page.click('text=Create incident bundle');
  await until(() => location.hash.startsWith('#/incidents?made='));
  await page.locator('table[aria-label="Bundles"] tbody tr').first().waitFor();
  const made = decodeURIComponent((await page.evaluate(() => location.hash)).split('made=')[1]);
  assert.ok((await page.textContent('table[aria-label="Bundles"]')).includes(made));
  const list = await api('/v1/incidents');
  assert.equal(list.bundles[0].name, made);
  await page.screenshot({ path: `${outDir}/incidents.png` });
});

await step('health', async () => {
  await fresh();
  await page.goto(base + '/ui/#/health');
  await page.locator('#readiness').waitFor();
  assert.match(await page.textContent('#readiness'), /^Ready: ok/);
  assert.match(await page.textContent('#queue'), / of /);
  await page.screenshot({ path: `${outDir}/health.png` });
});

await step('labels', async () => {
  await fresh();
  // every form control of the main views has a label
  for (const view of ['#/conversations', '#/dashboard', '#/incidents', '#/conv/' + encodeURIComponent(want.error_conv)]) {
    await page.goto(base + '/ui/' + view);
    await page.locator('main h1').waitFor();
    const unlabelled = await page.$$eval('main input, main select, header input', (els) =>
      els.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.outerHTML));
    assert.deepEqual(unlabelled, [], view);
  }
});

await step('live', async () => {
  await fresh();
  // new events show up on an open timeline and in the list without a reload; Pause holds them
  const ingest = async (line) => {
    const r = await fetch(base + '/v1/events', {
      method: 'POST', body: JSON.stringify(line) + '\n',
      headers: { Authorization: 'Bearer ' + process.env.FR_UI_INGEST_TOKEN, 'Content-Type': 'application/x-ndjson' },
    });
    assert.equal(r.status, 202);
  };
  const conv = await api('/v1/conversations/' + encodeURIComponent(want.error_conv));
  const n = conv.events.length, last = conv.events[n - 1].ts_ms;
  await page.goto(base + '/ui/#/conv/' + encodeURIComponent(want.error_conv));
  await until((k) => (document.querySelector('.summary')?.textContent || '').startsWith(k + ' of ' + k + ' '), n);
  await ingest({ kind: 'tool', ts_ms: last + 100, conv_id: want.error_conv, data: { name: 'late_child', status: 'ok' } });
  await until((k) => (document.querySelector('.summary')?.textContent || '').startsWith(k + ' of ' + k + ' '), n + 1);
  assert.equal(await page.locator('.tl-row', { hasText: 'late_child' }).count(), 1);
  await page.click('text=Pause live');
  await ingest({ kind: 'tool', ts_ms: last + 200, conv_id: want.error_conv, data: { name: 'while_paused', status: 'ok' } });
  await page.waitForTimeout(4500); // two polls' worth: nothing may change while paused
  assert.ok((await page.textContent('.summary')).startsWith(`${n + 1} of ${n + 1} `));
  await page.click('text=Resume live');
  await until((k) => (document.querySelector('.summary')?.textContent || '').startsWith(k + ' of ' + k + ' '), n + 2);
  // the rows shown, exported one envelope per line
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('text=Export JSON Lines')]);
  const lines = fs.readFileSync(await dl.path(), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, n + 2);
  assert.equal(lines[n + 1].data.name, 'while_paused');
  // the list's counts move too
  await page.goto(base + '/ui/#/conversations');
  const row = page.locator('table.grid tbody tr', { hasText: 'ui-ok-0' });
  await row.waitFor();
  assert.equal(await row.locator('td').nth(3).textContent(), '1');
  await ingest({ kind: 'tool', ts_ms: Date.now(), conv_id: 'ui-ok-0', data: { name: 'more', status: 'ok' } });
  await until(() => [...document.querySelectorAll('table.grid tbody tr')]
    .some((r) => r.cells[0].textContent.startsWith('ui-ok-0') && r.cells[3].textContent === '2'));
});

await browser.close();
console.log(JSON.stringify(timings));
