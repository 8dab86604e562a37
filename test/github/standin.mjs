#!/usr/bin/env node
// A stand-in for api.github.com: the REST endpoints Eph calls, with their state in memory, every
// request and every answer checked against GitHub's OpenAPI description (@octokit/openapi), a
// control API under /_standin/ for tests, and a webhook sender.
//
// Usage: node standin.mjs --port 0 [--token TOKEN]... [--token-login LOGIN]
//          [--app-id ID --app-public-key FILE] [--installation-token-ttl SECONDS] [--verbose]
// The first line on stdout is "listening on http://127.0.0.1:PORT". docs/github-standin.md
// describes the control API and what is validated.
//
// Contract: anything Eph sends that GitHub's description does not allow, or that GitHub would
// refuse (unknown operation, bad or missing credentials, an invalid parameter or body), is
// answered with an error AND recorded as a violation; a test ends by asserting that
// GET /_standin/violations is empty. The stand-in's own answers are validated too, so a wrong
// answer is a violation rather than a silent lie.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { apiMethods, kServedOperations } from './api-handlers.mjs';
import { controlMethods } from './control.mjs';
import { HttpError, errorBody } from './errors.mjs';
import * as gh from './objects.mjs';
import { OpenApi } from './openapi.mjs';

export { kServedOperations };

const kWeb = 'https://github.com';

