// Tests of the GitHub stand-in itself, driving it as a process over HTTP.
// Run: node --test test/github/

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';

import { readTarGz } from './tar.mjs';
import { makeAppKeys, signAppJwt, startStandin } from './testing.mjs';

const kPat = 'ghp_standinTestToken0000000000000000000';
const kAppId = 4242;
const PAT = `token ${kPat}`;

let standin;
let keys;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'standin-test-'));
  keys = makeAppKeys();
  fs.writeFileSync(path.join(tmp, 'app.pem'), keys.publicKey);
  standin = await startStandin([
    '--token',
    kPat,
    '--app-id',
    String(kAppId),
    '--app-public-key',
    path.join(tmp, 'app.pem'),
  ]);
});

after(async () => {
  await standin?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Every test ends with no violations left: tests that provoke some check and clear them.
afterEach(async () => {
  const left = await standin.violations();
  await standin.clearViolations();
  assert.deepEqual(left, [], 'unexpected violations');
});

async function expectViolation(kind, pattern) {
  const violations = await standin.violations();
  await standin.clearViolations();
  assert.equal(violations.length, 1, JSON.stringify(violations));
  assert.equal(violations[0].kind, kind);
  assert.match(violations[0].problems.join('\n'), pattern);
  return violations[0];
}

let repoCounter = 0;
async function newRepo(
  files = { 'eph.yaml': 'name: shop\n', 'k8s/app.yaml': 'kind: Deployment\n' },
) {
  repoCounter += 1;
  const name = `shop${repoCounter}`;
  const created = await standin.control('POST', '/repos', { owner: 'acme', repo: name, files });
  return { name, full: `acme/${name}`, base: created.sha, installationId: created.installation_id };
}

async function installationToken(installationId) {
  const jwt = signAppJwt(keys.privateKey, { iss: kAppId });
  const r = await standin.github('POST', `/app/installations/${installationId}/access_tokens`, {
    auth: `Bearer ${jwt}`,
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

test('starts quickly and prints where it listens', () => {
  assert.match(standin.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  // A figure, not an assertion: the budget (about 3 s) is checked by reading it.
  console.log(`# stand-in startup: ${standin.startupMs.toFixed(0)} ms`);
});

test('serves the pull request, its files, contents, checks and comments with valid bodies', async () => {
  const repo = await newRepo();
  const { sha: head } = await standin.control('POST', `/repos/${repo.full}/commits`, {
    branch: 'feature',
    files: { 'eph.yaml': 'name: shop\nttl: 2h\n', 'new.txt': 'new\n' },
  });
  await standin.control('PUT', `/repos/${repo.full}/pulls/7`, {
    head_ref: 'feature',
    labels: ['preview'],
    user: 'alice',
    draft: true,
  });

  let r = await standin.github('GET', `/repos/${repo.full}/pulls/7`, { auth: PAT });
  assert.equal(r.status, 200);
  assert.equal(r.body.head.sha, head);
  assert.equal(r.body.base.sha, repo.base);
  assert.deepEqual(
    r.body.labels.map((l) => l.name),
    ['preview'],
  );
  assert.equal(r.body.draft, true);
  assert.equal(r.body.head.repo.fork, false);
  assert.equal(r.body.user.login, 'alice');
  assert.equal(r.body.changed_files, 2);
  assert.ok(Number(r.headers.get('x-ratelimit-remaining')) < 5000);

  r = await standin.github('GET', `/repos/${repo.full}/pulls/7/files`, { auth: PAT });
  assert.deepEqual(
    r.body.map((f) => [f.filename, f.status]),
    [
      ['eph.yaml', 'modified'],
      ['new.txt', 'added'],
    ],
  );

  r = await standin.github('GET', `/repos/${repo.full}/contents/eph.yaml?ref=${head}`, {
    auth: PAT,
  });
  assert.equal(r.status, 200);
  assert.equal(Buffer.from(r.body.content, 'base64').toString(), 'name: shop\nttl: 2h\n');
  r = await standin.github('GET', `/repos/${repo.full}/contents/eph.yaml?ref=${repo.base}`, {
    auth: PAT,
  });
  assert.equal(Buffer.from(r.body.content, 'base64').toString(), 'name: shop\n');
  r = await standin.github('GET', `/repos/${repo.full}/contents/eph.yaml?ref=${head}`, {
    auth: PAT,
    headers: { accept: 'application/vnd.github.raw+json' },
    raw: true,
  });
  assert.equal(r.buffer.toString(), 'name: shop\nttl: 2h\n');
  r = await standin.github('GET', `/repos/${repo.full}/contents/k8s?ref=${head}`, { auth: PAT });
  assert.deepEqual(
    r.body.map((e) => e.path),
    ['k8s/app.yaml'],
  );
  r = await standin.github('GET', `/repos/${repo.full}/contents/missing.yaml?ref=${head}`, {
    auth: PAT,
  });
  assert.equal(r.status, 404);

  await standin.control('PUT', `/repos/${repo.full}/checks/${head}`, {
    check_runs: [
      { name: 'build', conclusion: 'success' },
      { name: 'lint', status: 'in_progress' },
    ],
    statuses: [{ context: 'ci/jenkins', state: 'failure', description: 'red' }],
  });
  r = await standin.github('GET', `/repos/${repo.full}/commits/${head}/check-runs`, { auth: PAT });
  assert.equal(r.body.total_count, 2);
  assert.deepEqual(r.body.check_runs.map((c) => [c.name, c.status, c.conclusion]).sort(), [
    ['build', 'completed', 'success'],
    ['lint', 'in_progress', null],
  ]);
  r = await standin.github('GET', `/repos/${repo.full}/commits/${head}/status`, { auth: PAT });
  assert.equal(r.body.state, 'failure');
  assert.deepEqual(
    r.body.statuses.map((s) => s.context),
    ['ci/jenkins'],
  );

  r = await standin.github('POST', `/repos/${repo.full}/issues/7/comments`, {
    auth: PAT,
    body: { body: 'pending <!-- eph:environment=x -->' },
  });
  assert.equal(r.status, 201);
  const commentId = r.body.id;
  r = await standin.github('PATCH', `/repos/${repo.full}/issues/comments/${commentId}`, {
    auth: PAT,
    body: { body: 'ready <!-- eph:environment=x -->' },
  });
  assert.equal(r.status, 200);
  r = await standin.github('GET', `/repos/${repo.full}/issues/7/comments`, { auth: PAT });
  assert.deepEqual(
    r.body.map((c) => c.body),
    ['ready <!-- eph:environment=x -->'],
  );

  r = await standin.github('GET', `/repos/${repo.full}/collaborators/alice/permission`, {
    auth: PAT,
  });
  assert.equal(r.body.permission, 'none');
  await standin.control('PUT', `/repos/${repo.full}/collaborators/alice`, {
    permission: 'maintain',
  });
  r = await standin.github('GET', `/repos/${repo.full}/collaborators/alice/permission`, {
    auth: PAT,
  });
  assert.deepEqual([r.body.permission, r.body.role_name], ['write', 'maintain']);

  r = await standin.github('GET', '/rate_limit', { auth: PAT });
  assert.equal(r.status, 200);
  assert.equal(r.body.resources.core.limit, 5000);

  const log = (await standin.request('GET', '/_standin/requests')).body;
  assert.ok(log.some((e) => e.operation === 'pulls/get' && e.status === 200));
});

test('deployments: statuses, transient environments, required contexts', async () => {
  const repo = await newRepo();
  await standin.control('PUT', `/repos/${repo.full}/checks/${repo.base}`, {
    statuses: [{ context: 'ci', state: 'pending' }],
  });

  // Without required_contexts GitHub refuses to deploy while a context is not green.
  let r = await standin.github('POST', `/repos/${repo.full}/deployments`, {
    auth: PAT,
    body: { ref: repo.base, environment: 'pr-1' },
  });
  assert.equal(r.status, 409);
  assert.match(r.body.message, /status checks failed/);

  r = await standin.github('POST', `/repos/${repo.full}/deployments`, {
    auth: PAT,
    body: {
      ref: repo.base,
      environment: 'pr-1',
      transient_environment: true,
      auto_merge: false,
      required_contexts: [],
      payload: { env: 'x' },
    },
  });
  assert.equal(r.status, 201);
  assert.equal(r.body.transient_environment, true);
  assert.equal(r.body.production_environment, false);
  const id = r.body.id;
  for (const state of ['in_progress', 'success', 'inactive']) {
    r = await standin.github('POST', `/repos/${repo.full}/deployments/${id}/statuses`, {
      auth: PAT,
      body: {
        state,
        environment_url: state === 'success' ? 'http://pr-1.preview.test' : undefined,
      },
    });
    assert.equal(r.status, 201);
  }
  r = await standin.github('GET', `/repos/${repo.full}/deployments?environment=pr-1`, {
    auth: PAT,
  });
  assert.deepEqual(
    r.body.map((d) => d.id),
    [id],
  );
  const state = (await standin.request('GET', '/_standin/state')).body;
  const dep = state.deployments.find((d) => d.id === id);
  assert.deepEqual(
    dep.statuses.map((s) => s.state),
    ['in_progress', 'success', 'inactive'],
  );
  assert.equal(dep.statuses[1].environment_url, 'http://pr-1.preview.test');

  // GitHub caps a status description at 140 characters; more is a rejected (recorded) request.
  r = await standin.github('POST', `/repos/${repo.full}/deployments/${id}/statuses`, {
    auth: PAT,
    body: { state: 'failure', description: 'x'.repeat(141) },
  });
  assert.equal(r.status, 422);
  await expectViolation('rejected', /description is too long/);
});

test('a request body the description does not allow is a 422 and a recorded violation', async () => {
  const repo = await newRepo();
  let r = await standin.github('POST', `/repos/${repo.full}/deployments`, {
    auth: PAT,
    body: { environment: 'pr-1' },
  });
  assert.equal(r.status, 422);
  assert.match(r.body.message, /required property 'ref'/);
  const v = await expectViolation('request', /body must have required property 'ref'/);
  assert.equal(v.operation, 'repos/create-deployment');

  r = await standin.github('POST', `/repos/${repo.full}/deployments`, {
    auth: PAT,
    body: { ref: repo.base, transient_enviroment: true },
  });
  assert.equal(r.status, 422);
  await expectViolation('request', /unknown property "transient_enviroment"/);

  r = await standin.github('POST', `/repos/${repo.full}/deployments/1/statuses`, {
    auth: PAT,
    body: { state: 'deployed' },
  });
  assert.equal(r.status, 422);
  await expectViolation('request', /body\/state must be one of/);

  r = await standin.github('GET', `/repos/${repo.full}/pulls/seven`, { auth: PAT });
  assert.equal(r.status, 422);
  await expectViolation('request', /path\/pull_number must be integer/);

  r = await standin.github('GET', `/repos/${repo.full}/issues/1/comments?per_pge=100`, {
    auth: PAT,
  });
  assert.equal(r.status, 422);
  await expectViolation('request', /unknown property "per_pge"/);

  r = await standin.github('POST', `/repos/${repo.full}/issues/1/comments`, {
    auth: PAT,
    body: '{"body": ',
  });
  assert.equal(r.status, 400);
  await expectViolation('request', /not valid JSON/);
});

test('an unknown endpoint is a 404 and a violation; so is one GitHub has but the stand-in does not serve', async () => {
  let r = await standin.github('GET', '/repos/acme/x/frobnicate', { auth: PAT });
  assert.equal(r.status, 404);
  await expectViolation('unknown-operation', /no operation at \/repos\/acme\/x\/frobnicate/);

  r = await standin.github('DELETE', '/repos/acme/x/pulls/1', { auth: PAT });
  assert.equal(r.status, 404);
  await expectViolation('unknown-operation', /no DELETE operation/);

  r = await standin.github('GET', '/repos/acme/x/releases', { auth: PAT });
  assert.equal(r.status, 404);
  await expectViolation('unimplemented', /repos\/list-releases/);
});

test('credentials and headers are checked', async () => {
  const repo = await newRepo();
  await standin.control('PUT', `/repos/${repo.full}/pulls/1`, {});
  let r = await standin.github('GET', `/repos/${repo.full}/pulls/1`);
  assert.equal(r.status, 401);
  await expectViolation('auth', /Requires authentication/);

  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth: 'token ghp_wrong' });
  assert.equal(r.status, 401);
  await expectViolation('auth', /Bad credentials/);

  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth: `Basic ${kPat}` });
  assert.equal(r.status, 401);
  await expectViolation('auth', /Bad credentials/);

  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth: `Bearer ${kPat}` });
  assert.equal(r.status, 200);

  // fetch always sends a User-Agent, so this one goes through the http module.
  const status = await new Promise((resolve, reject) => {
    http
      .get(
        `${standin.url}/repos/${repo.full}/pulls/1`,
        { headers: { authorization: PAT } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      )
      .on('error', reject);
  });
  assert.equal(status, 403, 'GitHub refuses requests without a User-Agent');
  await expectViolation('header', /User-Agent/);

  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, {
    auth: PAT,
    headers: { 'x-github-api-version': '2021-01-01' },
  });
  assert.equal(r.status, 400);
  await expectViolation('header', /not a version/);

  // GitHub Enterprise Server serves the API under /api/v3.
  r = await standin.github('GET', `/api/v3/repos/${repo.full}/pulls/1`, { auth: PAT });
  assert.equal(r.status, 200);
});

