// The GitHub REST operations the stand-in serves, as methods mixed into Standin (standin.mjs):
// one handler per operationId, each taking the validated request and returning
// [status, body] (or { status, raw } for a body that is not JSON). Handlers throw HttpError for
// GitHub's error answers. They run after the request passed validation and authentication.

import crypto from 'node:crypto';

import { HttpError } from './errors.mjs';
import * as gh from './objects.mjs';
import { createTarGz } from './tar.mjs';

const kMaxCommentLength = 65536;
const kMaxStatusDescription = 140;
const kCodeloadTtlMs = 5 * 60 * 1000;

// Operations the stand-in serves. Validators for these are compiled in the background right
// after startup so that the first real request does not pay for it.
export const kServedOperations = [
  'pulls/get',
  'pulls/list',
  'pulls/list-files',
  'repos/get-content',
  'git/get-ref',
  'repos/download-tarball-archive',
  'repos/get-combined-status-for-ref',
  'checks/list-for-ref',
  'issues/list-comments',
  'issues/create-comment',
  'issues/update-comment',
  'repos/create-deployment',
  'repos/create-deployment-status',
  'repos/list-deployments',
  'checks/create',
  'checks/update',
  'repos/get-collaborator-permission-level',
  'apps/get-authenticated',
  'apps/create-installation-access-token',
  'apps/list-installations',
  'apps/get-installation',
  'apps/get-repo-installation',
  'apps/list-repos-accessible-to-installation',
  'rate-limit/get',
];

function randomToken(prefix) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(36);
  return prefix + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

