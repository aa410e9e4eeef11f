// The web console end to end, in Debian's headless Chromium, against two
// real nodes (a district with generated data and a street that syncs with
// it over libp2p): every figure the page shows is checked against the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNodes, launch, login, show, ready, apiGet } from './harness.mjs';

let nodes;
let browser;

before(async () => {
  nodes = await startNodes();
  browser = await launch();
});

after(async () => {
  if (browser) await browser.close();
  if (nodes) await nodes.stop();
});

const figure = async (page, id) => Number((await page.textContent(`[data-figure="${id}"] .n`)).replace(/[^\d]/g, ''));

test('the overview renders the district figures the API gives', async () => {
  const page = await login(browser, nodes.district, 'admin');
  const stats = (await apiGet(nodes.district, '/v1/view/stats?by=street')).stats;
  const units = (await apiGet(nodes.district, '/v1/view/units')).units;
  const problems = stats.filter((r) => r.list === 'problem');
  const found = problems.reduce((a, r) => a + r.count, 0);
  const resolved = problems.filter((r) => ['resolved', 'closed'].includes(r.status)).reduce((a, r) => a + r.count, 0);
  const openNeeds = stats.filter((r) => r.list === 'need' && r.status === 'open').reduce((a, r) => a + r.count, 0);
  assert.ok(found > 0, 'the demo data has problems');
  assert.equal(await figure(page, 'problems_found'), found);
  assert.equal(await figure(page, 'problems_resolved'), resolved);
  assert.equal(await figure(page, 'open_needs'), openNeeds);
  assert.equal(await figure(page, 'units'), units.length);
  assert.equal(await figure(page, 'kind-community'), units.filter((u) => u.kind === 'community').length);
  // The chart: one group per street with problems, its bars' figures
  // summing to the totals.
  const bars = await page.$$eval('svg[data-chart="problems"] g[data-area]', (gs) => gs.map((g) => ({
    area: g.getAttribute('data-area'), found: Number(g.getAttribute('data-found')), resolved: Number(g.getAttribute('data-resolved')),
  })));
  assert.equal(bars.length, new Set(problems.map((r) => r.area)).size);
  assert.equal(bars.reduce((a, b) => a + b.found, 0), found);
  assert.equal(bars.reduce((a, b) => a + b.resolved, 0), resolved);
  // Chinese first: the navigation and the unit's name.
  assert.equal(await page.textContent('nav a[data-page="overview"]'), '总览');
  assert.equal(await page.textContent('#unit-name'), '南京市鼓楼区');
  // English on request, numbers unchanged.
  await page.click('#lang');
  await ready(page, 'overview');
  assert.equal(await page.textContent('nav a[data-page="overview"]'), 'Overview');
  assert.equal(await figure(page, 'problems_found'), found);
  await page.click('#lang');
  await page.context().close();
});

const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);

test('a wrong password is refused in Chinese and leaves no session', async () => {
  const ctx = await browser.newContext({ locale: 'zh-CN' });
  const page = await ctx.newPage();
  await page.goto(nodes.district.api + '/');
  await page.fill('#login-name', 'li');
  await page.fill('#login-password', 'not-the-password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.equal(await page.textContent('#login-error'), '用户名或密码错误');
  assert.equal((await ctx.cookies()).length, 0);
  await ctx.close();
});

test('a filter and a Chinese search narrow the list to what the API returns (on a tablet)', async () => {
  const page = await login(browser, nodes.district, 'li', { width: 820, height: 1180 });
  assert.equal(await overflows(page), false, 'the overview fits a tablet');
  await show(page, nodes.district, '#/lists?list=need', 'lists');
  assert.equal(await overflows(page), false, 'the list scrolls inside its box, not the page');
  const all = await page.$$eval('#items-table tbody tr', (rows) => rows.length);
  assert.ok(all > 1, `needs shown: ${all}`);
  await page.selectOption('#list-filters select[name="status"]', 'open');
  await page.click('#list-search');
  await ready(page, 'lists');
  // A word of the first open need's title (two Chinese characters).
  const title = await page.textContent('#items-table tbody tr:first-child td:first-child');
  const word = [...title.trim()].slice(0, 2).join('');
  assert.match(word, /^[\u4e00-\u9fff]{2}$/);
  await page.fill('#list-q', word);
  await page.click('#list-search');
  await ready(page, 'lists');
  const rows = await page.$$eval('#items-table tbody tr', (trs) => trs.map((tr) => ({
    id: tr.getAttribute('data-id'), status: tr.querySelector('[data-status]').getAttribute('data-status'),
  })));
  const expected = (await apiGet(nodes.district, `/v1/view/items?list=need&status=open&limit=50&q=${encodeURIComponent(word)}`)).items;
  assert.ok(rows.length > 0 && rows.length < all, `${rows.length} of ${all}`);
  assert.deepEqual(rows.map((r) => r.id), expected.map((i) => i.id));
  assert.ok(rows.every((r) => r.status === 'open'));
  // A viewer sees no writes: no add page, no row actions.
  assert.equal(await page.$('nav a[data-page="write"]'), null);
  assert.equal(await page.$('#items-table [data-action]'), null);
  // And the API refuses a viewer's write whatever the page does.
  const status = await page.evaluate(async () => (await fetch('/v1/items', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Gongjian-Console': '1' },
    body: JSON.stringify({ list: 'need', title: '越权' }),
  })).status);
  assert.equal(status, 403);
  await page.context().close();
});