test('GitHub App: the JWT is verified, installation tokens work, expire and are scoped', async () => {
  const repo = await newRepo();
  const other = await standin.control('POST', '/repos', {
    owner: 'globex',
    repo: 'site',
    files: { 'eph.yaml': 'x\n' },
  });
  await standin.control('PUT', `/repos/${repo.full}/pulls/1`, {});
  const jwt = signAppJwt(keys.privateKey, { iss: kAppId });

  let r = await standin.github('GET', '/app/installations', { auth: `Bearer ${jwt}` });
  assert.equal(r.status, 200);
  assert.ok(r.body.some((i) => i.id === repo.installationId && i.account.login === 'acme'));
  r = await standin.github('GET', `/repos/${repo.full}/installation`, { auth: `Bearer ${jwt}` });
  assert.equal(r.body.id, repo.installationId);
  r = await standin.github('GET', '/app', { auth: `Bearer ${jwt}` });
  assert.equal(r.body.id, kAppId);

  const issued = await installationToken(repo.installationId);
  assert.match(issued.token, /^ghs_/);
  const expires = Date.parse(issued.expires_at) - Date.now();
  assert.ok(expires > 3500e3 && expires <= 3600e3, `expires in ${expires} ms`);
  const auth = `token ${issued.token}`;
  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth });
  assert.equal(r.status, 200);
  r = await standin.github('GET', '/installation/repositories', { auth });
  const visible = r.body.repositories.map((x) => x.full_name);
  assert.ok(visible.includes(repo.full));
  assert.ok(!visible.includes(other.full_name));

  // Another installation's repository is invisible to this token, as on GitHub.
  r = await standin.github('GET', `/repos/${other.full_name}/contents/eph.yaml`, { auth });
  assert.equal(r.status, 404);

  // Removing the repository from the installation (what installation_repositories "removed"
  // reports) hides it from the installation's tokens.
  const { repositories } = (
    await standin.request('GET', '/_standin/state')
  ).body.installations.find((i) => i.id === repo.installationId);
  await standin.control('PUT', `/installations/${repo.installationId}`, {
    repositories: repositories.filter((x) => x !== repo.full),
  });
  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth });
  assert.equal(r.status, 404);
  await standin.control('PUT', `/installations/${repo.installationId}`, { repositories });
  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth });
  assert.equal(r.status, 200);

  // Check runs need an installation token; a personal access token is refused.
  r = await standin.github('POST', `/repos/${repo.full}/check-runs`, {
    auth: PAT,
    body: { name: 'eph', head_sha: repo.base },
  });
  assert.equal(r.status, 403);
  r = await standin.github('POST', `/repos/${repo.full}/check-runs`, {
    auth,
    body: { name: 'eph', head_sha: repo.base, status: 'in_progress' },
  });
  assert.equal(r.status, 201);
  const runId = r.body.id;
  const annotations = [
    {
      path: 'eph.yaml',
      start_line: 3,
      end_line: 3,
      annotation_level: 'failure',
      message: 'unknown key "tll"',
    },
  ];
  r = await standin.github('PATCH', `/repos/${repo.full}/check-runs/${runId}`, {
    auth,
    body: {
      conclusion: 'failure',
      output: { title: 'eph.yaml is invalid', summary: '1 error', annotations },
    },
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'completed');
  assert.equal(r.body.output.annotations_count, 1);
  r = await standin.github('PATCH', `/repos/${repo.full}/check-runs/${runId}`, {
    auth,
    body: {
      output: {
        title: 't',
        summary: 's',
        annotations: [{ ...annotations[0], end_line: 4, start_column: 1, end_column: 2 }],
      },
    },
  });
  assert.equal(r.status, 422);
  await expectViolation('rejected', /start_column/);
  const state = (await standin.request('GET', '/_standin/state')).body;
  assert.deepEqual(state.check_runs.find((c) => c.id === runId).output.annotations, annotations);

  // Bad JWTs: wrong key, expired, too long-lived, wrong issuer, or a token where a JWT belongs.
  const wrongKeys = makeAppKeys();
  const now = Math.floor(Date.now() / 1000);
  const bad = [
    [signAppJwt(wrongKeys.privateKey, { iss: kAppId }), /signature/],
    [signAppJwt(keys.privateKey, { iss: kAppId, iat: now - 700, exp: now - 100 }), /'exp'/],
    [
      signAppJwt(keys.privateKey, { iss: kAppId, iat: now, exp: now + 3600 }),
      /too far in the future/,
    ],
    [signAppJwt(keys.privateKey, { iss: 99 }), /Integration not found/],
    [kPat, /could not be decoded/],
  ];
  for (const [credential, why] of bad) {
    r = await standin.github('POST', `/app/installations/${repo.installationId}/access_tokens`, {
      auth: `Bearer ${credential}`,
    });
    assert.equal(r.status, 401);
    await expectViolation('auth', why);
  }
  // A JWT is not a token for repository endpoints.
  r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth: `Bearer ${jwt}` });
  assert.equal(r.status, 401);
  await expectViolation('auth', /JWT/);

  // An hour later the installation token is expired.
  await standin.control('POST', '/clock', { advance_seconds: 3601 });
  try {
    r = await standin.github('GET', `/repos/${repo.full}/pulls/1`, { auth });
    assert.equal(r.status, 401);
    await expectViolation('auth', /expired/);
  } finally {
    await standin.control('POST', '/clock', { advance_seconds: -3601 });
  }
});

