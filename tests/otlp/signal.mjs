// What the scripts of tests/otlp/ share: the test and a script take turns
// through files in the test's folder.
import fs from 'node:fs';
import path from 'node:path';

// Resolves once the file DIR/NAME exists (looked for every 20 ms).
export const until = (dir, name) => new Promise((resolve) => {
  const t = setInterval(() => {
    if (fs.existsSync(path.join(dir, name))) {
      clearInterval(t);
      resolve();
    }
  }, 20);
});
