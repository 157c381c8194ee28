// The worker web app in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against a `humanping serve` this script starts on 127.0.0.1 with a fresh
// SQLite database: an agent creates a task through MCP (`humanping mcp`, spoken to as
// newline-delimited JSON-RPC on its stdio, as Claude Desktop does), a worker signs in with their
// key, sees the task, claims it, sends a photo with the phone's position, and the agent gets the
// answer through MCP and reads the photo as an MCP resource.
//
//     HUMANPING_BIN=target/debug/humanping node --test tests/browser/
//
// Screenshots of each step go to target/browser-screenshots/. The logs of the server and of the
// MCP process go to stderr when a test fails. Chromium runs with background networking off, so it talks to the loopback server only.
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

let dir, db, server, serverLog, base, context, mcp;

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

/**
 * An MCP client over the stdio of a `humanping mcp` process it starts: one JSON-RPC message per
 * line each way. Anything on stdout that is not a JSON-RPC message is kept and fails the test.
 */
class McpStdio {
  constructor(args, env, logPath) {
    this.logPath = logPath;
    this.child = spawn(BIN, args, { env, stdio: ['pipe', 'pipe', openSync(logPath, 'w')] });
    this.nextId = 1;
    this.pending = new Map();
    this.notifications = [];
    this.garbage = [];
    this.exited = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
    this.exited.then(({ code, signal }) => {
      for (const { fail } of this.pending.values()) {
        fail(new Error(`humanping mcp exited (${code ?? signal}):\n${readFileSync(logPath, 'utf8')}`));
      }
      this.pending.clear();
    });
    let buffer = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      buffer += chunk;
      for (let end; (end = buffer.indexOf('\n')) >= 0;) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line.trim()) this.receive(line);
      }
    });
  }

  receive(line) {
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      this.garbage.push(line);
      return;
    }
    if (message?.jsonrpc !== '2.0') {
      this.garbage.push(line);
    } else if (message.id !== undefined && this.pending.has(message.id) && !message.method) {
      const { ok } = this.pending.get(message.id);
      this.pending.delete(message.id);
      ok(message);
    } else {
      this.notifications.push(message);
    }
  }

  send(message) {
    this.child.stdin.write(`${JSON.stringify(message)}\n`);
  }

  /** Sends a request; resolves with the whole response message (result or error). */
  request(method, params = {}, timeoutMs = 30_000) {
    const id = this.nextId++;
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        fail(new Error(`no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        ok: (m) => { clearTimeout(timer); ok(m); },
        fail: (e) => { clearTimeout(timer); fail(e); },
      });
      this.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  notify(method, params) {
    this.send({ jsonrpc: '2.0', method, ...(params ? { params } : {}) });
  }

  /** Calls a tool that must succeed; returns the whole tool result. */
  async callTool(name, args) {
    const response = await this.request('tools/call', { name, arguments: args });
    assert.equal(response.error, undefined, `${name}: ${JSON.stringify(response.error)}`);
    assert.equal(response.result.isError, false, `${name}: ${JSON.stringify(response.result)}`);
    return response.result;
  }

  /** Closes stdin, as a client does when it is done, and waits for the process to exit. */
  async close() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    const timeout = new Promise((r) => setTimeout(r, 10_000, 'timeout'));
    if ((await Promise.race([this.exited, timeout])) === 'timeout') {
      this.child.kill('SIGTERM');
      await this.exited;
    }
  }
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
  await mcp?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (process.exitCode) {
    process.stderr.write(`server log:\n${readFileSync(serverLog, 'utf8')}\n`);
    if (mcp) process.stderr.write(`MCP log:\n${readFileSync(mcp.logPath, 'utf8')}\n`);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a worker claims a task on a phone and sends a photo with the position', async () => {
  const agent = cli('agent', 'create', '--name', 'browser-agent');
  cli('credit', '--agent', agent.agent_id, '--amount', '50.00');
  const worker = cli('worker', 'create', '--name', 'ana', '--lat', '45.5', '--lng', '-73.55',
    '--capabilities', 'voice,field', '--languages', 'en');

  // The agent's MCP client starts `humanping mcp` the way Claude Desktop does, with its key in
  // the environment, and creates the task with the `field` tool.
  mcp = new McpStdio(
    ['--database-url', db, 'mcp', '--proof-dir', join(dir, 'proofs')],
    { PATH: process.env.PATH, HOME: dir, RUST_LOG: 'info', HUMANPING_API_KEY: agent.api_key },
    join(dir, 'mcp.log'),
  );
  const init = await mcp.request('initialize', {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'browser-test', version: '0' },
  });
  assert.equal(init.result?.serverInfo?.name, 'humanping', JSON.stringify(init));
  mcp.notify('notifications/initialized');
  const created = await mcp.callTool('field', {
    mission: 'Photograph the opening hours on the door of the bakery',
    location: { address: '245 Rue St-Paul O, Montreal', lat: 45.5072, lng: -73.5545, radius_m: 500 },
    response: { type: 'text' },
    proof: ['photo', 'gps'],
    wait_seconds: 0,
  });
  assert.equal(created.structuredContent.status, 'open', JSON.stringify(created));
  const taskId = created.structuredContent.task_id;

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
  await assertFitsPhone(page);
  await page.screenshot({ path: join(SHOTS, '1-sign-in.png'), fullPage: true });
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/app`);

  // The feed shows the task, nearest first once the position is shared.
  const card = page.locator('article.card', { hasText: 'opening hours on the door' });
  await card.waitFor();
  await page.locator('#location-status', { hasText: 'Nearest tasks first.' }).waitFor();
  await assertFitsPhone(page);
  await page.screenshot({ path: join(SHOTS, '2-feed.png'), fullPage: true });

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
  await page.screenshot({ path: join(SHOTS, '3-assignment.png'), fullPage: true });

  // Send: the page shows the result as sent.
  await page.getByRole('button', { name: 'Send result' }).click();
  await page.getByText('Status: submitted').waitFor();
  await page.screenshot({ path: join(SHOTS, '4-sent.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no script errors on the pages');
  assert.deepEqual(elsewhere, [], 'requests to other hosts');

  // Through MCP, the agent gets the answer, the device position, and the photo with its EXIF
  // data and a resource link to it.
  const got = await mcp.callTool('get_task', { task_id: taskId, wait_seconds: 10 });
  const task = got.structuredContent;
  assert.equal(task.status, 'completed', JSON.stringify(task));
  assert.equal(task.answer, 'Open 7:00 to 18:00, closed Mondays');
  const [result] = task.results;
  assert.equal(result.answer, 'Open 7:00 to 18:00, closed Mondays');
  assert.equal(result.proof.lat, PHONE_POSITION.latitude);
  assert.equal(result.proof.lng, PHONE_POSITION.longitude);
  assert.equal(result.photos.length, 1);
  const [photo] = result.photos;
  assert.equal(photo.exif_lat, 45.5);
  assert.equal(photo.exif_lng, -73.55);
  assert.equal(photo.exif_taken_at, '2026-12-04 10:30:00');
  assert.deepEqual(result.proof.photo_urls, [photo.url]);
  const links = got.content.filter((c) => c.type === 'resource_link' && c.uri.includes('/proofs/'));
  assert.deepEqual(links.map((l) => [l.uri, l.mimeType]),
    [[`humanping://tasks/${taskId}/proofs/${photo.sha256}`, 'image/jpeg']]);
  const read = await mcp.request('resources/read', { uri: links[0].uri });
  assert.equal(read.error, undefined, JSON.stringify(read.error));
  const [contents] = read.result.contents;
  assert.equal(contents.mimeType, 'image/jpeg');
  assert.deepEqual(Buffer.from(contents.blob, 'base64'), jpegWithGps());
  assert.deepEqual(mcp.garbage, [], 'stdout of humanping mcp carries only JSON-RPC');

  // The same photo over HTTP, for the agent's key only.
  const fetched = await fetch(`${base}${photo.url}`, {
    headers: { authorization: `Bearer ${agent.api_key}` },
  });
  assert.equal(fetched.status, 200);
  assert.equal(fetched.headers.get('content-type'), 'image/jpeg');
  assert.deepEqual(Buffer.from(await fetched.arrayBuffer()), jpegWithGps());
  const asWorker = await fetch(`${base}${photo.url}`, {
    headers: { authorization: `Bearer ${worker.api_key}` },
  });
  assert.equal(asWorker.status, 403); // a valid key of another role
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