export const apiMethods = {
  // The repository a request addresses, as its credential may see it.
  repoFor(principal, params) {
    const repo = this.repo(params.owner, params.repo);
    if (!repo) throw new HttpError(404, 'Not Found');
    if (principal.kind === 'installation') {
      const inst = this.installations.get(principal.installationId);
      const key = this.fullName(repo).toLowerCase();
      if (
        !inst ||
        !inst.repos.has(key) ||
        (principal.repositories && !principal.repositories.has(key))
      ) {
        throw new HttpError(404, 'Not Found');
      }
    }
    return repo;
  },

  pullFor(repo, number) {
    const pr = repo.pulls.get(Number(number));
    if (!pr) throw new HttpError(404, 'Not Found');
    return pr;
  },

  paginate(ctx, items) {
    const perPage = Math.min(Math.max(Number(ctx.query.per_page) || 30, 1), 100);
    const page = Math.max(Number(ctx.query.page) || 1, 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p) => {
      const u = new URL(ctx.url.pathname, `http://${ctx.req.headers.host}`);
      for (const [k, v] of Object.entries(ctx.query)) if (k !== 'page') u.searchParams.set(k, v);
      u.searchParams.set('page', String(p));
      return u.toString();
    };
    const rels = [];
    if (page > 1) rels.push(`<${link(page - 1)}>; rel="prev"`, `<${link(1)}>; rel="first"`);
    if (page < last) rels.push(`<${link(page + 1)}>; rel="next"`, `<${link(last)}>; rel="last"`);
    if (rels.length) ctx.headers.link = rels.join(', ');
    return items.slice((page - 1) * perPage, page * perPage);
  },

  handlers() {
    return {
      'pulls/get': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        return [200, this.pullObject(repo, this.pullFor(repo, ctx.params.pull_number))];
      },
      'pulls/list': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const state = ctx.query.state ?? 'open';
        const pulls = [...repo.pulls.values()]
          .filter((p) => state === 'all' || p.state === state)
          .sort((a, b) => (ctx.query.direction === 'asc' ? a.number - b.number : b.number - a.number))
          .map((p) => {
            // The list's "pull-request-simple" form: a label's description is a string there.
            const simple = this.pullObject(repo, p);
            simple.labels = simple.labels.map((l) => ({ ...l, description: l.description ?? '' }));
            return simple;
          });
        return [200, this.paginate(ctx, pulls)];
      },
      'pulls/list-files': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const pr = this.pullFor(repo, ctx.params.pull_number);
        const files = this.changedFiles(repo, pr).map((f) =>
          gh.diffEntry(this.urls, this.fullName(repo), f),
        );
        return [200, this.paginate(ctx, files.slice(0, 3000))];
      },
      // A branch's commit (ephd reads the default branch's eph.yaml for the project's policy).
      // Only branches exist here: a tag reference is a 404, as for a branch that does not.
      'git/get-ref': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const branch = /^heads\/(.+)$/.exec(ctx.params.ref)?.[1];
        if (!branch || !repo.branches.has(branch)) throw new HttpError(404, 'Not Found');
        return [200, gh.gitRef(this.urls, this.fullName(repo), branch, repo.branches.get(branch))];
      },
      'repos/get-content': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const ref = ctx.query.ref ?? repo.defaultBranch;
        const sha = this.resolveRef(repo, ref);
        if (!sha) throw new HttpError(404, `No commit found for the ref ${ref}`);
        const files = repo.commits.get(sha).files;
        const path = ctx.params.path.replace(/\/+$/, '');
        const fullName = this.fullName(repo);
        if (files.has(path)) {
          const accept = String(ctx.req.headers.accept || '');
          if (/application\/vnd\.github(\.v3)?\.raw/.test(accept)) {
            return {
              status: 200,
              raw: files.get(path),
              contentType: 'application/vnd.github.raw; charset=utf-8',
            };
          }
          return [
            200,
            gh.contentFile(this.urls, fullName, { path, content: files.get(path), ref }),
          ];
        }
        const prefix = `${path}/`;
        const children = new Map();
        for (const [p, content] of files) {
          if (!p.startsWith(prefix)) continue;
          const rest = p.slice(prefix.length);
          const slash = rest.indexOf('/');
          const name = slash < 0 ? rest : rest.slice(0, slash);
          if (!children.has(name)) {
            children.set(name, slash < 0 ? { type: 'file', content } : { type: 'dir' });
          }
        }
        if (children.size === 0) throw new HttpError(404, 'Not Found');
        return [
          200,
          [...children.entries()]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([name, c]) =>
              gh.contentDirEntry(this.urls, fullName, {
                path: `${path}/${name}`,
                type: c.type,
                content: c.content,
                ref,
              }),
            ),
        ];
      },
      'repos/download-tarball-archive': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const sha = this.resolveRef(repo, ctx.params.ref);
        if (!sha) throw new HttpError(404, 'Not Found');
        const token = randomToken('');
        this.codeloadTokens.set(token, {
          repo: this.fullName(repo).toLowerCase(),
          sha,
          expiresAt: this.now() + kCodeloadTtlMs,
        });
        const location = `http://${ctx.req.headers.host}/_codeload/${this.fullName(repo)}/legacy.tar.gz/${ctx.params.ref.split('/').map(encodeURIComponent).join('/')}?token=${token}`;
        ctx.headers.location = location;
        return { status: 302, raw: Buffer.alloc(0) };
      },
      'repos/get-combined-status-for-ref': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const sha = this.resolveRef(repo, ctx.params.ref);
        if (!sha) throw new HttpError(404, `No commit found for SHA: ${ctx.params.ref}`);
        const latest = new Map();
        for (const s of repo.statuses.filter((x) => x.sha === sha)) latest.set(s.context, s);
        const statuses = [...latest.values()].sort((a, b) => b.id - a.id);
        let state = 'success';
        if (statuses.length === 0 || statuses.some((s) => s.state === 'pending')) state = 'pending';
        if (statuses.some((s) => s.state === 'error' || s.state === 'failure')) state = 'failure';
        const fullName = this.fullName(repo);
        return [
          200,
          {
            state,
            statuses: this.paginate(ctx, statuses).map((s) =>
              gh.commitStatus(this.urls, fullName, s),
            ),
            sha,
            total_count: statuses.length,
            repository: gh.minimalRepository(this.urls, this.repoRecord(repo)),
            commit_url: `${this.urls.api}/repos/${fullName}/commits/${sha}`,
            url: `${this.urls.api}/repos/${fullName}/commits/${sha}/status`,
          },
        ];
      },
      'checks/list-for-ref': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const sha = this.resolveRef(repo, ctx.params.ref);
        if (!sha) throw new HttpError(404, `No commit found for SHA: ${ctx.params.ref}`);
        let runs = repo.checkRuns.filter((r) => r.headSha === sha).sort((a, b) => b.id - a.id);
        if (ctx.query.check_name !== undefined)
          runs = runs.filter((r) => r.name === ctx.query.check_name);
        if (ctx.query.status !== undefined)
          runs = runs.filter((r) => r.status === ctx.query.status);
        if (ctx.query.app_id !== undefined) {
          runs = runs.filter(
            (r) =>
              (r.source === 'api' ? this.appInfo.id : this.ciApp.id) === Number(ctx.query.app_id),
          );
        }
        if ((ctx.query.filter ?? 'latest') === 'latest') {
          const seen = new Set();
          runs = runs.filter((r) => {
            const key = `${r.source}\0${r.name}`;
            if (seen.has(key)) return false;
            seen.add(key);
            return true;
          });
        }
        return [
          200,
          {
            total_count: runs.length,
            check_runs: this.paginate(ctx, runs).map((r) => this.checkRunObject(repo, r)),
          },
        ];
      },
      'issues/list-comments': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        this.pullFor(repo, ctx.params.issue_number);
        let comments = repo.comments.filter(
          (c) => c.issueNumber === Number(ctx.params.issue_number),
        );
        if (ctx.query.since !== undefined) {
          const since = Date.parse(ctx.query.since);
          comments = comments.filter((c) => c.updatedAt >= since);
        }
        return [200, this.paginate(ctx, comments).map((c) => this.commentObject(repo, c))];
      },
      'issues/create-comment': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        this.pullFor(repo, ctx.params.issue_number);
        this.checkCommentBody(ctx.body.body);
        const comment = this.addComment(
          repo,
          Number(ctx.params.issue_number),
          ctx.principal.login,
          ctx.body.body,
        );
        return [201, this.commentObject(repo, comment)];
      },
      'issues/update-comment': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const comment = repo.comments.find((c) => c.id === Number(ctx.params.comment_id));
        if (!comment) throw new HttpError(404, 'Not Found');
        if (comment.user.toLowerCase() !== ctx.principal.login.toLowerCase()) {
          // GitHub lets collaborators edit others' comments; Eph editing someone else's comment
          // is never intended, so the stand-in refuses it as a bot would be refused.
          throw new HttpError(403, 'Resource not accessible by integration');
        }
        this.checkCommentBody(ctx.body.body);
        comment.body = ctx.body.body;
        comment.updatedAt = this.now();
        return [200, this.commentObject(repo, comment)];
      },
      'repos/create-deployment': (ctx) => this.createDeployment(ctx),
      'repos/create-deployment-status': (ctx) => this.createDeploymentStatus(ctx),
      'repos/list-deployments': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        let list = [...repo.deployments].sort((a, b) => b.id - a.id);
        for (const key of ['sha', 'ref', 'task', 'environment']) {
          const value = ctx.query[key];
          if (value !== undefined && value !== 'none') list = list.filter((d) => d[key] === value);
        }
        return [200, this.paginate(ctx, list).map((d) => this.deploymentObject(repo, d))];
      },
      'checks/create': (ctx) => this.writeCheckRun(ctx, null),
      'checks/update': (ctx) => this.writeCheckRun(ctx, Number(ctx.params.check_run_id)),
      'repos/get-collaborator-permission-level': (ctx) => {
        const repo = this.repoFor(ctx.principal, ctx.params);
        const login = ctx.params.username;
        const user = this.users.get(login.toLowerCase());
        if (!user) throw new HttpError(404, `${login} is not a user`);
        let role = repo.collaborators.get(login.toLowerCase()) || (repo.private ? 'none' : 'read');
        if (login.toLowerCase() === repo.owner.login.toLowerCase()) role = 'admin';
        const permission = {
          admin: 'admin',
          maintain: 'write',
          write: 'write',
          triage: 'read',
          read: 'read',
          none: 'none',
        }[role];
        const collaborator = {
          ...gh.simpleUser(this.urls, user),
          permissions: {
            admin: role === 'admin',
            maintain: ['admin', 'maintain'].includes(role),
            push: ['admin', 'maintain', 'write'].includes(role),
            triage: ['admin', 'maintain', 'write', 'triage'].includes(role),
            pull: role !== 'none',
          },
          role_name: role,
        };
        return [200, { permission, role_name: role, user: collaborator }];
      },
      'apps/get-authenticated': () => [
        200,
        { ...this.appObject(), installations_count: this.installations.size },
      ],
      'apps/create-installation-access-token': (ctx) => this.issueInstallationToken(ctx),
      'apps/list-installations': (ctx) => [
        200,
        this.paginate(
          ctx,
          [...this.installations.values()].sort((a, b) => a.id - b.id),
        ).map((i) => this.installationObject(i)),
      ],
      'apps/get-installation': (ctx) => {
        const inst = this.installations.get(Number(ctx.params.installation_id));
        if (!inst) throw new HttpError(404, 'Not Found');
        return [200, this.installationObject(inst)];
      },
      'apps/get-repo-installation': (ctx) => {
        const repo = this.repo(ctx.params.owner, ctx.params.repo);
        const inst = repo && this.installationFor(repo);
        if (!inst) throw new HttpError(404, 'Not Found');
        return [200, this.installationObject(inst)];
      },
      'apps/list-repos-accessible-to-installation': (ctx) => {
        if (ctx.principal.kind !== 'installation')
          throw new HttpError(403, 'This endpoint requires an installation token');
        const inst = this.installations.get(ctx.principal.installationId);
        const repos = [...inst.repos]
          .filter((key) => !ctx.principal.repositories || ctx.principal.repositories.has(key))
          .map((key) => this.repos.get(key))
          .filter(Boolean);
        return [
          200,
          {
            total_count: repos.length,
            repository_selection: inst.repositorySelection,
            repositories: this.paginate(ctx, repos).map((r) =>
              gh.fullRepository(this.urls, this.repoRecord(r)),
            ),
          },
        ];
      },
      'rate-limit/get': (ctx) => {
        const rate = this.rateState(ctx.principal.rateKey);
        const core = gh.rateLimit(rate);
        const fresh = (limit) => ({ limit, remaining: limit, reset: rate.reset, used: 0 });
        return [
          200,
          {
            resources: {
              core,
              search: fresh(30),
              graphql: fresh(5000),
              code_search: fresh(10),
              integration_manifest: fresh(5000),
            },
            rate: core,
          },
        ];
      },
    };
  },

  checkCommentBody(body) {
    if (body.length > kMaxCommentLength) {
      throw new HttpError(422, 'Validation Failed', {
        errors: [
          {
            resource: 'IssueComment',
            code: 'custom',
            field: 'body',
            message: `body is too long (maximum is ${kMaxCommentLength} characters)`,
          },
        ],
      });
    }
  },

  createDeployment(ctx) {
    const repo = this.repoFor(ctx.principal, ctx.params);
    const b = ctx.body;
    const sha = this.resolveRef(repo, b.ref);
    if (!sha) {
      throw new HttpError(422, `No ref found for: ${b.ref}`, {
        errors: [
          {
            resource: 'Deployment',
            code: 'custom',
            field: 'ref',
            message: `No ref found for: ${b.ref}`,
          },
        ],
      });
    }
    // Without required_contexts GitHub demands that every context at the ref be green; Eph
    // must pass [] (or the contexts it means) or its deployments fail while CI runs.
    const contexts = new Map();
    for (const s of repo.statuses.filter((x) => x.sha === sha)) contexts.set(s.context, s.state);
    for (const r of repo.checkRuns
      .filter((x) => x.headSha === sha && x.source !== 'api')
      .sort((a, c) => a.id - c.id)) {
      contexts.set(
        r.name,
        r.status !== 'completed'
          ? 'pending'
          : ['success', 'neutral', 'skipped'].includes(r.conclusion)
            ? 'success'
            : 'failure',
      );
    }
    const required = b.required_contexts ?? [...contexts.keys()];
    const failing = required.filter((c) => contexts.get(c) !== 'success');
    if (failing.length) {
      throw new HttpError(409, `Conflict: Commit status checks failed for ${b.ref}.`, {
        errors: [
          {
            contexts: failing.map((c) => ({ context: c, state: contexts.get(c) || 'missing' })),
            resource: 'Deployment',
            field: 'required_contexts',
            code: 'invalid',
          },
        ],
      });
    }
    let payload = b.payload ?? {};
    if (typeof payload === 'string') {
      try {
        payload = payload === '' ? {} : JSON.parse(payload);
      } catch {
        // GitHub keeps a payload that is not JSON as the string it was given.
      }
    }
    const environment = b.environment ?? 'production';
    const d = {
      id: this.nextId(),
      sha,
      ref: b.ref,
      task: b.task ?? 'deploy',
      payload,
      environment,
      originalEnvironment: environment,
      description: b.description ?? null,
      creator: ctx.principal.login,
      viaApp: ctx.principal.kind === 'installation',
      transientEnvironment: b.transient_environment ?? false,
      productionEnvironment: b.production_environment ?? environment === 'production',
      createdAt: this.now(),
      updatedAt: this.now(),
      statuses: [],
    };
    repo.deployments.push(d);
    return [201, this.deploymentObject(repo, d)];
  },

  createDeploymentStatus(ctx) {
    const repo = this.repoFor(ctx.principal, ctx.params);
    const d = repo.deployments.find((x) => x.id === Number(ctx.params.deployment_id));
    if (!d) throw new HttpError(404, 'Not Found');
    const b = ctx.body;
    if ((b.description ?? '').length > kMaxStatusDescription) {
      throw new HttpError(422, 'Validation Failed', {
        errors: [
          {
            resource: 'DeploymentStatus',
            code: 'custom',
            field: 'description',
            message: `description is too long (maximum is ${kMaxStatusDescription} characters)`,
          },
        ],
      });
    }
    const previous = d.statuses.at(-1);
    const environment = b.environment ?? previous?.environment ?? d.environment;
    const addStatus = (deployment, fields) => {
      const s = {
        id: this.nextId(),
        creator: ctx.principal.login,
        viaApp: ctx.principal.kind === 'installation',
        createdAt: this.now(),
        ...fields,
      };
      deployment.statuses.push(s);
      deployment.updatedAt = s.createdAt;
      return s;
    };
    const logUrl = b.log_url ?? b.target_url ?? '';
    const s = addStatus(d, {
      state: b.state,
      description: b.description ?? '',
      environment,
      targetUrl: logUrl,
      logUrl,
      environmentUrl: b.environment_url ?? '',
    });
    d.environment = environment;
    if (b.state === 'success' && b.auto_inactive !== false) {
      for (const other of repo.deployments) {
        if (other === d || other.environment !== environment) continue;
        if (other.transientEnvironment || other.productionEnvironment) continue;
        if (other.statuses.at(-1)?.state !== 'success') continue;
        addStatus(other, {
          state: 'inactive',
          description: '',
          environment,
          targetUrl: '',
          logUrl: '',
          environmentUrl: '',
        });
      }
    }
    return [201, this.deploymentStatusObject(repo, d, s)];
  },

  writeCheckRun(ctx, id) {
    if (ctx.principal.kind !== 'installation') {
      throw new HttpError(403, 'You must authenticate via a GitHub App.');
    }
    const repo = this.repoFor(ctx.principal, ctx.params);
    const b = ctx.body;
    let run;
    if (id === null) {
      const sha = repo.commits.has(b.head_sha) ? b.head_sha : null;
      if (!sha) {
        throw new HttpError(422, `No commit found for SHA: ${b.head_sha}`, {
          errors: [{ resource: 'CheckRun', code: 'invalid', field: 'head_sha' }],
        });
      }
      run = {
        id: this.nextId(),
        source: 'api',
        name: b.name,
        headSha: sha,
        status: 'queued',
        conclusion: null,
        startedAt: this.now(),
        completedAt: null,
        externalId: '',
        detailsUrl: null,
        output: { title: null, summary: null, text: null },
        annotations: [],
        checkSuiteId: this.nextId(),
      };
    } else {
      run = repo.checkRuns.find((r) => r.id === id);
      if (!run) throw new HttpError(404, 'Not Found');
      if (run.source !== 'api')
        throw new HttpError(
          403,
          'Invalid app_id `' +
            this.appInfo.id +
            '` - check run can only be modified by the GitHub App that created it.',
        );
    }
    const next = { ...run, output: { ...run.output } };
    if (b.name !== undefined) next.name = b.name;
    if (b.details_url !== undefined) next.detailsUrl = b.details_url;
    if (b.external_id !== undefined) next.externalId = b.external_id;
    if (b.started_at !== undefined) next.startedAt = Date.parse(b.started_at);
    if (b.status !== undefined) next.status = b.status;
    if (b.conclusion !== undefined) {
      next.conclusion = b.conclusion;
      next.status = 'completed';
    }
    if (next.status === 'completed') {
      if (!next.conclusion) {
        throw new HttpError(
          422,
          'Invalid request.\n\nconclusion is required when status is completed.',
        );
      }
      next.completedAt =
        b.completed_at !== undefined ? Date.parse(b.completed_at) : next.completedAt || this.now();
    }
    const annotations = [];
    if (b.output) {
      next.output = {
        title: b.output.title ?? null,
        summary: b.output.summary ?? null,
        text: b.output.text ?? null,
      };
      for (const [i, a] of (b.output.annotations || []).entries()) {
        if (
          a.start_line !== a.end_line &&
          (a.start_column !== undefined || a.end_column !== undefined)
        ) {
          throw new HttpError(422, 'Validation Failed', {
            errors: [
              {
                resource: 'CheckRun',
                code: 'custom',
                field: `output.annotations[${i}]`,
                message:
                  'start_column and end_column may only be set when start_line equals end_line',
              },
            ],
          });
        }
        if (a.end_line < a.start_line) {
          throw new HttpError(422, 'Validation Failed', {
            errors: [
              {
                resource: 'CheckRun',
                code: 'custom',
                field: `output.annotations[${i}]`,
                message: 'end_line must not be before start_line',
              },
            ],
          });
        }
        annotations.push({ ...a });
      }
    }
    // Annotations accumulate over updates, as on GitHub.
    next.annotations = [...run.annotations, ...annotations];
    Object.assign(run, next);
    if (id === null) repo.checkRuns.push(run);
    return [id === null ? 201 : 200, this.checkRunObject(repo, run)];
  },

  issueInstallationToken(ctx) {
    const inst = this.installations.get(Number(ctx.params.installation_id));
    if (!inst) throw new HttpError(404, 'Not Found');
    if (inst.suspendedAt) throw new HttpError(403, 'This installation has been suspended');
    const b = ctx.body || {};
    let repositories = null;
    if (b.repositories || b.repository_ids) {
      repositories = new Set();
      for (const name of b.repositories || []) {
        const key = `${inst.account.login}/${name}`.toLowerCase();
        if (!inst.repos.has(key))
          throw new HttpError(
            422,
            `There is at least one repository that does not exist or is not accessible to the parent installation.`,
          );
        repositories.add(key);
      }
      for (const rid of b.repository_ids || []) {
        const key = [...inst.repos].find((k) => this.repos.get(k)?.id === rid);
        if (!key)
          throw new HttpError(
            422,
            `There is at least one repository that does not exist or is not accessible to the parent installation.`,
          );
        repositories.add(key);
      }
    }
    const token = randomToken('ghs_');
    const expiresAt = this.now() + this.options.installationTokenTtl * 1000;
    this.tokens.set(token, {
      kind: 'installation',
      login: this.botUser.login,
      installationId: inst.id,
      expiresAt,
      repositories,
    });
    const body = {
      token,
      expires_at: gh.isoTime(expiresAt),
      permissions: b.permissions || this.appInfo.permissions,
      repository_selection: repositories ? 'selected' : inst.repositorySelection,
    };
    if (repositories) {
      body.repositories = [...repositories].map((k) =>
        gh.fullRepository(this.urls, this.repoRecord(this.repos.get(k))),
      );
    }
    return [201, body];
  },

  serveCodeload(req, res, url, entry) {
    const m = url.pathname.match(/^\/_codeload\/([^/]+)\/([^/]+)\/legacy\.tar\.gz\/(.+)$/);
    const grant = this.codeloadTokens.get(url.searchParams.get('token') || '');
    if (
      !m ||
      !grant ||
      grant.expiresAt <= this.now() ||
      grant.repo !== `${m[1]}/${m[2]}`.toLowerCase()
    ) {
      entry.status = 404;
      return this.send(res, 404, 'Not Found', { 'content-type': 'text/plain; charset=utf-8' });
    }
    const repo = this.repos.get(grant.repo);
    const files = Object.fromEntries(repo.commits.get(grant.sha).files);
    const prefix = `${repo.owner.login}-${repo.name}-${grant.sha.slice(0, 7)}`;
    const archive = createTarGz(files, {
      prefix,
      comment: grant.sha,
      mtime: Math.floor(repo.commits.get(grant.sha).date / 1000),
    });
    entry.status = 200;
    return this.send(res, 200, archive, {
      'content-type': 'application/x-gzip',
      'content-disposition': `attachment; filename=${prefix}.tar.gz`,
    });
  },
};
