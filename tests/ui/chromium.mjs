// tests/ui/chromium.mjs - Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) started headless
// through playwright-core, which never downloads a browser: shared by the console's browser
// test (tests/ui/console.mjs) and its bench (bench/console.mjs). The flags keep it off the
// network (this machine's is closed) and keep a page's timers and frames running while it is
// not in front.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--disable-renderer-backgrounding',
      '--disable-background-timer-throttling', '--disable-backgrounding-occluded-windows'],
  });
}