test('the tarball redirects to an archive of the repository at that commit', async () => {
  const long = `${'deep/'.repeat(25)}file.txt`;
  const repo = await newRepo({
    'eph.yaml': 'v: 1\n',
    'k8s/app.yaml': 'kind: Deployment\n',
    [long]: 'deep\n',
  });
  const { sha } = await standin.control('POST', `/repos/${repo.full}/commits`, {
    files: { 'eph.yaml': 'v: 2\n', 'k8s/app.yaml': null },
  });

  let r = await standin.github('GET', `/repos/${repo.full}/tarball/${repo.base}`, { auth: PAT });
  assert.equal(r.status, 302);
  const location = r.headers.get('location');
  assert.match(location, /\/_codeload\/acme\/shop\d+\/legacy\.tar\.gz\/[0-9a-f]{40}\?token=/);
  r = await standin.request('GET', location, { raw: true });
  assert.equal(r.status, 200);
  const archive = readTarGz(r.buffer);
  const prefix = `acme-${repo.name}-${repo.base.slice(0, 7)}/`;
  assert.equal(archive.comment, repo.base);
  assert.deepEqual(
    Object.fromEntries(Object.entries(archive.files).map(([k, v]) => [k, v.toString()])),
    {
      [`${prefix}eph.yaml`]: 'v: 1\n',
      [`${prefix}k8s/app.yaml`]: 'kind: Deployment\n',
      [`${prefix}${long}`]: 'deep\n',
    },
  );
  // And the system tar agrees.
  const out = path.join(tmp, 'x');
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(tmp, 'a.tar.gz'), r.buffer);
  execFileSync('tar', ['-xzf', path.join(tmp, 'a.tar.gz'), '-C', out]);
  assert.equal(fs.readFileSync(path.join(out, prefix, long), 'utf8'), 'deep\n');

  // A redirect-following client gets the newer commit's files through a branch name.
  r = await standin.github('GET', `/repos/${repo.full}/tarball/main`, {
    auth: PAT,
    raw: true,
    redirect: 'follow',
  });
  assert.equal(r.status, 200);
  const newer = readTarGz(r.buffer);
  assert.equal(newer.comment, sha);
  assert.deepEqual(
    Object.keys(newer.files)
      .map((k) => k.split('/').slice(1).join('/'))
      .sort(),
    [long, 'eph.yaml'].sort(),
  );

  r = await standin.request('GET', location.replace(/token=\w+/, 'token=forged'));
  assert.equal(r.status, 404);
  r = await standin.github('GET', `/repos/${repo.full}/tarball/${'0'.repeat(40)}`, { auth: PAT });
  assert.equal(r.status, 404);
});

