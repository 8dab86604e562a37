#!/usr/bin/env node
// A stand-in for ephd's HTTP API, for working on the dashboard before (or without) a built ephd:
//   node test/browser/mock-ephd.mjs [--port 8080] [--web-dir web/dist]
// It follows the API contract in docs/dashboard.md: bearer tokens ("write-token" may write,
// "read-token" may only read), the environments endpoints, manual create, destroy (destroying,
// then destroyed 2 s later), extend, streamed logs and server-sent events with Last-Event-ID.
// State is in memory. The browser tests do NOT use it unless EPH_BROWSER_MOCK=1 is set; their
// real target is ephd.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

const WORDS = ['gentle', 'stream', 'quiet', 'river', 'amber', 'field', 'swift', 'harbor', 'misty', 'cedar'];

export function createMockEphd({ webDir, tokens = { 'write-token': 'write', 'read-token': 'read' }, seed = true } = {}) {
  const envs = new Map();
  const history = new Map();
  const events = []; // {id, env}
  const clients = new Set();
  let nextEventId = 1;
  let nextHistoryId = 1;

  const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  function record(env, from, reason) {
    const list = history.get(env.name) ?? [];
    list.push({ id: nextHistoryId++, from_state: from, to_state: env.state, reason, at: env.updated_at });
    history.set(env.name, list);
  }

  function publish(env) {
    const ev = { id: nextEventId++, env: { ...env } };
    events.push(ev);
    if (events.length > 1000) events.shift();
    for (const res of clients) writeEvent(res, ev);
  }

  function writeEvent(res, ev) {
    res.write(`id: ${ev.id}\nevent: environment\ndata: ${JSON.stringify(ev.env)}\n\n`);
  }

  function transition(name, state, reason) {
    const env = envs.get(name);
    if (!env) return;
    const from = env.state;
    env.state = state;
    env.reason = state === 'ready' ? '' : reason;
    env.updated_at = now();
    record(env, from, reason);
    publish(env);
  }

  function create(project, pr, { ttlHours = 72, state = 'pending', ageMinutes = 0 } = {}) {
    const repo = project.split('/').pop();
    const name = `${repo}-${WORDS[pr % WORDS.length]}-${WORDS[(pr * 7 + 3) % WORDS.length]}-${pr}`;
    const created = new Date(Date.now() - ageMinutes * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const env = {
      name,
      project,
      pr,
      state: 'pending',
      url: `https://${name}.preview.localhost`,
      reason: '',
      provider: 'kubernetes',
      head_sha: Math.random().toString(16).slice(2, 10).padEnd(40, '0'),
      created_at: created,
      updated_at: created,
      expires_at: new Date(Date.now() + ttlHours * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      last_activity_at: null,
    };
    envs.set(name, env);
    record(env, null, 'pull request labelled preview');
    publish(env);
    if (state !== 'pending') {
      transition(name, 'provisioning', 'applying 12 objects');
      if (state !== 'provisioning') transition(name, state, state === 'failed' ? 'ImagePullBackOff: acme/shop-api:pr-' + pr + ' not found' : '');
    } else {
      setTimeout(() => transition(name, 'provisioning', 'applying 12 objects'), 800);
      setTimeout(() => transition(name, 'ready', ''), 2500);
    }
    return env;
  }

  if (seed) {
    create('acme/shop', 41, { state: 'ready', ttlHours: 50, ageMinutes: 190 });
    create('acme/shop', 38, { state: 'failed', ttlHours: 0.6, ageMinutes: 600 });
    create('acme/billing', 112, { state: 'updating', ttlHours: 20, ageMinutes: 45 });
    create('acme/docs', 9, { state: 'sleeping', ttlHours: 5, ageMinutes: 2000 });
  }

  function json(res, status, body) {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  }
  function error(res, status, code, message) {
    json(res, status, { error: { code, message } });
  }

  async function readBody(req) {
    let body = '';
    for await (const chunk of req) body += chunk;
    return body;
  }

  async function serveStatic(res, path) {
    if (!webDir) return error(res, 404, 'not_found', 'no dashboard');
    const rel = normalize(decodeURIComponent(path === '/' ? '/index.html' : path)).replace(/^(\.\.[/\\])+/, '');
    const file = join(webDir, rel);
    if (!file.startsWith(resolve(webDir))) return error(res, 404, 'not_found', 'not found');
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(data);
    } catch {
      error(res, 404, 'not_found', `no file ${path}`);
    }
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (!path.startsWith('/api/v1/')) return serveStatic(res, path);

    const auth = req.headers.authorization ?? '';
    let token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!token && path === '/api/v1/events') token = url.searchParams.get('access_token') ?? '';
    const scope = tokens[token];
    if (!scope) return error(res, 401, 'unauthenticated', token ? 'the token is unknown or revoked' : 'an API token is required');
    const write = req.method !== 'GET';
    if (write && scope !== 'write') return error(res, 403, 'permission_denied', 'this token is read-only');

    if (path === '/api/v1/events' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
      res.write(': connected\n\n');
      const last = Number(req.headers['last-event-id'] ?? 0);
      if (last) for (const ev of events) if (ev.id > last) writeEvent(res, ev);
      clients.add(res);
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), 15000);
      req.on('close', () => {
        clearInterval(keepalive);
        clients.delete(res);
      });
      return;
    }
    if (path === '/api/v1/environments') {
      if (req.method === 'GET') {
        const all = url.searchParams.get('all') === 'true';
        return json(res, 200, { items: [...envs.values()].filter((e) => all || e.state !== 'destroyed') });
      }
      if (req.method === 'POST') {
        let body;
        try {
          body = JSON.parse(await readBody(req));
        } catch {
          return error(res, 400, 'invalid_argument', 'the body is not JSON');
        }
        if (typeof body.project !== 'string' || !Number.isInteger(body.pr)) {
          return error(res, 400, 'invalid_argument', 'project and pr are required');
        }
        return json(res, 201, create(body.project, body.pr));
      }
    }
    const m = /^\/api\/v1\/environments\/([^/]+)(\/extend|\/logs)?$/.exec(path);
    if (m) {
      const name = decodeURIComponent(m[1]);
      const env = envs.get(name);
      if (!env) return error(res, 404, 'not_found', `no environment named ${name}`);
      if (!m[2] && req.method === 'GET') return json(res, 200, { ...env, events: history.get(name) ?? [] });
      if (!m[2] && req.method === 'DELETE') {
        if (env.state !== 'destroying' && env.state !== 'destroyed') {
          transition(name, 'destroying', 'destroyed on request through the API');
          setTimeout(() => transition(name, 'destroyed', 'destroyed on request through the API'), 2000);
        }
        return json(res, 202, env);
      }
      if (m[2] === '/extend' && req.method === 'POST') {
        let by;
        try {
          by = JSON.parse(await readBody(req)).by;
        } catch {
          by = undefined;
        }
        const hours = { '4h': 4, '24h': 24, '72h': 72 }[by];
        if (!hours) return error(res, 400, 'invalid_argument', 'by must be a duration such as 24h');
        const base = Math.max(Date.now(), env.expires_at ? Date.parse(env.expires_at) : 0);
        env.expires_at = new Date(base + hours * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
        env.updated_at = now();
        publish(env);
        return json(res, 200, env);
      }
      if (m[2] === '/logs' && req.method === 'GET') {
        if (!['provisioning', 'ready', 'updating', 'failed'].includes(env.state)) {
          return error(res, 409, 'failed_precondition', `${name} is ${env.state}; it has no logs`);
        }
        const component = url.searchParams.get('component') || '';
        const comps = component ? [component] : ['web', 'api', 'worker'];
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
        let n = 0;
        const line = () => {
          const c = comps[n % comps.length];
          const msgs = ['GET /healthz 200 1ms', 'GET / 200 12ms', 'connected to postgres', 'job 4812 done in 85ms', 'GET /api/cart 200 7ms'];
          res.write(`${new Date().toISOString()} ${c.padEnd(6)} ${msgs[n % msgs.length]}\n`);
          n++;
        };
        for (let i = 0; i < 14; i++) line();
        const timer = url.searchParams.get('follow') === 'true' ? setInterval(line, 1200) : null;
        if (!timer) res.end();
        req.on('close', () => timer && clearInterval(timer));
        return;
      }
    }
    error(res, 404, 'not_found', `no route for ${req.method} ${path}`);
  });

  return { server, envs, create, transition };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const here = fileURLToPath(new URL('.', import.meta.url));
  const webDir = resolve(arg('--web-dir', join(here, '../../web/dist')));
  const { server } = createMockEphd({ webDir, seed: process.argv.includes('--empty') ? false : true });
  server.listen(Number(arg('--port', '8080')), '127.0.0.1', () => {
    const { port } = server.address();
    process.stderr.write(`mock-ephd: listening on http://127.0.0.1:${port} (tokens: write-token, read-token)\n`);
  });
}
