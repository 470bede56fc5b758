// reports.test.mjs: the report and activity pages in headless Debian chromium (playwright-core).
// tests/integration/test_reports.py seeds its scenario and runs this with:
//   CASETRAIL_URL, CASETRAIL_SUPERVISOR / _PASSWORD   the server and a supervisor
//   CASETRAIL_SEED      JSON: {from, to, days, agent, agent_actions}
//   CASETRAIL_ARTIFACTS where reports.png and activity.png go
// Checks that the range in the address is the one asked for, that each day of the range is a bar
// of the chart, that the people table links to a person's activity and that page lists their
// actions; no page error, no dialog. A watchdog ends the run after 60 s.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) { console.error(`${name} is not set (run through tests/integration/test_reports.py)`); process.exit(2); }
  return v;
};
const BASE = env('CASETRAIL_URL');
const SUP = env('CASETRAIL_SUPERVISOR');
const SUP_PW = env('CASETRAIL_SUPERVISOR_PASSWORD');
const SEED = JSON.parse(env('CASETRAIL_SEED'));
const ARTIFACTS = process.env.CASETRAIL_ARTIFACTS || path.join(process.cwd(), 'artifacts');
const T = 10000;
const started = Date.now();
setTimeout(() => { console.error('FAIL: the reports browser test ran past 60 s'); process.exit(1); }, 60000).unref();
mkdirSync(ARTIFACTS, { recursive: true });

function log(msg) { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`); }
function assert(cond, msg) { if (!cond) throw new Error(msg); }

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'], timeout: 30000 });
let code = 0;
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('dialog', async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });

  log('step: sign in as the supervisor');
  await page.goto(`${BASE}/#/queue`, { timeout: T });
  await page.getByLabel('Name').fill(SUP, { timeout: T });
  await page.getByLabel('Password').fill(SUP_PW);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Queue', level: 1 }).waitFor({ timeout: T });

  log('step: the Reports link, then a range in the address');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reports' }).click();
  await page.getByRole('heading', { name: 'Reports', level: 1 }).waitFor({ timeout: T });
  await page.goto(`${BASE}/#/reports?from=${SEED.from}&to=${SEED.to}`, { timeout: T });
  const chart = page.locator('figure.chart-box', { hasText: 'Tickets created per day' });
  await chart.waitFor({ timeout: T });
  assert(await page.getByLabel('From').inputValue() === SEED.from, 'the form does not show from');
  const bars = await chart.locator('svg rect.chart-bar').count();
  assert(bars === SEED.days.length, `the chart has ${bars} bars, the range ${SEED.days.length} days`);
  const labels = await chart.locator('svg text.chart-label').allTextContents();
  assert(JSON.stringify(labels) === JSON.stringify(SEED.days.map((d) => d.day)), `day labels ${labels}`);
  const values = await chart.locator('svg text.chart-value').allTextContents();
  assert(JSON.stringify(values) === JSON.stringify(SEED.days.map((d) => String(d.created))), `values ${values}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'reports.png'), fullPage: true });

  log('step: a person\'s activity from the people table');
  await page.getByRole('table', { name: 'Per staff member' }).getByRole('link', { name: SEED.agent }).click();
  await page.getByRole('heading', { name: `Activity of ${SEED.agent}`, level: 1 }).waitFor({ timeout: T });
  await page.locator('li.activity-item').first().waitFor({ timeout: T });
  const n = await page.locator('li.activity-item').count();
  assert(n === SEED.agent_actions, `the activity lists ${n} actions, expected ${SEED.agent_actions}`);
  assert(page.url().includes(`from=${SEED.from}`) && page.url().includes(`to=${SEED.to}`), `the range was lost: ${page.url()}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'activity.png'), fullPage: true });
  assert(problems.length === 0, `page errors or dialogs: ${problems.join('; ')}`);
  log('ok');
} catch (e) {
  console.error(`FAIL: ${e && e.stack ? e.stack : e}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
