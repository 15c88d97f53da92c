// The JavaScript a first visit loads, gzipped: the entry script index.html names and the chunks it
// preloads (the screens come later, each when it is opened). Prints the figure; fails over the
// budget (250 kB, issue 21). A size, measured the same way every time, not a timing.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET = 250 * 1024;
const dist = new URL('../dist/', import.meta.url);
const html = readFileSync(new URL('index.html', dist), 'utf8');
const files = [...html.matchAll(/<(?:script[^>]+src|link[^>]+rel="modulepreload"[^>]+href)="\/([^"]+\.js)"/g)].map((m) => m[1]);
if (files.length === 0) throw new Error('index.html names no script: is web/dist built?');
let total = 0;
for (const f of new Set(files)) {
  const gz = gzipSync(readFileSync(new URL(f, dist)), { level: 9 }).length;
  total += gz;
  console.log(`${(gz / 1024).toFixed(1).padStart(7)} kB  ${f}`);
}
console.log(`${(total / 1024).toFixed(1).padStart(7)} kB  first load, gzipped (budget ${BUDGET / 1024} kB)`);
if (total > BUDGET) {
  console.error('the first load is over its budget');
  process.exit(1);
}