test('scripted failures: rate limits, secondary limits, server errors', async () => {
  const repo = await newRepo();
  await standin.control('PUT', `/repos/${repo.full}/pulls/3`, {});
  const pull = `/repos/${repo.full}/pulls/3`;
  await standin.control('POST', '/fail', {
    method: 'GET',
    path: `^${pull}$`,
    count: 2,
    preset: 'rate-limit',
    reset_in: 120,
  });
  const since = (await standin.request('GET', '/_standin/requests')).body.at(-1)?.seq ?? 0;
  for (let i = 0; i < 2; i++) {
    const r = await standin.github('GET', pull, { auth: PAT });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('x-ratelimit-remaining'), '0');
    const reset = Number(r.headers.get('x-ratelimit-reset'));
    assert.ok(Math.abs(reset - (Date.now() / 1000 + 120)) < 5);
    assert.match(r.body.message, /rate limit/);
  }
  let r = await standin.github('GET', pull, { auth: PAT });
  assert.equal(r.status, 200);

  await standin.control('POST', '/fail', {
    path: '/comments$',
    preset: 'too-many-requests',
    reset_in: 7,
  });
  r = await standin.github('GET', `/repos/${repo.full}/issues/3/comments`, { auth: PAT });
  assert.equal(r.status, 429);
  assert.equal(r.headers.get('retry-after'), '7');

  await standin.control('POST', '/fail', { path: '/comments$', preset: 'secondary-rate-limit' });
  r = await standin.github('GET', `/repos/${repo.full}/issues/3/comments`, { auth: PAT });
  assert.equal(r.status, 403);
  assert.equal(r.headers.get('retry-after'), '60');

  await standin.control('POST', '/fail', { method: 'POST', path: '/deployments$', status: 502 });
  r = await standin.github('POST', `/repos/${repo.full}/deployments`, {
    auth: PAT,
    body: { ref: repo.base, required_contexts: [] },
  });
  assert.equal(r.status, 502);
  r = await standin.github('POST', `/repos/${repo.full}/deployments`, {
    auth: PAT,
    body: { ref: repo.base, required_contexts: [] },
  });
  assert.equal(r.status, 201);

  const log = (await standin.request('GET', `/_standin/requests?since=${since}`)).body;
  assert.deepEqual(
    log.map((e) => e.status),
    [403, 403, 200, 429, 403, 502, 201],
  );
  assert.deepEqual(log[5].body, { ref: repo.base, required_contexts: [] });
});