test('a need written on the street console appears in the district list after sync, naming its person', async () => {
  const street = await login(browser, nodes.street, 'wangfang');
  await show(street, nodes.street, '#/write', 'write');
  assert.match(await street.textContent('#acting-as'), /测试街道/);
  assert.match(await street.textContent('#acting-as'), /王芳/);
  const title = `社区食堂志愿者招募 ${Date.now() % 100000}`;
  await street.fill('#write-title', title);
  await street.fill('#write-category', '养老');
  await street.click('#write-submit');
  await ready(street, 'lists');
  await street.waitForSelector(`#items-table tbody tr:has-text("${title}")`);

  const district = await login(browser, nodes.district, 'admin');
  const hash = `#/lists?list=need&q=${encodeURIComponent(title)}`;
  let row = null;
  for (let i = 0; i < 60 && !row; i++) {
    await show(district, nodes.district, hash, 'lists');
    row = await district.$(`#items-table tbody tr:has-text("${title}")`);
    if (!row) await new Promise((r) => setTimeout(r, 1000));
  }
  assert.ok(row, 'the street\'s need reached the district console');
  const cells = await row.$$eval('td', (tds) => tds.map((td) => td.textContent));
  assert.match(cells[1], /测试街道/);
  assert.equal(cells[5], '王芳');
  assert.match(cells[8], /测试街道/);
  // The street's audit log names the person and the record written.
  const admin = await login(browser, nodes.street, 'admin');
  await show(admin, nodes.street, '#/audit', 'audit');
  const audit = await admin.$$eval('#audit-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  const id = await row.getAttribute('data-id');
  assert.ok(audit.some((e) => e[1] === 'wangfang' && e[3] === 'POST /v1/items' && e[5] === id), JSON.stringify(audit.slice(0, 5)));
  for (const p of [street, district, admin]) await p.context().close();
});

test('the monthly report shows the report endpoint figures and prints', async () => {
  const page = await login(browser, nodes.district, 'admin');
  const month = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 7);
  await show(page, nodes.district, `#/report?month=${month}`, 'report');
  const r = await apiGet(nodes.district, `/v1/view/report?month=${month}`);
  const levels = await page.$$eval('#report table:first-of-type tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(levels.length, r.problems.length + 1);
  assert.equal(Number(levels.at(-1)[1].replace(/\D/g, '')), r.problems.reduce((a, l) => a + l.found, 0));
  assert.equal(Number(levels.at(-1)[2].replace(/\D/g, '')), r.problems.reduce((a, l) => a + l.resolved, 0));
  assert.match(await page.textContent('#report h1'), /南京市鼓楼区.*共建工作月报/);
  const pdf = await page.pdf({ format: 'A4' });
  assert.ok(pdf.length > 10_000, `pdf ${pdf.length} bytes`);
  await page.context().close();
});

test('units and sync: the street shows connected, unknown is never counted as in sync', async () => {
  const page = await login(browser, nodes.district, 'admin');
  let tag = null;
  for (let i = 0; i < 30; i++) {
    await show(page, nodes.district, '#/units?q=测试街道', 'units');
    tag = await page.textContent('#units-table tr[data-unit="320106099000"] td:nth-child(9)');
    if (tag && tag.trim() === '直连') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.equal(tag.trim(), '直连');
  await show(page, nodes.district, '#/units', 'units');
  const units = (await apiGet(nodes.district, '/v1/view/units')).units;
  const synced = new Set((await apiGet(nodes.district, '/v1/node')).peers.filter((p) => p.last_synced !== null).map((p) => p.unit));
  const states = await page.$$eval('#units-table [data-sync]', (els) => els.map((e) => e.getAttribute('data-sync')));
  assert.equal(states.length, units.length);
  // Unknown: neither heard from nor synced with; none of those shows in sync.
  const unknown = units.filter((u) => u.unit !== '320106000000' && u.last_heard === null && !synced.has(u.unit)).length;
  assert.ok(unknown > 0, 'generated units never heard from');
  assert.equal(states.filter((s) => s === 'unknown').length, unknown);
  assert.equal(states.filter((s) => s === 'in_sync').length + states.filter((s) => s === 'behind').length + unknown + 1, units.length);
  await page.context().close();
});

test('an operator claims a project from its row; the claim names the person', async () => {
  const page = await login(browser, nodes.district, 'zhou');
  await show(page, nodes.district, '#/lists?list=project&claimed=false&status=open', 'lists');
  const row = await page.$('#items-table tbody tr:has([data-action="claim"])');
  assert.ok(row, 'an open, unclaimed project of another unit');
  const id = await row.getAttribute('data-id');
  page.once('dialog', (d) => d.accept('区级认领'));
  await row.$eval('[data-action="claim"]', (b) => b.click());
  // The list re-renders without it (it is claimed now).
  await page.waitForSelector(`#items-table tbody tr[data-id="${id}"]`, { state: 'detached' });
  await ready(page, 'lists');
  const item = await apiGet(nodes.district, `/v1/view/items/${id}`);
  assert.equal(item.claimed, true);
  const claim = item.acts.find((a) => a.kind === 'claim' && a.unit === '320106000000');
  assert.ok(claim, JSON.stringify(item.acts));
  assert.equal(claim.by, '周科员');
  assert.equal(claim.note, '区级认领');
  await show(page, nodes.district, `#/lists?list=project&claimed=true&q=${encodeURIComponent(item.title)}`, 'lists');
  assert.match(await page.textContent(`#items-table tbody tr[data-id="${id}"] .acts`), /周科员/);
  // Cancel at the note's prompt writes nothing.
  await show(page, nodes.district, '#/lists?list=project&claimed=false&status=open', 'lists');
  const other = await page.$('#items-table tbody tr:has([data-action="claim"])');
  const otherId = await other.getAttribute('data-id');
  page.once('dialog', (d) => d.dismiss());
  await other.$eval('[data-action="claim"]', (b) => b.click());
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await apiGet(nodes.district, `/v1/view/items/${otherId}`)).claimed, false);
  await page.context().close();
});

