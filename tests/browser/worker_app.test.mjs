// The worker web app in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against a `humanping serve` this script starts on 127.0.0.1 with a fresh
// SQLite database: sign in with the worker key, see a task an agent created over REST, claim it,
// send a photo with the phone's position, and the agent reads the result with the photo.
//
//     HUMANPING_BIN=target/debug/humanping node --test tests/browser/
//
// Screenshots go to target/browser-screenshots/. The server's log goes to stderr when a test
// fails. Chromium runs with background networking off, so it talks to the loopback server only.
// Limitation: one flow, on SQLite; a cut upload's retry is tested over HTTP (tests/web_app.rs) only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.HUMANPING_BIN || join(ROOT, 'target/debug/humanping');
const CHROMIUM = process.env.HUMANPING_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.HUMANPING_SCREENSHOTS || join(ROOT, 'target/browser-screenshots');
// Where the phone says it is: Old Montreal.
const PHONE_POSITION = { latitude: 45.5075, longitude: -73.5540, accuracy: 12 };

let dir, db, server, serverLog, base, context;

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** Runs a `humanping` operator command on the test database; returns its `name: value` lines. */
function cli(...args) {
  const out = execFileSync(BIN, ['--database-url', db, ...args], {
    encoding: 'utf8',
    env: { ...process.env, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Object.fromEntries(
    out.split('\n').filter((l) => l.includes(': ')).map((l) => l.split(': ', 2)),
  );
}

async function api(method, path, key, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** A tiny JPEG whose EXIF says 45.5 N, 73.55 W, taken 2026-12-04 10:30:00. */
function jpegWithGps() {
  const tiff = [];
  const u16 = (v) => tiff.push(v & 0xff, v >> 8);
  const u32 = (v) => tiff.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24);
  const entry = (tag, kind, count, value) => { u16(tag); u16(kind); u32(count); tiff.push(...value); };
  const le32 = (v) => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >>> 24];
  tiff.push(...Buffer.from('II*\0'), ...le32(8));
  u16(2);
  entry(0x0132, 2, 20, le32(38)); // DateTime
  entry(0x8825, 4, 1, le32(58)); // GPS IFD
  u32(0);
  tiff.push(...Buffer.from('2026:12:04 10:30:00\0'));
  u16(4);
  entry(1, 2, 2, [...Buffer.from('N'), 0, 0, 0]);
  entry(2, 5, 3, le32(112));
  entry(3, 2, 2, [...Buffer.from('W'), 0, 0, 0]);
  entry(4, 5, 3, le32(136));
  u32(0);
  for (const v of [45, 30, 0, 73, 33, 0]) { u32(v); u32(1); }
  assert.equal(tiff.length, 160);
  const length = 2 + 6 + tiff.length;
  return Buffer.from([
    0xff, 0xd8, 0xff, 0xe1, length >> 8, length & 0xff,
    ...Buffer.from('Exif\0\0'), ...tiff, 0xff, 0xd9,
  ]);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'humanping-browser-'));
  db = `sqlite://${join(dir, 'humanping.db')}`;
  mkdirSync(SHOTS, { recursive: true });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  serverLog = join(dir, 'server.log');
  const log = openSync(serverLog, 'w');
  server = spawn(BIN, ['--database-url', db, 'serve', '--bind', `127.0.0.1:${port}`,
    '--proof-dir', join(dir, 'proofs')], {
    env: { PATH: process.env.PATH, HOME: dir, RUST_LOG: 'info' },
    stdio: ['ignore', log, log],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`humanping serve exited:\n${readFileSync(serverLog, 'utf8')}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('humanping serve was not healthy after 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  await context?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (process.exitCode) process.stderr.write(`server log:\n${readFileSync(serverLog, 'utf8')}\n`);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a worker claims a task on a phone and sends a photo with the position', async () => {
  const agent = cli('agent', 'create', '--name', 'browser-agent');
  cli('credit', '--agent', agent.agent_id, '--amount', '50.00');
  const worker = cli('worker', 'create', '--name', 'ana', '--lat', '45.5', '--lng', '-73.55',
    '--capabilities', 'voice,field', '--languages', 'en');

  const created = await api('POST', '/v1/tasks', agent.api_key, {
    kind: 'field',
    mission: 'Photograph the opening hours on the door of the bakery',
    location: { address: '245 Rue St-Paul O, Montreal', lat: 45.5072, lng: -73.5545, radius_m: 500 },
    response: { type: 'text' },
    proof: ['photo', 'gps'],
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const taskId = created.body.task_id;

  // A fresh profile folder, closed with the browser.
  context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  await context.grantPermissions(['geolocation'], { origin: base });
  await context.setGeolocation(PHONE_POSITION);
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Every request the pages make goes to the server under test.
  const elsewhere = [];
  context.on('request', (r) => {
    if (!r.url().startsWith(`${base}/`) && !/^(data|blob):/.test(r.url())) elsewhere.push(r.url());
  });

  // Sign in with the worker key.
  await page.goto(`${base}/app`);
  assert.match(page.url(), /\/app\/sign-in$/);
  await page.getByLabel('Your worker key').fill(worker.api_key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/app`);

  // The feed shows the task, nearest first once the position is shared.
  const card = page.locator('article.card', { hasText: 'opening hours on the door' });
  await card.waitFor();
  await page.locator('#location-status', { hasText: 'Nearest tasks first.' }).waitFor();
  await assertFitsPhone(page);
  await page.screenshot({ path: join(SHOTS, '1-feed.png'), fullPage: true });

  // Claim: the assignment page with its countdown and the submit form.
  await card.getByRole('button', { name: 'Claim this task' }).click();
  await page.waitForURL(/\/app\/assignments\/asg_/);
  await page.getByText('Your claim runs out in').waitFor();
  await page.locator('.geo-status', { hasText: 'Your location will be sent' }).waitFor();
  await page.getByLabel('Your answer').fill('Open 7:00 to 18:00, closed Mondays');
  await page.getByLabel('Photos').setInputFiles({
    name: 'door.jpg', mimeType: 'image/jpeg', buffer: jpegWithGps(),
  });
  await assertFitsPhone(page);
  await page.screenshot({ path: join(SHOTS, '2-assignment.png'), fullPage: true });

  // Send: the page shows the result as sent.
  await page.getByRole('button', { name: 'Send result' }).click();
  await page.getByText('Status: submitted').waitFor();
  await page.screenshot({ path: join(SHOTS, '3-sent.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no script errors on the pages');
  assert.deepEqual(elsewhere, [], 'requests to other hosts');

  // The agent reads the answer, the device position, and the photo with its EXIF data.
  const task = await api('GET', `/v1/tasks/${taskId}`, agent.api_key);
  assert.equal(task.status, 200);
  assert.equal(task.body.status, 'completed', JSON.stringify(task.body));
  const [result] = task.body.results;
  assert.equal(result.answer, 'Open 7:00 to 18:00, closed Mondays');
  assert.equal(result.proof.lat, PHONE_POSITION.latitude);
  assert.equal(result.proof.lng, PHONE_POSITION.longitude);
  assert.equal(result.photos.length, 1);
  const [photo] = result.photos;
  assert.equal(photo.exif_lat, 45.5);
  assert.equal(photo.exif_lng, -73.55);
  assert.equal(photo.exif_taken_at, '2026-12-04 10:30:00');
  assert.deepEqual(result.proof.photo_urls, [photo.url]);
  const fetched = await fetch(`${base}${photo.url}`, {
    headers: { authorization: `Bearer ${agent.api_key}` },
  });
  assert.equal(fetched.status, 200);
  assert.equal(fetched.headers.get('content-type'), 'image/jpeg');
  assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), jpegWithGps());
  const asWorker = await fetch(`${base}${photo.url}`, {
    headers: { authorization: `Bearer ${worker.api_key}` },
  });
  assert.equal(asWorker.status, 401);

});

/** Nothing on the page is wider than the phone's screen, and the text is readable. */
async function assertFitsPhone(page) {
  const layout = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > width + 1)
      .map((el) => el.tagName.toLowerCase() + (el.className ? `.${el.className}` : ''));
    const small = [...document.querySelectorAll('p, label, button, a, td, legend')]
      .filter((el) => el.offsetParent !== null && parseFloat(getComputedStyle(el).fontSize) < 12)
      .map((el) => el.tagName.toLowerCase());
    return { width, scroll: document.documentElement.scrollWidth, wide, small };
  });
  assert.equal(layout.width, 360);
  assert.equal(layout.scroll, layout.width, `the page scrolls sideways: ${layout.wide.join(', ')}`);
  assert.deepEqual(layout.wide, [], 'elements wider than the screen');
  assert.deepEqual(layout.small, [], 'text smaller than 12 px');
}