test('lists paginate like GitHub, with a Link header', async () => {
  const repo = await newRepo();
  await standin.control('PUT', `/repos/${repo.full}/pulls/2`, {});
  for (let i = 0; i < 35; i++) {
    await standin.control('POST', `/repos/${repo.full}/issues/2/comments`, {
      user: 'bob',
      body: `c${i}`,
    });
  }
  let r = await standin.github('GET', `/repos/${repo.full}/issues/2/comments`, { auth: PAT });
  assert.equal(r.body.length, 30);
  const next = r.headers.get('link').match(/<([^>]+)>; rel="next"/)[1];
  r = await standin.github('GET', next, { auth: PAT });
  assert.deepEqual(
    r.body.map((c) => c.body),
    ['c30', 'c31', 'c32', 'c33', 'c34'],
  );
  assert.doesNotMatch(r.headers.get('link'), /rel="next"/);
});

test('pull request state: forks, merges, labels', async () => {
  const repo = await newRepo();
  let pr = await standin.control('PUT', `/repos/${repo.full}/pulls/4`, {
    fork: true,
    user: 'mallory',
    head_ref: 'patch-1',
  });
  assert.equal(pr.head.repo.fork, true);
  assert.equal(pr.head.repo.full_name, `mallory/${repo.name}`);
  assert.equal(pr.head.label, 'mallory:patch-1');
  pr = await standin.control('PUT', `/repos/${repo.full}/pulls/4`, {
    state: 'merged',
    labels: ['a', 'b'],
  });
  const r = await standin.github('GET', `/repos/${repo.full}/pulls/4`, { auth: PAT });
  assert.equal(r.body.state, 'closed');
  assert.equal(r.body.merged, true);
  assert.ok(r.body.merged_at);
  assert.deepEqual(
    r.body.labels.map((l) => l.name),
    ['a', 'b'],
  );
});

