// Helpers for tests that drive the stand-in as a separate process, the way Eph's tests do:
// start it on port 0, wait for its "listening on" line, talk HTTP to it, stop it.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const kStandin = path.join(path.dirname(fileURLToPath(import.meta.url)), 'standin.mjs');

export async function startStandin(args = [], { deadlineMs = 10000 } = {}) {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [kStandin, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const lines = readline.createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`stand-in did not start within ${deadlineMs} ms: ${stderr}`)),
      deadlineMs,
    );
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`stand-in exited with ${code}: ${stderr}`));
    });
  });
  const startupMs = Number(process.hrtime.bigint() - started) / 1e6;
  const m = first.match(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/);
  if (!m) throw new Error(`unexpected first line ${JSON.stringify(first)}`);
  const url = m[1];

  async function request(
    method,
    urlPath,
    { body, headers = {}, raw = false, redirect = 'manual' } = {},
  ) {
    const init = { method, headers: { ...headers }, redirect };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers['content-type'] ??= 'application/json';
    }
    const response = await fetch(urlPath.startsWith('http') ? urlPath : url + urlPath, init);
    const buffer = Buffer.from(await response.arrayBuffer());
    let json;
    if (!raw) {
      try {
        json = JSON.parse(buffer.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    return { status: response.status, headers: response.headers, body: json, buffer };
  }

  return {
    url,
    startupMs,
    child,
    request,
    // A GitHub API call with the given credential ("token X" / "Bearer X").
    github(method, urlPath, { auth, body, headers = {}, ...rest } = {}) {
      return request(method, urlPath, {
        body,
        headers: {
          'user-agent': 'eph-standin-test',
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
          ...(auth ? { authorization: auth } : {}),
          ...headers,
        },
        ...rest,
      });
    },
    async control(method, urlPath, body) {
      const r = await request(method, `/_standin${urlPath}`, { body });
      if (r.status >= 300)
        throw new Error(`control ${method} ${urlPath}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async violations() {
      return (await request('GET', '/_standin/violations')).body;
    },
    async clearViolations() {
      return (await request('DELETE', '/_standin/violations')).body;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export function makeAppKeys() {
  return crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

// An App JWT as GitHub documents it: RS256, iss = app id, iat 60 s in the past, exp at most
// ten minutes ahead.
export function signAppJwt(privateKey, { iss, iat, exp, alg = 'RS256' }) {
  const now = Math.floor(Date.now() / 1000);
  const header = Buffer.from(JSON.stringify({ alg, typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(
    JSON.stringify({ iss, iat: iat ?? now - 60, exp: exp ?? now + 540 }),
  ).toString('base64url');
  const signature = crypto
    .sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), privateKey)
    .toString('base64url');
  return `${header}.${payload}.${signature}`;
}
