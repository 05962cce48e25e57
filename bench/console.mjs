// bench/console.mjs - the console's timeline of one large conversation in
// headless Chromium, ROUNDS times on a fresh page: from the start of
// navigation until its first rows are on screen with their handlers
// (interactive, the page's own mark) and until every event is laid out
// (complete); then a click must open an event's detail. Next to it, the same
// conversation's JSON fetched alone in the page (the baseline: what the page
// cannot do faster than). Prints one JSON line.
//   node bench/console.mjs BASE_URL CONV EVENTS ROUNDS
import { launchChromium } from '../tests/ui/chromium.mjs';

const [base, conv, events, rounds] = process.argv.slice(2);
const n = Number(events);
const browser = await launchChromium();
const url = base + '/ui/#/conv/' + encodeURIComponent(conv);
// on a fresh page each round
const ui = [], done = [], fetchMs = [];
let bytes = 0;
for (let r = 0; r < Number(rounds); r++) {
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  await page.goto(url);
  // complete: every event laid out on the axis
  await page.waitForFunction((k) => {
    const s = document.querySelector('.summary');
    return s && s.textContent.startsWith(k + ' of ' + k + ' events shown');
  }, n, { timeout: 120000, polling: 10 });
  // the page's own marks, from the start of navigation (the browser's clock, not the
  // driver's round trips): rows on screen with their handlers; every event laid out
  const marks = await page.evaluate(() => ['timeline-interactive', 'timeline-complete'].map(
    (m) => Math.round(performance.getEntriesByName(m)[0].startTime)));
  ui.push(marks[0]);
  done.push(marks[1]);
  // and it answers: a click opens an event's detail
  await page.evaluate(() => document.querySelectorAll('.tl-row')[3].click());
  await page.locator('.detail h2').waitFor();
  const f0 = Date.now();
  const body = await page.evaluate(async (u) => (await (await fetch(u, { cache: 'no-store' })).arrayBuffer()).byteLength,
    base + '/v1/conversations/' + encodeURIComponent(conv));
  fetchMs.push(Date.now() - f0);
  bytes = body;
  await page.close();
}
await browser.close();
const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
console.log(JSON.stringify({ interactive_ms: med(ui), rounds_ms: ui, complete_ms: med(done), fetch_ms: med(fetchMs), bytes_per_event: Math.round(bytes / n) }));
