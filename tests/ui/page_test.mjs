// The page of `dfnet ui` in a real browser (issue 24 item 5): Debian's chromium, headless,
// driven by puppeteer-core (tests/ui/package.json, installed by scripts/deps.sh into
// .deps/node; it never downloads a browser). Run by tests/ui/test_ui.c against a live
// fabric:
//
//   node tests/ui/page_test.mjs URL SCREENSHOT
//
// with the environment saying what the fabric holds: DFNET_UI_HOST (the host's name and
// one of its labels, "rack=r1"), DFNET_UI_BOUND (a node's moniker and the driver it is
// bound to, "dev.lab-ui.pci.00_05_0 virtio-rng"), DFNET_UI_UNBOUND (a node no driver
// matched), DFNET_UI_LEASE (the holder of a lease and a node it covers), DFNET_UI_PROBE (a
// node the C test adds once this script prints "READY"),
// DFNET_NODE_DIR (where puppeteer-core is installed), CHROMIUM (default /usr/bin/chromium).
// Asserts the hosts table, the node tree, a bind-why answer, then that the added node
// shows up in the event feed and in the tree without a reload; saves a full-page
// screenshot to SCREENSHOT and prints its path. Exit 0: every assertion held; 1: one did
// (a screenshot of the failure is saved as SCREENSHOT with "-failed" before ".png").
import { createRequire } from 'node:module';
import process from 'node:process';

const [url, shot] = process.argv.slice(2);
if (!url || !shot) {
  console.error('usage: node page_test.mjs URL SCREENSHOT');
  process.exit(2);
}
const env = name => {
  const v = process.env[name];
  if (!v) { console.error(`page_test: ${name} is not set`); process.exit(2); }
  return v;
};
const [hostName, hostLabel] = env('DFNET_UI_HOST').split(' ');
const [boundNode, boundDriver] = env('DFNET_UI_BOUND').split(' ');
const unboundNode = env('DFNET_UI_UNBOUND');
const probeNode = env('DFNET_UI_PROBE');
const [leaseHolder, leaseNode] = env('DFNET_UI_LEASE').split(' ');
const require = createRequire(`${env('DFNET_NODE_DIR')}/package.json`);
const puppeteer = require('puppeteer-core');

const WAIT_MS = 30000;

function check(cond, what) {
  if (!cond) throw new Error(`assertion failed: ${what}`);
  console.log(`ok: ${what}`);
}

// The text of the cell `cls` of the row `rowSelector`.
async function cell(page, rowSelector, cls) {
  return page.$eval(`${rowSelector} td.${cls}`, e => e.textContent.trim());
}

async function run(page) {
  const errors = [];
  page.on('pageerror', e => errors.push(String(e)));
  page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });

  const answer = await page.goto(url, {waitUntil: 'domcontentloaded'});
  check(answer.status() === 200, `the page answers 200 (got ${answer.status()})`);
  check(!page.url().includes('token='), 'the token is taken out of the address bar');

  // hosts
  const hostRow = `#hosts tr[data-host="${hostName}"]`;
  await page.waitForSelector(hostRow, {timeout: WAIT_MS});
  check(await cell(page, hostRow, 'name') === hostName, `host row ${hostName}`);
  check((await cell(page, hostRow, 'state')).startsWith('online'), `${hostName} is online`);
  check((await cell(page, hostRow, 'labels')).includes(hostLabel), `${hostName} has label ${hostLabel}`);
  check(/^\d{4}-\d\d-\d\d /.test(await cell(page, hostRow, 'cert')), `${hostName}'s certificate expiry is shown`);

  // the node tree: the RNG bound to its driver, its child with class rng
  const boundRow = `#trees tr[data-moniker="${boundNode}"]`;
  await page.waitForSelector(boundRow, {timeout: WAIT_MS});
  check(await page.$eval(boundRow, e => e.dataset.state) === 'bound', `${boundNode} is bound`);
  check(await cell(page, boundRow, 'driver') === boundDriver, `${boundNode}'s driver is ${boundDriver}`);
  const classes = await page.$$eval('#trees td.class', cs => cs.map(c => c.textContent));
  check(classes.includes('class/rng/000'), 'a node has class path class/rng/000');

  // the feed's backlog: the fleet coming up before the page was opened
  const boundEvent = `#events li[data-kind="NODE_BOUND"][data-subject="${boundNode}"]`;
  await page.waitForSelector(boundEvent, {timeout: WAIT_MS});
  check(true, `the event feed shows NODE_BOUND ${boundNode}`);
  check(await page.$(`#events li[data-kind="HOST_CONNECTED"][data-subject="${hostName}"]`) !== null,
        `the event feed shows HOST_CONNECTED ${hostName}`);

  // leases: the table and the node's badge
  const leaseRows = await page.$$eval('#leases tbody tr[data-lease]', rows => rows.map(r => r.textContent));
  check(leaseRows.some(t => t.includes(leaseHolder) && t.includes(leaseNode)),
        `a lease of ${leaseHolder} covers ${leaseNode}`);
  check((await cell(page, boundRow, 'state')).includes(leaseHolder), `${boundNode} shows its lease`);

  // why a node is unbound, one click away
  const unboundRow = `#trees tr[data-moniker="${unboundNode}"]`;
  check(await page.$eval(unboundRow, e => e.dataset.state) === 'unbound', `${unboundNode} is unbound`);
  // (clicked inside the page: a refresh may replace the row between a lookup and a click)
  await page.$eval(`${unboundRow} button.why-btn`, b => b.click());
  const why = `#trees [data-why="${unboundNode}"] table.traces tbody tr`;
  await page.waitForSelector(why, {timeout: WAIT_MS});
  const traces = await page.$$eval(why, rows => rows.map(r => r.textContent));
  check(traces.some(t => t.includes(boundDriver) && t.includes('NO_MATCH')),
        `bind why ${unboundNode}: ${boundDriver} did not match (${traces.length} traces)`);

  // the feed is live; a change on the fabric shows without a reload
  await page.waitForSelector('#live[data-state="live"]', {timeout: WAIT_MS});
  await page.evaluate(() => { window.__sameDocument = 42; });
  console.log('READY'); // the C test adds DFNET_UI_PROBE now
  const probeEvent = `#events li[data-kind="NODE_ADDED"][data-subject="${probeNode}"]`;
  await page.waitForSelector(probeEvent, {timeout: WAIT_MS});
  check(true, `the event feed shows NODE_ADDED ${probeNode}`);
  const probeRow = `#trees tr[data-moniker="${probeNode}"]`;
  await page.waitForSelector(probeRow, {timeout: WAIT_MS});
  check(await page.$eval(probeRow, e => e.dataset.state) === 'unbound', `${probeNode} is in the tree`);
  check(await page.evaluate(() => window.__sameDocument) === 42, 'the page was not reloaded');
  check(errors.length === 0, `no script errors (${errors.join('; ')})`);
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [...(process.getuid() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage',
         '--font-render-hinting=none'],
  defaultViewport: {width: 1600, height: 1000},
});
let rc = 0;
const page = await browser.newPage();
try {
  await run(page);
  await page.screenshot({path: shot, fullPage: true});
  console.log(`screenshot: ${shot}`);
} catch (e) {
  console.error(`page_test: ${e.message}`);
  const failed = shot.replace(/\.png$/, '-failed.png');
  await page.screenshot({path: failed, fullPage: true}).catch(() => {});
  console.error(`page_test: the page as it was: ${failed}`);
  rc = 1;
}
await browser.close();
process.exit(rc);