// Token writes on the district, as its scripts make them.
async function apiPost(node, path, body) {
  const r = await fetch(node.api + path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${node.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function until(what, f) {
  for (let i = 0; i < 60; i++) {
    const v = await f();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('the street answers the district\'s whistle and signs its agreement from the console', async () => {
  const whistle = await apiPost(nodes.district, '/v1/whistles', { title: '防汛应急吹哨', levels: ['street'] });
  const now = Math.floor(Date.now() / 1000);
  const agreement = await apiPost(nodes.district, '/v1/agreements', {
    title: '区街共建协议', parties: ['320106099000'], start: now - 86400, end: now + 300 * 86400, services: ['应急物资'],
  });
  const page = await login(browser, nodes.street, 'wangfang');
  // The whistle reaches the street by sync; it reports (报到) from its row.
  const row = await until('the whistle on the street', async () => {
    await show(page, nodes.street, `#/lists?list=whistle&q=${encodeURIComponent('防汛应急')}`, 'lists');
    return page.$(`#items-table tbody tr[data-id="${whistle.id}"] [data-action="respond"]`);
  });
  page.once('dialog', (d) => d.accept('街道已报到'));
  await row.click();
  await page.waitForSelector(`#items-table tbody tr[data-id="${whistle.id}"] .acts li`);
  // The agreement too; the street signs it.
  const sign = await until('the agreement on the street', async () => {
    await show(page, nodes.street, '#/agreements', 'agreements');
    return page.$(`#agreements-table tr[data-id="${agreement.id}"] [data-action="sign"]`);
  });
  page.once('dialog', (d) => d.accept(''));
  await sign.click();
  await page.waitForSelector(`#agreements-table tr[data-id="${agreement.id}"] [data-action="sign"]`, { state: 'detached' });
  // Both come back to the district, naming the street's person.
  const answered = await until('the response at the district', async () => {
    const it = await apiGet(nodes.district, `/v1/view/items/${whistle.id}`);
    return it.acts.find((a) => a.kind === 'response' && a.unit === '320106099000');
  });
  assert.equal(answered.by, '王芳');
  assert.equal(answered.note, '街道已报到');
  await until('the street\'s signature at the district', async () => {
    const a = await apiGet(nodes.district, `/v1/view/agreements/${agreement.id}`);
    return a.party_signatures.find((p) => p.unit === '320106099000').signed;
  });
  // The district signs too: the agreement is in force.
  const both = await apiPost(nodes.district, `/v1/agreements/${agreement.id}/sign`, {});
  assert.equal(both.status, 'active');
  await page.context().close();
});