function lineCount(buffer) {
  if (!buffer || buffer.length === 0) return 0;
  const text = buffer.toString('utf8');
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

function lineDiff(before, after) {
  const count = (buffer) => {
    const lines = new Map();
    if (!buffer) return lines;
    for (const line of buffer.toString('utf8').split('\n'))
      lines.set(line, (lines.get(line) || 0) + 1);
    return lines;
  };
  const a = count(before);
  const b = count(after);
  let additions = 0;
  let deletions = 0;
  for (const [line, n] of b) additions += Math.max(0, n - (a.get(line) || 0));
  for (const [line, n] of a) deletions += Math.max(0, n - (b.get(line) || 0));
  return { additions, deletions };
}

// Operations that take the App's JWT rather than a token.
const kJwtOperations = new Set([
  'apps/get-authenticated',
  'apps/create-installation-access-token',
  'apps/list-installations',
  'apps/get-installation',
  'apps/get-repo-installation',
  'apps/get-org-installation',
  'apps/get-user-installation',
]);

export class Standin {
  constructor(options = {}) {
    this.options = {
      tokens: [],
      tokenLogin: 'eph-test',
      appId: undefined,
      appPublicKey: undefined,
      installationTokenTtl: 3600,
      verbose: false,
      ...options,
    };
    this.api = options.api || OpenApi.load();
    this.clockOffsetMs = 0;
    this.nextIdValue = 1000;
    this.users = new Map();
    this.repos = new Map(); // "owner/repo" (lower case) -> repo record
    this.installations = new Map();
    this.tokens = new Map(); // token -> { kind, login, installationId, expiresAt, repositories }
    this.codeloadTokens = new Map();
    this.rateWindows = new Map(); // token -> { start, used }
    this.requests = [];
    this.violations = [];
    this.failures = [];
    this.urls = { api: 'http://127.0.0.1', web: kWeb };
    for (const token of this.options.tokens) {
      this.tokens.set(token, { kind: 'pat', login: this.options.tokenLogin });
    }
    this.appInfo = {
      id: Number(this.options.appId || 1),
      slug: this.options.appSlug || 'eph-preview',
      clientId: `Iv23li${crypto.createHash('sha1').update(String(this.options.appId)).digest('hex').slice(0, 14)}`,
      name: 'Eph preview environments',
      description: 'Preview environments for pull requests',
      createdAt: Date.parse('2024-01-01T00:00:00Z'),
      permissions: {
        checks: 'write',
        contents: 'read',
        deployments: 'write',
        issues: 'write',
        metadata: 'read',
        pull_requests: 'write',
        statuses: 'read',
      },
      events: ['check_run', 'check_suite', 'issue_comment', 'pull_request', 'status'],
    };
    this.appOwner = this.user('eph-dev', 'Organization');
    this.botUser = this.user(`${this.appInfo.slug}[bot]`, 'Bot');
    // Checks set through the control API come from another app, as CI's would.
    this.ciApp = { id: 15368, slug: 'github-actions', name: 'GitHub Actions' };
    this.handlerTable = this.handlers();
  }

  now() {
    return Date.now() + this.clockOffsetMs;
  }

  nextId() {
    this.nextIdValue += 1;
    return this.nextIdValue;
  }

  user(login, type) {
    const key = login.toLowerCase();
    let user = this.users.get(key);
    if (!user) {
      user = {
        login,
        id: this.nextId(),
        type: type || (login.endsWith('[bot]') ? 'Bot' : 'User'),
      };
      this.users.set(key, user);
    }
    return user;
  }

  appObject() {
    return gh.app(this.urls, this.appInfo, this.appOwner);
  }

  ciAppObject() {
    return gh.app(
      this.urls,
      {
        ...this.appInfo,
        id: this.ciApp.id,
        slug: this.ciApp.slug,
        name: this.ciApp.name,
        clientId: 'Iv1.0000000000000000',
        description: 'Automate your workflow',
      },
      this.user('github', 'Organization'),
    );
  }

  // ---- repositories and commits ------------------------------------------------------------

  repo(owner, name) {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  repoRecord(repo) {
    return {
      id: repo.id,
      owner: repo.owner,
      name: repo.name,
      private: repo.private,
      fork: false,
      defaultBranch: repo.defaultBranch,
      createdAt: repo.createdAt,
      pushedAt: repo.pushedAt,
    };
  }

  forkRecord(repo, login) {
    const key = `${login}/${repo.name}`.toLowerCase();
    let fork = repo.forks.get(key);
    if (!fork) {
      fork = {
        id: this.nextId(),
        owner: this.user(login),
        name: repo.name,
        private: repo.private,
        fork: true,
        defaultBranch: repo.defaultBranch,
        createdAt: this.now(),
        pushedAt: this.now(),
      };
      repo.forks.set(key, fork);
    }
    return fork;
  }

  fullName(repo) {
    return `${repo.owner.login}/${repo.name}`;
  }

  commitSha(parent, files) {
    const hash = crypto.createHash('sha1');
    hash.update(`${parent || ''}\n${this.nextId()}\n`);
    for (const [path, content] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      hash.update(`${path}\0${content.length}\0`).update(content);
    }
    return hash.digest('hex');
  }

  addCommit(repo, { parent, files, sha, message }) {
    if (sha !== undefined && !/^[0-9a-f]{40}$/.test(sha)) {
      throw new HttpError(400, 'sha must be 40 lower-case hex digits');
    }
    const commitSha = sha || this.commitSha(parent, files);
    if (repo.commits.has(commitSha)) throw new HttpError(409, `commit ${commitSha} already exists`);
    repo.commits.set(commitSha, {
      sha: commitSha,
      parent: parent || null,
      files,
      message: message || 'commit',
      date: this.now(),
    });
    repo.pushedAt = this.now();
    return commitSha;
  }

  // A SHA (full or an unambiguous prefix of at least 7), a branch name, heads/NAME or
  // refs/heads/NAME; null when nothing matches.
  resolveRef(repo, ref) {
    if (repo.commits.has(ref)) return ref;
    const branch = ref.replace(/^refs\//, '').replace(/^heads\//, '');
    if (repo.branches.has(branch)) return repo.branches.get(branch);
    if (/^[0-9a-f]{7,39}$/.test(ref)) {
      const matches = [...repo.commits.keys()].filter((sha) => sha.startsWith(ref));
      if (matches.length === 1) return matches[0];
    }
    return null;
  }

  commitsBetween(repo, base, head) {
    let count = 0;
    for (
      let sha = head;
      sha && sha !== base && count < 10000;
      sha = repo.commits.get(sha)?.parent
    ) {
      count += 1;
    }
    return Math.max(count, 1);
  }

  changedFiles(repo, pr) {
    const before = repo.commits.get(pr.baseSha)?.files || new Map();
    const after = repo.commits.get(pr.headSha)?.files || new Map();
    const out = [];
    for (const path of [...new Set([...before.keys(), ...after.keys()])].sort()) {
      const a = before.get(path);
      const b = after.get(path);
      if (a && b && a.equals(b)) continue;
      const { additions, deletions } =
        a && b ? lineDiff(a, b) : { additions: lineCount(b), deletions: lineCount(a) };
      out.push({
        filename: path,
        status: !a ? 'added' : !b ? 'removed' : 'modified',
        additions,
        deletions,
        sha: gh.blobSha(b || a),
        headSha: pr.headSha,
      });
    }
    return out;
  }

  labelId(repo, name) {
    const key = name.toLowerCase();
    if (!repo.labelIds.has(key)) repo.labelIds.set(key, this.nextId());
    return repo.labelIds.get(key);
  }

  authorAssociation(repo, login) {
    if (login.toLowerCase() === repo.owner.login.toLowerCase()) return 'OWNER';
    if (login.endsWith('[bot]')) return 'NONE';
    const role = repo.collaborators.get(login.toLowerCase());
    if (role && role !== 'none') return 'COLLABORATOR';
    if ([...repo.pulls.values()].some((p) => p.user.toLowerCase() === login.toLowerCase())) {
      return 'CONTRIBUTOR';
    }
    return 'NONE';
  }

  pullObject(repo, pr) {
    const headRepo = pr.fork ? this.forkRecord(repo, pr.headOwner) : this.repoRecord(repo);
    const changed = this.changedFiles(repo, pr);
    return gh.pullRequest(this.urls, {
      pr: {
        ...pr,
        authorAssociation: this.authorAssociation(repo, pr.user),
        commentCount: repo.comments.filter((c) => c.issueNumber === pr.number).length,
      },
      repo: this.repoRecord(repo),
      headRepo,
      user: this.user(pr.user),
      mergedBy: pr.merged ? this.user(pr.mergedBy || repo.owner.login) : null,
      labelIds: (name) => this.labelId(repo, name),
      counts: {
        commits: this.commitsBetween(repo, pr.baseSha, pr.headSha),
        additions: changed.reduce((n, f) => n + f.additions, 0),
        deletions: changed.reduce((n, f) => n + f.deletions, 0),
        changed_files: changed.length,
      },
    });
  }

  commentObject(repo, comment) {
    return gh.issueComment(this.urls, this.fullName(repo), {
      comment,
      user: this.user(comment.user),
    });
  }

  deploymentObject(repo, d) {
    return gh.deployment(this.urls, this.fullName(repo), {
      deployment: d,
      creator: this.user(d.creator),
      app: d.viaApp ? this.appObject() : null,
    });
  }

  deploymentStatusObject(repo, d, s) {
    return gh.deploymentStatus(this.urls, this.fullName(repo), {
      status: s,
      deploymentId: d.id,
      creator: this.user(s.creator),
      app: s.viaApp ? this.appObject() : null,
    });
  }

  checkRunObject(repo, run) {
    const fullName = this.fullName(repo);
    const pulls = [...repo.pulls.values()]
      .filter((p) => p.headSha === run.headSha && !p.fork && p.state === 'open')
      .map((p) => ({
        id: p.id,
        number: p.number,
        url: `${this.urls.api}/repos/${fullName}/pulls/${p.number}`,
        head: {
          ref: p.headRef,
          sha: p.headSha,
          repo: { id: repo.id, url: `${this.urls.api}/repos/${fullName}`, name: repo.name },
        },
        base: {
          ref: p.baseRef,
          sha: p.baseSha,
          repo: { id: repo.id, url: `${this.urls.api}/repos/${fullName}`, name: repo.name },
        },
      }));
    return gh.checkRun(this.urls, fullName, {
      run,
      app: run.source === 'api' ? this.appObject() : this.ciAppObject(),
      pullRequests: pulls,
    });
  }

  installationObject(inst) {
    return gh.installation(this.urls, { inst, account: inst.account, appInfo: this.appInfo });
  }

  installationFor(repo) {
    return repo.installationId ? this.installations.get(repo.installationId) : undefined;
  }

  // ---- control API -------------------------------------------------------------------------

  addComment(repo, issueNumber, login, text) {
    const comment = {
      id: this.nextId(),
      issueNumber,
      user: login,
      body: text,
      createdAt: this.now(),
      updatedAt: this.now(),
      authorAssociation: this.authorAssociation(repo, login),
    };
    repo.comments.push(comment);
    return comment;
  }

  // ---- the GitHub API ----------------------------------------------------------------------

  violation(v) {
    const entry = { seq: v.seq ?? null, time: gh.isoTime(this.now()), ...v };
    this.violations.push(entry);
    if (this.options.verbose) console.error(`violation: ${JSON.stringify(entry)}`);
    return entry;
  }

  rateState(token) {
    const nowSec = Math.floor(this.now() / 1000);
    let window = this.rateWindows.get(token);
    if (!window || nowSec >= window.reset) {
      window = { reset: nowSec + 3600, used: 0 };
      this.rateWindows.set(token, window);
    }
    return {
      limit: 5000,
      used: window.used,
      remaining: Math.max(0, 5000 - window.used),
      reset: window.reset,
      window,
    };
  }

  verifyJwt(jwt) {
    if (!this.options.appPublicKey) {
      return 'the stand-in was started without --app-id and --app-public-key, so it accepts no JWT';
    }
    const parts = jwt.split('.');
    if (parts.length !== 3) return 'A JSON web token could not be decoded';
    let header;
    let payload;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      return 'A JSON web token could not be decoded';
    }
    if (header.alg !== 'RS256')
      return `A JSON web token could not be decoded (alg must be RS256, not ${header.alg})`;
    const ok = crypto.verify(
      'RSA-SHA256',
      Buffer.from(`${parts[0]}.${parts[1]}`),
      this.options.appPublicKey,
      Buffer.from(parts[2], 'base64url'),
    );
    if (!ok)
      return "A JSON web token could not be decoded (the signature does not verify with the app's public key)";
    const nowSec = Math.floor(this.now() / 1000);
    if (String(payload.iss) !== String(this.appInfo.id) && payload.iss !== this.appInfo.clientId) {
      return `Integration not found ('iss' is ${JSON.stringify(payload.iss)}, the app id is ${this.appInfo.id})`;
    }
    if (!Number.isInteger(payload.iat) || payload.iat > nowSec + 60) {
      return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
    }
    if (!Number.isInteger(payload.exp) || payload.exp <= nowSec) {
      return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
    }
    if (payload.exp > nowSec + 600 || payload.exp - payload.iat > 660) {
      return "'Expiration time' claim ('exp') is too far in the future";
    }
    return null;
  }

  // Returns { principal } or { status, message } for a request to `route`.
  authenticate(req, route) {
    const header = req.headers.authorization;
    if (!header) return { status: 401, message: 'Requires authentication' };
    const m = header.match(/^(token|bearer)\s+(\S+)\s*$/i);
    if (!m)
      return {
        status: 401,
        message: 'Bad credentials (Authorization must be "token X" or "Bearer X")',
      };
    const credential = m[2];
    if (kJwtOperations.has(route.operationId)) {
      if (!/^bearer$/i.test(m[1]))
        return {
          status: 401,
          message: 'A JSON web token could not be decoded (send it as "Bearer JWT")',
        };
      const problem = this.verifyJwt(credential);
      if (problem) return { status: 401, message: problem };
      return { principal: { kind: 'app', login: this.botUser.login, rateKey: 'app' } };
    }
    const token = this.tokens.get(credential);
    if (!token) {
      if (credential.split('.').length === 3) {
        return {
          status: 401,
          message: `Bad credentials (a JWT authenticates only as the app, not for ${route.operationId})`,
        };
      }
      return { status: 401, message: 'Bad credentials' };
    }
    if (token.expiresAt && token.expiresAt <= this.now()) {
      return { status: 401, message: 'Bad credentials (the installation token expired)' };
    }
    return { principal: { ...token, rateKey: credential } };
  }

  send(res, status, body, headers = {}) {
    const data = Buffer.isBuffer(body)
      ? body
      : typeof body === 'string'
        ? Buffer.from(body)
        : Buffer.from(JSON.stringify(body));
    const h = { 'content-length': String(data.length), ...headers };
    if (!h['content-type'] && !Buffer.isBuffer(body) && typeof body !== 'string') {
      h['content-type'] = 'application/json; charset=utf-8';
    }
    res.writeHead(status, h);
    res.end(data);
  }

  async readBody(req) {
    const chunks = [];
    let size = 0;
    for await (const chunk of req) {
      size += chunk.length;
      if (size > 25 * 1024 * 1024) throw new HttpError(413, 'Payload too large');
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  async handle(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname.startsWith('/_standin/')) {
      let body;
      try {
        const raw = await this.readBody(req);
        body = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch (e) {
        return this.send(res, 400, { error: `control request body is not JSON: ${e.message}` });
      }
      try {
        const [status, out] = await this.handleControl(req, url, body);
        return this.send(res, status, out);
      } catch (e) {
        if (e instanceof HttpError) return this.send(res, e.status, { error: e.message });
        return this.send(res, 500, { error: e.stack || String(e) });
      }
    }
    return this.handleApi(req, res, url);
  }

  async handleApi(req, res, url) {
    // GitHub Enterprise Server serves the same API under /api/v3.
    const path = url.pathname.startsWith('/api/v3/')
      ? url.pathname.slice('/api/v3'.length)
      : url.pathname;
    const query = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    let raw;
    try {
      raw = await this.readBody(req);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 400;
      return this.send(res, status, errorBody(status, e.message));
    }
    const entry = {
      seq: this.requests.length + 1,
      time: gh.isoTime(this.now()),
      method: req.method,
      path,
      query,
      body: undefined,
      status: undefined,
      operation: null,
      headers: {
        accept: req.headers.accept,
        'user-agent': req.headers['user-agent'],
        'x-github-api-version': req.headers['x-github-api-version'],
        authorization: req.headers.authorization
          ? req.headers.authorization.split(/\s+/)[0]
          : undefined,
      },
    };
    this.requests.push(entry);
    // Wall-clock arrival and duration, for benchmarks that break a reconcile pass down
    // (bench/label_ready.sh); `time` follows the stand-in's adjustable clock instead.
    entry.at_ms = Date.now();
    res.on('finish', () => {
      entry.ms = Date.now() - entry.at_ms;
    });
    const ctxHeaders = {
      'x-github-request-id': crypto.randomUUID().toUpperCase().slice(0, 23),
      'x-github-api-version-selected': '2022-11-28',
      'x-github-media-type': 'github.v3; format=json',
    };
    const reject = (status, kind, problems, message, extra = {}) => {
      entry.status = status;
      this.violation({
        seq: entry.seq,
        kind,
        method: req.method,
        path,
        operation: entry.operation,
        problems,
      });
      return this.send(res, status, errorBody(status, message, extra), ctxHeaders);
    };
    if (raw.length) {
      const text = raw.toString('utf8');
      try {
        entry.body = JSON.parse(text);
      } catch {
        entry.body = text.length > 4096 ? `${text.slice(0, 4096)}…` : text;
      }
    }
    try {
      if (path.startsWith('/_codeload/')) {
        const failure = this.takeFailure(req.method, path);
        if (failure) return this.sendFailure(res, failure, entry);
        return this.serveCodeload(req, res, url, entry);
      }
      const match = this.api.match(req.method, path);
      if (!match.route) {
        const why = match.pathKnown
          ? `GitHub's description has no ${req.method} operation on ${path}`
          : `GitHub's description has no operation at ${path}`;
        return reject(404, 'unknown-operation', [why], 'Not Found');
      }
      const { route } = match;
      entry.operation = route.operationId;
      if (!req.headers['user-agent']) {
        return reject(
          403,
          'header',
          ['no User-Agent header: GitHub refuses such requests'],
          'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
        );
      }
      const version = req.headers['x-github-api-version'];
      if (version !== undefined && version !== '2022-11-28') {
        return reject(
          400,
          'header',
          [`X-GitHub-Api-Version ${version} is not a version GitHub supports`],
          `API version ${version} is not supported.`,
        );
      }
      const auth = this.authenticate(req, route);
      if (!auth.principal) return reject(auth.status, 'auth', [auth.message], auth.message);
      if (raw.length && typeof entry.body === 'string') {
        return reject(400, 'request', ['body: not valid JSON'], 'Problems parsing JSON');
      }
      const problems = this.api.validateRequest(match, query, entry.body, raw.length > 0);
      if (problems.length)
        return reject(422, 'request', problems, `Invalid request.\n\n${problems.join('\n')}`);

      const rate = this.rateState(auth.principal.rateKey);
      if (route.operationId !== 'rate-limit/get') rate.window.used += 1;
      const after = this.rateState(auth.principal.rateKey);
      Object.assign(ctxHeaders, {
        'x-ratelimit-limit': String(after.limit),
        'x-ratelimit-remaining': String(after.remaining),
        'x-ratelimit-reset': String(after.reset),
        'x-ratelimit-used': String(after.used),
        'x-ratelimit-resource': 'core',
      });

      const failure = this.takeFailure(req.method, path);
      if (failure) return this.sendFailure(res, failure, entry, ctxHeaders);

      const handler = this.handlerTable[route.operationId];
      if (!handler) {
        return reject(
          404,
          'unimplemented',
          [
            `${route.operationId} (${route.method} ${route.template}) is GitHub's, but the stand-in does not serve it`,
          ],
          'Not Found',
        );
      }
      const ctx = {
        req,
        url,
        query,
        params: match.params,
        body: entry.body,
        principal: auth.principal,
        headers: ctxHeaders,
      };
      let result;
      try {
        result = handler(ctx);
      } catch (e) {
        if (!(e instanceof HttpError)) throw e;
        result = [e.status, errorBody(e.status, e.message, e.extra)];
        // A 422 is GitHub refusing what Eph sent (a too-long description, a SHA it does not
        // have): a bug in Eph, so it is recorded like a schema violation.
        if (e.status === 422) {
          const details = (e.extra.errors || []).map((x) => x.message || `${x.field} ${x.code}`);
          this.violation({
            seq: entry.seq,
            kind: 'rejected',
            method: req.method,
            path,
            operation: route.operationId,
            problems: [e.message, ...details],
          });
        }
      }
      if (!Array.isArray(result)) {
        entry.status = result.status;
        const documented = this.api.responseInfo(route, result.status);
        if (!documented) {
          this.violation({
            seq: entry.seq,
            kind: 'response',
            method: req.method,
            path,
            operation: route.operationId,
            problems: [
              `the stand-in answered ${result.status}, which GitHub's description does not list`,
            ],
          });
        }
        return this.send(res, result.status, result.raw, {
          ...ctxHeaders,
          ...(result.contentType ? { 'content-type': result.contentType } : {}),
        });
      }
      const [status, body] = result;
      entry.status = status;
      if (status < 300 || this.api.responseInfo(route, status)) {
        const wrong = this.api.validateResponse(match, status, body);
        if (wrong.length) {
          this.violation({
            seq: entry.seq,
            kind: 'response',
            method: req.method,
            path,
            operation: route.operationId,
            problems: wrong.slice(0, 30),
          });
        }
      }
      return this.send(res, status, body, ctxHeaders);
    } catch (e) {
      entry.status = 500;
      this.violation({
        seq: entry.seq,
        kind: 'stand-in',
        method: req.method,
        path,
        operation: entry.operation,
        problems: [e.stack || String(e)],
      });
      return this.send(res, 500, errorBody(500, `stand-in bug: ${e.message}`));
    }
  }

  sendFailure(res, failure, entry, headers = {}) {
    entry.status = failure.status;
    entry.scripted = failure.id;
    return this.send(res, failure.status, failure.body, { ...headers, ...failure.headers });
  }

  listen(port = 0, host = '127.0.0.1') {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        if (!res.headersSent) this.send(res, 500, { error: String(e) });
      });
    });
    this.server.keepAliveTimeout = 30000;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const address = this.server.address();
        this.port = address.port;
        this.urls.api = `http://${host}:${address.port}`;
        resolve(this.urls.api);
      });
    });
  }

  // Compiles validators one operation per event-loop turn, so requests are served meanwhile.
  warmInBackground() {
    const pending = [...kServedOperations];
    const step = () => {
      const id = pending.shift();
      if (!id || !this.server?.listening) return;
      this.api.warm([id]);
      setImmediate(step);
    };
    setImmediate(step);
  }

  close() {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.closeAllConnections?.();
      this.server.close(() => resolve());
    });
  }
}

