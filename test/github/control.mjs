// The control API under /_standin/ (not GitHub's), as methods mixed into Standin
// (standin.mjs): tests create repositories, commits, pull requests and checks, script failures,
// read the request log, the violations and the state, move the clock and send webhooks.
// Control requests are neither validated against GitHub's description nor logged.

import http from 'node:http';

import { HttpError, errorBody } from './errors.mjs';
import * as gh from './objects.mjs';
import { DeliveryError, buildWebhookPayload, deliverWebhook } from './webhooks.mjs';

const kWeb = 'https://github.com';

export const controlMethods = {
  createRepo(body) {
    const { owner, repo: name, files = {}, sha } = body || {};
    if (typeof owner !== 'string' || typeof name !== 'string' || !owner || !name) {
      throw new HttpError(400, 'owner and repo are required strings');
    }
    if (this.repo(owner, name)) throw new HttpError(409, `${owner}/${name} exists`);
    const defaultBranch = body.default_branch || 'main';
    const repo = {
      id: this.nextId(),
      owner: this.user(owner, body.owner_type),
      name,
      private: body.private !== false,
      defaultBranch,
      createdAt: this.now(),
      pushedAt: this.now(),
      commits: new Map(),
      branches: new Map(),
      pulls: new Map(),
      forks: new Map(),
      comments: [],
      deployments: [],
      checkRuns: [],
      statuses: [],
      collaborators: new Map(),
      labelIds: new Map(),
      installationId: undefined,
    };
    const commit = this.addCommit(repo, { files: this.fileMap(files), sha, message: 'initial' });
    repo.branches.set(defaultBranch, commit);
    this.repos.set(`${owner}/${name}`.toLowerCase(), repo);
    if (body.installed !== false) {
      let inst = body.installation_id
        ? this.installations.get(Number(body.installation_id))
        : undefined;
      if (!inst && !body.installation_id) {
        inst = [...this.installations.values()].find(
          (i) => i.account.login.toLowerCase() === owner.toLowerCase(),
        );
      }
      if (!inst) {
        inst = {
          id: Number(body.installation_id) || this.nextId(),
          account: repo.owner,
          repositorySelection: 'selected',
          repos: new Set(),
          createdAt: this.now(),
          suspendedAt: null,
        };
        this.installations.set(inst.id, inst);
      }
      inst.repos.add(`${owner}/${name}`.toLowerCase());
      repo.installationId = inst.id;
    }
    return {
      owner,
      repo: name,
      full_name: `${owner}/${name}`,
      id: repo.id,
      sha: commit,
      default_branch: defaultBranch,
      installation_id: repo.installationId ?? null,
    };
  },

  fileMap(files, base = new Map()) {
    if (typeof files !== 'object' || files === null || Array.isArray(files)) {
      throw new HttpError(400, 'files must be an object of path -> content');
    }
    const out = new Map(base);
    for (const [path, content] of Object.entries(files)) {
      if (
        path.startsWith('/') ||
        path.split('/').some((s) => s === '' || s === '..' || s === '.')
      ) {
        throw new HttpError(400, `bad file path ${JSON.stringify(path)}`);
      }
      if (content === null) out.delete(path);
      else if (typeof content === 'string') out.set(path, Buffer.from(content, 'utf8'));
      else if (typeof content === 'object' && typeof content.base64 === 'string') {
        out.set(path, Buffer.from(content.base64, 'base64'));
      } else throw new HttpError(400, `content of ${path} must be a string, {base64} or null`);
    }
    return out;
  },

  controlRepo(owner, name) {
    const repo = this.repo(owner, name);
    if (!repo) throw new HttpError(404, `no repository ${owner}/${name}`);
    return repo;
  },

  createCommit(repo, body = {}) {
    const branch = body.branch || repo.defaultBranch;
    const parent = body.parent
      ? this.resolveRef(repo, body.parent)
      : repo.branches.get(branch) || repo.branches.get(repo.defaultBranch);
    if (!parent) throw new HttpError(400, `no parent commit ${body.parent}`);
    const base = body.replace ? new Map() : repo.commits.get(parent).files;
    const sha = this.addCommit(repo, {
      parent,
      files: this.fileMap(body.files || {}, base),
      sha: body.sha,
      message: body.message,
    });
    if (body.branch !== null) repo.branches.set(branch, sha);
    return { sha, parent, branch: body.branch === null ? null : branch };
  },

  setPull(repo, number, body = {}) {
    if (!Number.isInteger(number) || number < 1)
      throw new HttpError(400, 'bad pull request number');
    let pr = repo.pulls.get(number);
    const now = this.now();
    if (!pr) {
      const baseRef = body.base_ref || repo.defaultBranch;
      const baseSha = repo.branches.get(baseRef);
      if (!baseSha) throw new HttpError(400, `no base branch ${baseRef}`);
      pr = {
        id: this.nextId(),
        number,
        title: `Pull request ${number}`,
        body: null,
        state: 'open',
        merged: false,
        draft: false,
        labels: [],
        user: repo.owner.login,
        fork: false,
        headOwner: repo.owner.login,
        headRef: `feature-${number}`,
        headSha: undefined,
        baseRef,
        baseSha,
        createdAt: now,
        updatedAt: now,
        closedAt: null,
        mergedAt: null,
        mergeCommitSha: null,
        mergedBy: null,
      };
      repo.pulls.set(number, pr);
    }
    const known = [
      'state',
      'merged',
      'labels',
      'head_sha',
      'head_ref',
      'base_ref',
      'base_sha',
      'draft',
      'fork',
      'user',
      'title',
      'body',
      'merged_by',
    ];
    for (const key of Object.keys(body)) {
      if (!known.includes(key)) throw new HttpError(400, `unknown pull request field ${key}`);
    }
    if (body.title !== undefined) pr.title = String(body.title);
    if (body.body !== undefined) pr.body = body.body;
    if (body.user !== undefined) pr.user = this.user(String(body.user)).login;
    if (body.draft !== undefined) pr.draft = !!body.draft;
    if (body.labels !== undefined) {
      if (!Array.isArray(body.labels)) throw new HttpError(400, 'labels must be an array of names');
      pr.labels = body.labels.map(String);
    }
    if (body.fork !== undefined) pr.fork = !!body.fork;
    // A fork pull request comes from its author's fork.
    pr.headOwner = pr.fork ? pr.user : repo.owner.login;
    if (pr.fork && pr.headOwner.toLowerCase() === repo.owner.login.toLowerCase()) {
      throw new HttpError(400, 'a fork pull request needs a user other than the repository owner');
    }
    if (body.head_ref !== undefined) pr.headRef = String(body.head_ref);
    if (body.base_ref !== undefined) pr.baseRef = String(body.base_ref);
    if (body.base_sha !== undefined) {
      const sha = this.resolveRef(repo, body.base_sha);
      if (!sha) throw new HttpError(400, `no commit ${body.base_sha}`);
      pr.baseSha = sha;
    }
    if (body.head_sha !== undefined) {
      const sha = this.resolveRef(repo, body.head_sha);
      if (!sha) throw new HttpError(400, `no commit ${body.head_sha}`);
      pr.headSha = sha;
    }
    if (!pr.headSha) {
      pr.headSha =
        (!pr.fork && repo.branches.get(pr.headRef)) || repo.branches.get(repo.defaultBranch);
    }
    if (!pr.fork) repo.branches.set(pr.headRef, pr.headSha);
    let state = body.state;
    if (body.merged === true) state = 'merged';
    if (state !== undefined) {
      if (!['open', 'closed', 'merged'].includes(state))
        throw new HttpError(400, 'state must be open, closed or merged');
      pr.state = state === 'open' ? 'open' : 'closed';
      pr.merged = state === 'merged';
      pr.closedAt = state === 'open' ? null : pr.closedAt || now;
      pr.mergedAt = pr.merged ? pr.mergedAt || now : null;
      pr.mergedBy = pr.merged ? body.merged_by || repo.owner.login : null;
      pr.mergeCommitSha = pr.merged ? pr.headSha : null;
    }
    pr.updatedAt = now;
    return this.pullObject(repo, pr);
  },

  setChecks(repo, sha, body = {}) {
    const resolved = this.resolveRef(repo, sha);
    if (!resolved) throw new HttpError(400, `no commit ${sha}`);
    const now = this.now();
    repo.checkRuns = repo.checkRuns.filter(
      (r) => !(r.source === 'control' && r.headSha === resolved),
    );
    repo.statuses = repo.statuses.filter((s) => !(s.source === 'control' && s.sha === resolved));
    for (const run of body.check_runs || []) {
      if (!run.name) throw new HttpError(400, 'every check run needs a name');
      const status = run.status || (run.conclusion ? 'completed' : 'in_progress');
      repo.checkRuns.push({
        id: this.nextId(),
        source: 'control',
        name: run.name,
        headSha: resolved,
        status,
        conclusion: status === 'completed' ? run.conclusion || 'success' : null,
        startedAt: now,
        completedAt: status === 'completed' ? now : null,
        externalId: '',
        detailsUrl: run.details_url || `${kWeb}/${this.fullName(repo)}/actions`,
        output: { title: null, summary: null, text: null },
        annotations: [],
        checkSuiteId: this.nextId(),
      });
    }
    for (const status of body.statuses || []) {
      if (!status.context || !['error', 'failure', 'pending', 'success'].includes(status.state)) {
        throw new HttpError(
          400,
          'every status needs a context and a state of error, failure, pending or success',
        );
      }
      repo.statuses.push({
        id: this.nextId(),
        source: 'control',
        sha: resolved,
        context: status.context,
        state: status.state,
        description: status.description ?? null,
        targetUrl: status.target_url ?? null,
        createdAt: now,
      });
    }
    return {
      sha: resolved,
      check_runs: (body.check_runs || []).length,
      statuses: (body.statuses || []).length,
    };
  },

  // Which repositories an installation covers and whether it is suspended, as after the
  // installation / installation_repositories events a test then delivers.
  setInstallation(id, body = {}) {
    const inst = this.installations.get(id);
    if (!inst) throw new HttpError(404, `no installation ${id}`);
    if (body.repositories !== undefined) {
      if (!Array.isArray(body.repositories)) {
        throw new HttpError(400, 'repositories must be an array of "owner/repo"');
      }
      const keys = body.repositories.map((r) => String(r).toLowerCase());
      for (const key of keys) {
        if (!this.repos.has(key)) throw new HttpError(400, `no repository ${key}`);
      }
      for (const key of inst.repos) {
        if (this.repos.get(key)?.installationId === id)
          this.repos.get(key).installationId = undefined;
      }
      inst.repos = new Set(keys);
      for (const key of keys) this.repos.get(key).installationId = id;
    }
    if (body.suspended !== undefined) inst.suspendedAt = body.suspended ? this.now() : null;
    return { id, repositories: [...inst.repos], suspended: !!inst.suspendedAt };
  },

  addFailure(body = {}) {
    const count = body.count ?? 1;
    if (!Number.isInteger(count) || count < 1)
      throw new HttpError(400, 'count must be a positive integer');
    let pathRegex;
    try {
      pathRegex = new RegExp(body.path ?? '.*');
    } catch (e) {
      throw new HttpError(400, `bad path regex: ${e.message}`);
    }
    const resetIn = body.reset_in ?? 60;
    const presets = {
      'rate-limit': () => ({
        status: 403,
        headers: {
          'x-ratelimit-limit': '5000',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-used': '5000',
          'x-ratelimit-resource': 'core',
          'x-ratelimit-reset': String(Math.floor(this.now() / 1000) + resetIn),
        },
        body: errorBody(
          403,
          "API rate limit exceeded. (But here's the good news: Authenticated requests get a higher rate limit.)",
        ),
      }),
      'secondary-rate-limit': () => ({
        status: 403,
        headers: { 'retry-after': String(resetIn) },
        body: errorBody(
          403,
          'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        ),
      }),
      'too-many-requests': () => ({
        status: 429,
        headers: { 'retry-after': String(resetIn) },
        body: errorBody(
          429,
          'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        ),
      }),
      'server-error': () => ({ status: 502, headers: {}, body: errorBody(502, 'Server Error') }),
    };
    let template;
    if (body.preset !== undefined) {
      if (!presets[body.preset])
        throw new HttpError(400, `preset must be one of ${Object.keys(presets).join(', ')}`);
      template = presets[body.preset]();
    } else {
      if (!Number.isInteger(body.status) || body.status < 100 || body.status > 599) {
        throw new HttpError(400, 'status (an HTTP status) or preset is required');
      }
      template = {
        status: body.status,
        headers: {},
        body: errorBody(body.status, http.STATUS_CODES[body.status] || 'Error'),
      };
    }
    const failure = {
      id: this.nextId(),
      method: body.method ? String(body.method).toUpperCase() : null,
      pathRegex,
      remaining: count,
      status: template.status,
      headers: { ...template.headers, ...(body.headers || {}) },
      body: body.body !== undefined ? body.body : template.body,
    };
    this.failures.push(failure);
    return { id: failure.id, status: failure.status, headers: failure.headers, count };
  },

  takeFailure(method, path) {
    const failure = this.failures.find(
      (f) => f.remaining > 0 && (!f.method || f.method === method) && f.pathRegex.test(path),
    );
    if (!failure) return null;
    failure.remaining -= 1;
    if (failure.remaining === 0) this.failures = this.failures.filter((f) => f !== failure);
    return failure;
  },

  stateSnapshot() {
    const comments = [];
    const deployments = [];
    const checkRuns = [];
    const repos = [];
    for (const repo of this.repos.values()) {
      const fullName = this.fullName(repo);
      repos.push({
        full_name: fullName,
        default_branch: repo.defaultBranch,
        branches: Object.fromEntries(repo.branches),
        installation_id: repo.installationId ?? null,
        pulls: [...repo.pulls.values()].map((p) => ({
          number: p.number,
          state: p.state,
          merged: p.merged,
          draft: p.draft,
          fork: p.fork,
          labels: p.labels,
          head_sha: p.headSha,
          head_ref: p.headRef,
          base_ref: p.baseRef,
          user: p.user,
        })),
        statuses: repo.statuses
          .map((s) => gh.commitStatus(this.urls, fullName, s))
          .map((s, i) => ({ ...s, sha: repo.statuses[i].sha })),
      });
      for (const c of repo.comments) {
        comments.push({
          repo: fullName,
          issue_number: c.issueNumber,
          ...this.commentObject(repo, c),
        });
      }
      for (const d of repo.deployments) {
        deployments.push({
          repo: fullName,
          ...this.deploymentObject(repo, d),
          statuses: d.statuses.map((s) => this.deploymentStatusObject(repo, d, s)),
        });
      }
      for (const run of repo.checkRuns) {
        checkRuns.push({
          repo: fullName,
          source: run.source,
          ...this.checkRunObject(repo, run),
          output: { ...run.output, annotations: run.annotations },
        });
      }
    }
    return {
      now: gh.isoTime(this.now()),
      repos,
      comments,
      deployments,
      check_runs: checkRuns,
      installations: [...this.installations.values()].map((i) => ({
        id: i.id,
        account: i.account.login,
        repositories: [...i.repos],
        suspended: !!i.suspendedAt,
      })),
      installation_tokens_issued: [...this.tokens.values()].filter((t) => t.kind === 'installation')
        .length,
    };
  },

  async handleControl(req, url, body) {
    const path = url.pathname.slice('/_standin'.length);
    const method = req.method;
    let m;
    if (method === 'POST' && path === '/repos') return [201, this.createRepo(body)];
    if (method === 'POST' && (m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/commits$/))) {
      return [201, this.createCommit(this.controlRepo(m[1], m[2]), body)];
    }
    if (method === 'PUT' && (m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/))) {
      return [200, this.setPull(this.controlRepo(m[1], m[2]), Number(m[3]), body)];
    }
    if (method === 'PUT' && (m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/checks\/([^/]+)$/))) {
      return [200, this.setChecks(this.controlRepo(m[1], m[2]), decodeURIComponent(m[3]), body)];
    }
    if (
      method === 'PUT' &&
      (m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)$/))
    ) {
      const repo = this.controlRepo(m[1], m[2]);
      const role = body?.permission;
      if (!['admin', 'maintain', 'write', 'triage', 'read', 'none'].includes(role)) {
        throw new HttpError(400, 'permission must be admin, maintain, write, triage, read or none');
      }
      const login = this.user(decodeURIComponent(m[3])).login;
      repo.collaborators.set(login.toLowerCase(), role);
      return [200, { user: login, permission: role }];
    }
    if (
      method === 'POST' &&
      (m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/))
    ) {
      const repo = this.controlRepo(m[1], m[2]);
      if (!repo.pulls.has(Number(m[3]))) throw new HttpError(404, `no pull request ${m[3]}`);
      if (typeof body?.body !== 'string' || typeof body?.user !== 'string') {
        throw new HttpError(400, 'user and body are required strings');
      }
      const comment = this.addComment(repo, Number(m[3]), this.user(body.user).login, body.body);
      return [201, this.commentObject(repo, comment)];
    }
    if (method === 'PUT' && (m = path.match(/^\/installations\/(\d+)$/))) {
      return [200, this.setInstallation(Number(m[1]), body)];
    }
    if (method === 'POST' && path === '/fail') return [201, this.addFailure(body)];
    if (method === 'DELETE' && path === '/fail') {
      this.failures = [];
      return [200, {}];
    }
    if (method === 'GET' && path === '/requests') {
      const since = Number(url.searchParams.get('since') || 0);
      return [200, this.requests.filter((r) => r.seq > since)];
    }
    if (method === 'GET' && path === '/violations') return [200, this.violations];
    if (method === 'DELETE' && path === '/violations') {
      const cleared = this.violations.length;
      this.violations = [];
      return [200, { cleared }];
    }
    if (method === 'GET' && path === '/state') return [200, this.stateSnapshot()];
    if (method === 'POST' && path === '/clock') {
      const seconds = body?.advance_seconds;
      if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
        throw new HttpError(400, 'advance_seconds must be a number');
      }
      this.clockOffsetMs += seconds * 1000;
      return [200, { now: gh.isoTime(this.now()) }];
    }
    if (method === 'POST' && path === '/deliver') {
      return this.deliver(body);
    }
    throw new HttpError(404, `no control endpoint ${method} /_standin${path}`);
  },

  async deliver(body = {}) {
    let payload = body.payload;
    if (payload === undefined) {
      try {
        payload = buildWebhookPayload(this, body);
      } catch (e) {
        if (e instanceof DeliveryError) throw new HttpError(400, e.message);
        throw e;
      }
      const key = `${body.event}-${payload.action}`.replace(/_/g, '-');
      const validate = this.api.webhookValidator(key);
      if (validate && !validate(payload)) {
        this.violation({
          kind: 'webhook',
          operation: `webhook ${key}`,
          problems: validate.errors
            .slice(0, 20)
            .map((e) => `payload${e.instancePath} ${e.message}`),
        });
      }
    }
    let result;
    try {
      result = await deliverWebhook({
        ...body,
        payload,
        installationId: payload?.installation?.id,
      });
    } catch (e) {
      if (e instanceof DeliveryError) throw new HttpError(400, e.message);
      throw e;
    }
    // 502: the receiver could not be reached; otherwise the receiver's status is in the body.
    return [result.error ? 502 : 200, result];
  },
};
