// What the dashboard's browser tests stand on: a real ephd started on port 0 with its own SQLite
// state and API tokens, Debian's Chromium driven by playwright-core, console watching and test
// artefacts. Nothing here downloads a browser.
//
// EPH_BINARY_DIR (required) is the CMake build directory: ephd is $EPH_BINARY_DIR/cmd/ephd/ephd and
// artefacts go to $EPH_BINARY_DIR/test-artifacts/. EPH_BROWSER_MOCK=1 swaps ephd for
// mock-ephd.mjs: a development aid while the server side is unfinished, never what CI runs.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const WEB_DIST = join(REPO, 'web', 'dist');
export const MOCK = process.env.EPH_BROWSER_MOCK === '1';
const CHROMIUM = process.env.EPH_CHROMIUM ?? '/usr/bin/chromium';

const execFileP = promisify(execFile);

/** playwright-core comes from web/'s dependencies (one `npm ci` in web/ serves both). */
export function loadPlaywright() {
  const require = createRequire(join(REPO, 'web', 'package.json'));
  try {
    return require('playwright-core');
  } catch {
    throw new Error('playwright-core is not installed: run `npm ci` in web/ (scripts/install-deps does)');
  }
}

export function checkPrerequisites() {
  if (!existsSync(join(WEB_DIST, 'index.html'))) {
    throw new Error(`the dashboard is not built (${WEB_DIST}/index.html missing): run \`npm run build\` in web/`);
  }
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  }
  if (!MOCK && !process.env.EPH_BINARY_DIR) {
    throw new Error('EPH_BINARY_DIR is not set: it must name the build directory holding cmd/ephd/ephd');
  }
}

export function artifactsDir() {
  const dir = process.env.EPH_BINARY_DIR
    ? join(process.env.EPH_BINARY_DIR, 'test-artifacts')
    : join(tmpdir(), 'eph-test-artifacts');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function waitFor(what, fn, timeoutMs = 15000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Starts ephd on 127.0.0.1:0 with state in a fresh temporary directory and two API tokens
 * (write and read scope) created with `ephd token create` beforehand.
 */
export async function startEphd() {
  const tmp = mkdtempSync(join(tmpdir(), 'eph-browser-'));
  try {
    return await (MOCK ? startMock(tmp) : startRealEphd(tmp));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function startRealEphd(tmp) {
  const ephd = join(process.env.EPH_BINARY_DIR, 'cmd', 'ephd', 'ephd');
  if (!existsSync(ephd)) throw new Error(`${ephd} is not built`);
  const state = `sqlite:${join(tmp, 'eph.db')}`;
  // Only what this test sets: no EPH_* setting of the calling shell leaks in, and GitHub is an
  // address that refuses at once, so nothing leaves the machine.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EPH_')));
  env.EPH_GITHUB_API_URL = 'http://127.0.0.1:9';
  env.EPH_BASE_DOMAIN = 'preview.localhost';

  const createToken = async (name, scope) => {
    const args = ['token', 'create', '--name', name, '--scope', scope, '--state', state];
    let stdout;
    try {
      ({ stdout } = await execFileP(ephd, args, { env, timeout: 30000 }));
    } catch (e) {
      throw new Error(`\`ephd ${args.join(' ')}\` failed (exit ${e.code}): ${String(e.stderr || e.message).trim()}`);
    }
    const line = stdout.trim().split('\n').filter(Boolean).at(-1) ?? '';
    const token = line.trim().split(/\s+/).at(-1) ?? '';
    if (!token) throw new Error(`ephd token create printed no token (stdout: ${JSON.stringify(stdout)})`);
    return token;
  };
  const writeToken = await createToken('browser-test-write', 'write');
  const readToken = await createToken('browser-test-read', 'read');

  const child = spawn(
    ephd,
    ['--listen', '127.0.0.1:0', '--state', state, '--web-dir', WEB_DIST],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));

  let port;
  try {
    port = await waitFor('ephd to say where it listens', () => {
      if (exited) throw new Error(`ephd exited (${JSON.stringify(exited)}):\n${log}`);
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      return m ? Number(m[1]) : 0;
    }, 20000);
  } catch (e) {
    if (!exited) child.kill('SIGKILL');
    throw e;
  }

  return {
    baseUrl: `http://127.0.0.1:${port}/`,
    writeToken,
    readToken,
    log: () => log,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        try {
          await waitFor('ephd to stop', () => exited, 25000);
        } catch {
          child.kill('SIGKILL');
        }
      }
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

async function startMock(tmp) {
  const { createMockEphd } = await import('./mock-ephd.mjs');
  const { server } = createMockEphd({ webDir: WEB_DIST, seed: false });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}/`,
    writeToken: 'write-token',
    readToken: 'read-token',
    log: () => '(mock server)',
    async stop() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Calls ephd's API as a script would. */
export async function api(server, method, path, { token = server.writeToken, body } = {}) {
  const res = await fetch(new URL(`api/v1/${path}`, server.baseUrl), {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Left null; the caller's assertion shows the status.
  }
  return { status: res.status, json, text };
}

/** Debian's Chromium, headless, with a profile of its own that is removed afterwards. */
export async function launchBrowser() {
  const { chromium } = loadPlaywright();
  const profile = mkdtempSync(join(tmpdir(), 'eph-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Records every console error or warning and every uncaught exception of a page. Chromium itself
 * logs "Failed to load resource" for each HTTP error the page handles; `expected` lists the ones
 * a scenario provokes on purpose ({status, url?} with RegExps or values), and only those pass.
 */
export function watchConsole(page, label, problems, expected = []) {
  page.on('console', (msg) => {
    const type = msg.type();
    if (type !== 'error' && type !== 'warning') return;
    const text = msg.text();
    const url = msg.location()?.url ?? '';
    const m = /Failed to load resource: the server responded with a status of (\d+)/.exec(text);
    if (m) {
      const status = Number(m[1]);
      const ok = expected.some(
        (e) =>
          (e.status instanceof RegExp ? e.status.test(String(status)) : e.status === status) &&
          (!e.url || e.url.test(url)),
      );
      if (ok) return;
    }
    problems.push(`[${label}] console.${type}: ${text}${url ? ` (${url})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`[${label}] uncaught: ${err.message}`));
}
