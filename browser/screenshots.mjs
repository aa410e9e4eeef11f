// Screenshots of every console page, for a reviewer who does not run it:
// a generated district (DOMAIN.md's figures) and a street node syncing
// with it, in headless Chromium. Writes docs/screenshots/*.png.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startNodes, launch, login, show, here } from './harness.mjs';

const out = process.argv[2] || join(here, '..', 'docs', 'screenshots');
mkdirSync(out, { recursive: true });
const nodes = await startNodes({ profile: process.env.PROFILE || 'district', seed: 1 });
const browser = await launch();
const shots = [];
const snap = async (page, name, full = true) => {
  const path = join(out, `${name}.png`);
  await page.screenshot({ path, fullPage: full });
  shots.push(path);
};
try {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 }, locale: 'zh-CN' });
  const first = await ctx.newPage();
  await first.goto(nodes.district.api + '/');
  await first.waitForSelector('#login-name');
  await snap(first, '00-login', false);
  await ctx.close();

  // The street writes, as its operator, so that the district shows a
  // record that came by sync with the person who wrote it.
  const street = await login(browser, nodes.street, 'wangfang');
  await show(street, nodes.street, '#/write', 'write');
  await street.fill('#write-title', '社区食堂助老志愿者招募');
  await street.fill('#write-category', '养老');
  await snap(street, '07-write-street-operator', false);
  await street.click('#write-submit');
  await street.waitForSelector('main[data-ready="lists"]');

  const d = await login(browser, nodes.district, 'admin');
  await snap(d, '01-overview');
  for (let i = 0; i < 60; i++) {
    await show(d, nodes.district, '#/units?kind=street', 'units');
    const tag = await d.$('#units-table tr[data-unit="320106099000"] .tag.ok');
    if (tag) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await snap(d, '02-units-and-sync');
  await show(d, nodes.district, '#/lists?list=need', 'lists');
  await snap(d, '03-list-needs-with-matches', false);
  await show(d, nodes.district, '#/lists?list=project&urgent=true', 'lists');
  await snap(d, '04-list-urgent-projects', false);
  await show(d, nodes.district, '#/grids', 'grids');
  await d.$$eval('.tree details', (ds) => ds.slice(0, 3).forEach((x) => { x.open = true; }));
  await snap(d, '05-grids', false);
  await show(d, nodes.district, '#/agreements', 'agreements');
  await snap(d, '06-agreements', false);
  for (let i = 0; i < 60; i++) {
    await show(d, nodes.district, `#/lists?list=need&q=${encodeURIComponent('社区食堂助老')}`, 'lists');
    if (await d.$('#items-table tbody tr')) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  await snap(d, '08-synced-need-names-its-person', false);
  // Last month: a whole month of the generated history.
  const now = new Date(Date.now() + 8 * 3600e3);
  const last = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const month = last.toISOString().slice(0, 7);
  await show(d, nodes.district, `#/report?month=${month}`, 'report');
  await snap(d, '09-monthly-report');
  await d.emulateMedia({ media: 'print' });
  await snap(d, '10-monthly-report-print');
  await d.emulateMedia({ media: 'screen' });
  await show(d, nodes.district, '#/users', 'users');
  await snap(d, '11-users', false);

  const sa = await login(browser, nodes.street, 'admin');
  await show(sa, nodes.street, '#/audit', 'audit');
  await snap(sa, '12-audit-street', false);

  const tablet = await login(browser, nodes.district, 'li', { width: 820, height: 1180 });
  await snap(tablet, '13-overview-tablet-viewer', false);
  await tablet.click('#lang');
  await tablet.waitForSelector('main[data-ready="overview"]');
  await snap(tablet, '14-overview-english', false);
  console.log(shots.join('\n'));
} finally {
  await browser.close();
  await nodes.stop();
}