// The GitHub operations and the control API live in their own files.
Object.assign(Standin.prototype, apiMethods, controlMethods);

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      token: { type: 'string', multiple: true, default: [] },
      'token-login': { type: 'string', default: 'eph-test' },
      'app-id': { type: 'string' },
      'app-slug': { type: 'string' },
      'app-public-key': { type: 'string' },
      'installation-token-ttl': { type: 'string', default: '3600' },
      'no-warm': { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: node standin.mjs [--port 0] [--token T]... [--token-login L] [--app-id ID --app-public-key FILE] [--app-slug S] [--installation-token-ttl SECONDS] [--no-warm] [--verbose]',
    );
    return;
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(values.host)) {
    throw new Error('the stand-in listens on loopback only');
  }
  if (!!values['app-id'] !== !!values['app-public-key']) {
    throw new Error('--app-id and --app-public-key go together');
  }
  const standin = new Standin({
    tokens: values.token,
    tokenLogin: values['token-login'],
    appId: values['app-id'],
    appSlug: values['app-slug'],
    appPublicKey: values['app-public-key']
      ? crypto.createPublicKey(fs.readFileSync(values['app-public-key']))
      : undefined,
    installationTokenTtl: Number(values['installation-token-ttl']),
    verbose: values.verbose,
  });
  const url = await standin.listen(Number(values.port), values.host);
  console.log(`listening on ${url}`);
  if (!values['no-warm']) standin.warmInBackground();
  const stop = () => standin.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  main().catch((e) => {
    console.error(`standin: ${e.message}`);
    process.exit(1);
  });
}