test('webhooks are signed with HMAC-SHA256 over the exact bytes sent', async () => {
  const received = [];
  const receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(202).end('queued');
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${receiver.address().port}/webhook`;
  try {
    const repo = await newRepo();
    await standin.control('PUT', `/repos/${repo.full}/pulls/5`, {
      labels: ['preview'],
      user: 'alice',
    });
    const secret = "It's a Secret to Everybody";

    let r = await standin.control('POST', '/deliver', {
      url,
      secret,
      event: 'ping',
      payload: { zen: 'Keep it logically awesome.', hook_id: 1 },
    });
    assert.equal(r.status, 202);
    r = await standin.control('POST', '/deliver', {
      url,
      secret,
      event: 'pull_request',
      action: 'labeled',
      repo: repo.full,
      number: 5,
    });
    assert.equal(r.status, 202);
    await standin.control('POST', `/repos/${repo.full}/issues/5/comments`, {
      user: 'alice',
      body: '/eph extend 24h',
    });
    r = await standin.control('POST', '/deliver', {
      url,
      secret,
      event: 'issue_comment',
      repo: repo.full,
      number: 5,
    });
    assert.equal(r.status, 202);

    assert.equal(received.length, 3);
    for (const { headers, body } of received) {
      const expected = `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
      assert.equal(headers['x-hub-signature-256'], expected);
      assert.match(headers['x-github-delivery'], /^[0-9a-f-]{36}$/);
      assert.equal(headers['content-type'], 'application/json');
      assert.match(headers['user-agent'], /^GitHub-Hookshot\//);
    }
    assert.notEqual(
      received[0].headers['x-github-delivery'],
      received[1].headers['x-github-delivery'],
    );
    assert.deepEqual(
      received.map((x) => x.headers['x-github-event']),
      ['ping', 'pull_request', 'issue_comment'],
    );
    const labeled = JSON.parse(received[1].body);
    assert.equal(labeled.action, 'labeled');
    assert.equal(labeled.label.name, 'preview');
    assert.equal(labeled.pull_request.number, 5);
    assert.equal(labeled.installation.id, repo.installationId);
    const comment = JSON.parse(received[2].body);
    assert.equal(comment.comment.body, '/eph extend 24h');
    assert.equal(comment.sender.login, 'alice');
    assert.ok(comment.issue.pull_request);

    // A replay reuses the delivery id; a forged signature is sent as given.
    r = await standin.control('POST', '/deliver', {
      url,
      secret,
      event: 'ping',
      payload: {},
      delivery: received[0].headers['x-github-delivery'],
      signature: 'sha256=00',
    });
    assert.equal(
      received[3].headers['x-github-delivery'],
      received[0].headers['x-github-delivery'],
    );
    assert.equal(received[3].headers['x-hub-signature-256'], 'sha256=00');

    // Only loopback receivers.
    r = await standin.request('POST', '/_standin/deliver', {
      body: { url: 'http://example.com/hook', secret, event: 'ping', payload: {} },
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /only loopback/);
    r = await standin.request('POST', '/_standin/deliver', {
      body: { url: 'http://127.0.0.1:1/hook', secret, event: 'ping', payload: {} },
    });
    assert.equal(r.status, 502, 'nothing listens on port 1');
  } finally {
    receiver.close();
  }
});

test('every pull_request action the stand-in builds is a valid webhook payload', async () => {
  const receiver = http.createServer((req, res) =>
    req.resume().on('end', () => res.writeHead(204).end()),
  );
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${receiver.address().port}/`;
  try {
    const repo = await newRepo();
    await standin.control('PUT', `/repos/${repo.full}/pulls/6`, { labels: ['preview'] });
    for (const action of [
      'opened',
      'reopened',
      'synchronize',
      'labeled',
      'unlabeled',
      'ready_for_review',
      'converted_to_draft',
      'edited',
      'closed',
    ]) {
      const r = await standin.control('POST', '/deliver', {
        url,
        secret: 's',
        event: 'pull_request',
        action,
        repo: repo.full,
        number: 6,
      });
      assert.equal(r.status, 204, action);
    }
    await standin.control('PUT', `/repos/${repo.full}/pulls/6`, { state: 'merged' });
    await standin.control('POST', '/deliver', {
      url,
      secret: 's',
      event: 'pull_request',
      action: 'closed',
      repo: repo.full,
      number: 6,
    });
  } finally {
    receiver.close();
  }
});
