// Real nodes for the console's browser tests and screenshots: a district
// node with generated demo data, and a street enrolled under it running
// as a second daemon; they sync over libp2p on loopback. Users are added
// with `gongjian user add`, as an IT officer would.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const target = process.env.CARGO_TARGET_DIR || join(process.env.HOME, '.cache/gongjian/target');
export const BIN = process.env.GONGJIAN_BIN || join(target, 'debug/gongjian');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const PASSWORDS = {
  admin: 'district-admin-2026',
  wangfang: 'street-operator-2026',
  li: 'district-viewer-2026',
  zhou: 'district-operator-2026',
};

function gj(args, input) {
  return execFileSync(BIN, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function addUser(dir, name, role, display) {
  gj(['user', 'add', '--data-dir', dir, name, '--role', role, '--display-name', display, '--json'], `${PASSWORDS[name]}\n`);
}

// Starts `gongjian run`; resolves with its API base once it prints its
// JSON line.
function run(dir, log) {
  const child = spawn(BIN, ['run', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GONGJIAN_LOG: 'info,automerge=warn' } });
  const err = [];
  child.stderr.on('data', (d) => { err.push(d); if (log) process.stderr.write(d); });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      const v = JSON.parse(line);
      resolve({ child, api: `http://${v.api}`, unit: v.unit });
    });
    child.once('exit', (code) => reject(new Error(`gongjian run ${dir} exited ${code}: ${Buffer.concat(err).toString().slice(-2000)}`)));
  });
}

// A free TCP port base for this run (the ports base+0..base+3).
function portBase() {
  return 20000 + Math.floor(Math.random() * 20000);
}

export async function startNodes({ profile = 'small', seed = 3 } = {}) {
  const work = mkdtempSync(join(tmpdir(), 'gongjian-console-'));
  const base = portBase();
  const district = join(work, 'district');
  const street = join(work, 'street');
  gj(['demo', 'generate', '--profile', profile, '--seed', String(seed), '--out', district,
    '--api', `127.0.0.1:${base}`, '--listen', `/ip4/127.0.0.1/tcp/${base + 1}`, '--json']);
  const id = JSON.parse(gj(['id', '--data-dir', district]));
  gj(['init', '--data-dir', street, '--unit', '320106099000', '--kind', 'street', '--name', '测试街道',
    '--parent', id.unit, '--trust-root', id.trust_root, '--listen', `/ip4/127.0.0.1/tcp/${base + 3}`,
    '--bootstrap', `/ip4/127.0.0.1/tcp/${base + 1}`, '--api', `127.0.0.1:${base + 2}`]);
  const key = JSON.parse(gj(['id', '--data-dir', street])).public_key;
  gj(['cert', 'issue', '--data-dir', district, '--unit', '320106099000', '--kind', 'street', '--name', '测试街道',
    '--key', key, '--out', join(work, 'street.cert')]);
  gj(['cert', 'install', '--data-dir', street, join(work, 'street.cert')]);
  addUser(district, 'admin', 'administrator', '张主任');
  addUser(district, 'li', 'viewer', '李明');
  addUser(district, 'zhou', 'operator', '周科员');
  addUser(street, 'admin', 'administrator', '赵科长');
  addUser(street, 'wangfang', 'operator', '王芳');
  const d = await run(district, process.env.GONGJIAN_TEST_LOG);
  const s = await run(street, process.env.GONGJIAN_TEST_LOG);
  const token = (dir) => readFileSync(join(dir, 'api.token'), 'utf8').trim();
  const nodes = {
    work,
    district: { ...d, dir: district, token: token(district), name: '南京市鼓楼区' },
    street: { ...s, dir: street, token: token(street), name: '测试街道' },
    async stop() {
      for (const n of [nodes.district, nodes.street]) {
        if (n.child.exitCode === null) {
          n.child.kill('SIGTERM');
          await new Promise((r) => n.child.once('exit', r));
        }
      }
      if (!process.env.GONGJIAN_KEEP) rmSync(work, { recursive: true, force: true });
    },
  };
  return nodes;
}

// The API with the node's token (what the test checks the page against).
export async function apiGet(node, path) {
  const r = await fetch(node.api + path, { headers: { Authorization: `Bearer ${node.token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

// A new browser context logged in to `node` as `name`.
export async function login(browser, node, name, viewport = { width: 1366, height: 900 }) {
  const ctx = await browser.newContext({ viewport, locale: 'zh-CN', timezoneId: 'Asia/Shanghai' });
  const page = await ctx.newPage();
  await page.goto(node.api + '/');
  await page.fill('#login-name', name);
  await page.fill('#login-password', PASSWORDS[name]);
  await page.click('#login-submit');
  await ready(page, 'overview');
  return page;
}

// Waits for the page to finish rendering `name`; a page that failed
// throws with what it showed.
export async function ready(page, name) {
  try {
    await page.waitForSelector(`main[data-ready="${name}"], main[data-ready="error"]`);
  } catch (e) {
    const shown = await page.evaluate(() => `${location.href}: ${document.getElementById('main').innerText.slice(0, 300)}`);
    throw new Error(`page ${name} never rendered: ${shown}`);
  }
  const state = await page.getAttribute('main', 'data-ready');
  if (state === 'error') throw new Error(`page ${name}: ${await page.textContent('#page-error')}`);
}

export async function show(page, node, hash, name) {
  const url = `${node.api}/console/${hash}`;
  const again = page.url() === url;
  await page.evaluate(() => document.getElementById('main').removeAttribute('data-ready'));
  await page.goto(url);
  // The same address again changes no hash: ask the page to render anew.
  if (again) await page.evaluate(() => window.dispatchEvent(new HashChangeEvent('hashchange')));
  await ready(page, name);
}

export { here };
