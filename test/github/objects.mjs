// Builders for the GitHub REST objects the stand-in returns (users, repositories, pull requests,
// comments, deployments, check runs, installations), filled in the way api.github.com fills them
// so that every one is valid under GitHub's OpenAPI description.
//
// A Urls value carries where the stand-in serves its API (`api`, e.g. http://127.0.0.1:PORT) and
// the web host used for html_url fields. Builders are pure functions of the stand-in's state
// records; they never mutate them.

import crypto from 'node:crypto';

export function isoTime(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function nodeId(kind, id) {
  return Buffer.from(`0${kind.length}:${kind}${id}`).toString('base64').replace(/=+$/, '');
}

// Git's blob id for a file's content, as the contents API reports it.
export function blobSha(content) {
  const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return crypto.createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

const enc = encodeURIComponent;

export function simpleUser(urls, user) {
  const base = `${urls.api}/users/${enc(user.login)}`;
  return {
    login: user.login,
    id: user.id,
    node_id: nodeId(user.type === 'Bot' ? 'Bot' : 'User', user.id),
    avatar_url: `https://avatars.githubusercontent.com/u/${user.id}?v=4`,
    gravatar_id: '',
    url: base,
    html_url:
      user.type === 'Bot'
        ? `${urls.web}/apps/${enc(user.login.replace(/\[bot\]$/, ''))}`
        : `${urls.web}/${enc(user.login)}`,
    followers_url: `${base}/followers`,
    following_url: `${base}/following{/other_user}`,
    gists_url: `${base}/gists{/gist_id}`,
    starred_url: `${base}/starred{/owner}{/repo}`,
    subscriptions_url: `${base}/subscriptions`,
    organizations_url: `${base}/orgs`,
    repos_url: `${base}/repos`,
    events_url: `${base}/events{/privacy}`,
    received_events_url: `${base}/received_events`,
    type: user.type,
    user_view_type: 'public',
    site_admin: false,
  };
}

// The repository fields shared by `minimal-repository` and `repository`.
function repositoryUrls(urls, fullName) {
  const api = `${urls.api}/repos/${fullName}`;
  return {
    html_url: `${urls.web}/${fullName}`,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    hooks_url: `${api}/hooks`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
  };
}

// repo: { id, owner (user record), name, private, fork, defaultBranch, createdAt, pushedAt }
export function minimalRepository(urls, repo) {
  const fullName = `${repo.owner.login}/${repo.name}`;
  return {
    id: repo.id,
    node_id: nodeId('Repository', repo.id),
    name: repo.name,
    full_name: fullName,
    owner: simpleUser(urls, repo.owner),
    private: repo.private,
    description: null,
    fork: repo.fork,
    ...repositoryUrls(urls, fullName),
    git_url: `git://github.com/${fullName}.git`,
    ssh_url: `git@github.com:${fullName}.git`,
    clone_url: `${urls.web}/${fullName}.git`,
    svn_url: `${urls.web}/${fullName}`,
    homepage: null,
    language: null,
    forks_count: 0,
    stargazers_count: 0,
    watchers_count: 0,
    size: 0,
    default_branch: repo.defaultBranch,
    open_issues_count: 0,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: repo.private ? 'private' : 'public',
    pushed_at: isoTime(repo.pushedAt),
    created_at: isoTime(repo.createdAt),
    updated_at: isoTime(repo.pushedAt),
    forks: 0,
    open_issues: 0,
    watchers: 0,
  };
}

export function fullRepository(urls, repo) {
  return {
    ...minimalRepository(urls, repo),
    mirror_url: null,
    license: null,
    allow_forking: true,
    web_commit_signoff_required: false,
    allow_merge_commit: true,
    allow_squash_merge: true,
    allow_rebase_merge: true,
    allow_auto_merge: false,
    delete_branch_on_merge: false,
  };
}

export function label(urls, fullName, name, id) {
  return {
    id,
    node_id: nodeId('Label', id),
    url: `${urls.api}/repos/${fullName}/labels/${enc(name)}`,
    name,
    description: null,
    color: 'ededed',
    default: false,
  };
}

// pr: the stand-in's pull-request record; repo / headRepo: repository records (the head
// repository is a fork for fork pull requests); counts: { commits, additions, deletions, changed_files }.
export function pullRequest(urls, { pr, repo, headRepo, user, mergedBy, labelIds, counts }) {
  const fullName = `${repo.owner.login}/${repo.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const html = `${urls.web}/${fullName}/pull/${pr.number}`;
  const issue = `${api}/issues/${pr.number}`;
  const self = `${api}/pulls/${pr.number}`;
  return {
    url: self,
    id: pr.id,
    node_id: nodeId('PullRequest', pr.id),
    html_url: html,
    diff_url: `${html}.diff`,
    patch_url: `${html}.patch`,
    issue_url: issue,
    number: pr.number,
    state: pr.state,
    locked: false,
    title: pr.title,
    user: simpleUser(urls, user),
    body: pr.body,
    created_at: isoTime(pr.createdAt),
    updated_at: isoTime(pr.updatedAt),
    closed_at: pr.closedAt ? isoTime(pr.closedAt) : null,
    merged_at: pr.mergedAt ? isoTime(pr.mergedAt) : null,
    merge_commit_sha: pr.mergeCommitSha,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    labels: pr.labels.map((name) => label(urls, fullName, name, labelIds(name))),
    milestone: null,
    draft: pr.draft,
    commits_url: `${self}/commits`,
    review_comments_url: `${self}/comments`,
    review_comment_url: `${api}/pulls/comments{/number}`,
    comments_url: `${issue}/comments`,
    statuses_url: `${api}/statuses/${pr.headSha}`,
    head: {
      label: `${headRepo.owner.login}:${pr.headRef}`,
      ref: pr.headRef,
      sha: pr.headSha,
      user: simpleUser(urls, headRepo.owner),
      repo: fullRepository(urls, headRepo),
    },
    base: {
      label: `${repo.owner.login}:${pr.baseRef}`,
      ref: pr.baseRef,
      sha: pr.baseSha,
      user: simpleUser(urls, repo.owner),
      repo: fullRepository(urls, repo),
    },
    _links: {
      self: { href: self },
      html: { href: html },
      issue: { href: issue },
      comments: { href: `${issue}/comments` },
      review_comments: { href: `${self}/comments` },
      review_comment: { href: `${api}/pulls/comments{/number}` },
      commits: { href: `${self}/commits` },
      statuses: { href: `${api}/statuses/${pr.headSha}` },
    },
    author_association: pr.authorAssociation,
    auto_merge: null,
    active_lock_reason: null,
    merged: pr.merged,
    mergeable: pr.state === 'open' ? true : null,
    rebaseable: pr.state === 'open' ? true : null,
    mergeable_state: pr.state === 'open' ? 'clean' : 'unknown',
    merged_by: mergedBy ? simpleUser(urls, mergedBy) : null,
    comments: pr.commentCount,
    review_comments: 0,
    maintainer_can_modify: pr.fork,
    commits: counts.commits,
    additions: counts.additions,
    deletions: counts.deletions,
    changed_files: counts.changed_files,
  };
}

export function diffEntry(
  urls,
  fullName,
  { filename, status, additions, deletions, sha, headSha },
) {
  const path = filename.split('/').map(enc).join('/');
  return {
    sha,
    filename,
    status,
    additions,
    deletions,
    changes: additions + deletions,
    blob_url: `${urls.web}/${fullName}/blob/${headSha}/${path}`,
    raw_url: `${urls.web}/${fullName}/raw/${headSha}/${path}`,
    contents_url: `${urls.api}/repos/${fullName}/contents/${path}?ref=${headSha}`,
  };
}

function contentsLinks(urls, fullName, path, sha, ref, kind) {
  const encoded = path.split('/').map(enc).join('/');
  return {
    url: `${urls.api}/repos/${fullName}/contents/${encoded}?ref=${enc(ref)}`,
    html_url: `${urls.web}/${fullName}/${kind}/${enc(ref)}/${encoded}`,
    git_url: `${urls.api}/repos/${fullName}/git/${kind === 'blob' ? 'blobs' : 'trees'}/${sha}`,
  };
}

// GET /repos/{owner}/{repo}/git/ref/heads/{branch}: the "git-ref" schema.
export function gitRef(urls, fullName, branch, sha) {
  const ref = `refs/heads/${branch}`;
  return {
    ref,
    node_id: Buffer.from(`Ref:${fullName}:${ref}`).toString('base64'),
    url: `${urls.api}/repos/${fullName}/git/${ref.split('/').map(enc).join('/')}`,
    object: { type: 'commit', sha, url: `${urls.api}/repos/${fullName}/git/commits/${sha}` },
  };
}

export function contentFile(urls, fullName, { path, content, ref }) {
  const sha = blobSha(content);
  const links = contentsLinks(urls, fullName, path, sha, ref, 'blob');
  const encoded = path.split('/').map(enc).join('/');
  // GitHub wraps the base64 text at 60 characters.
  const base64 = Buffer.from(content).toString('base64').replace(/.{60}/g, '$&\n');
  return {
    type: 'file',
    encoding: 'base64',
    size: Buffer.byteLength(content),
    name: path.split('/').pop(),
    path,
    content: base64.endsWith('\n') ? base64 : `${base64}\n`,
    sha,
    ...links,
    download_url: `https://raw.githubusercontent.com/${fullName}/${enc(ref)}/${encoded}`,
    _links: { self: links.url, git: links.git_url, html: links.html_url },
  };
}

export function contentDirEntry(urls, fullName, { path, type, content, ref }) {
  const sha = type === 'file' ? blobSha(content) : blobSha(path);
  const links = contentsLinks(urls, fullName, path, sha, ref, type === 'file' ? 'blob' : 'tree');
  const encoded = path.split('/').map(enc).join('/');
  return {
    type,
    size: type === 'file' ? Buffer.byteLength(content) : 0,
    name: path.split('/').pop(),
    path,
    sha,
    ...links,
    download_url:
      type === 'file'
        ? `https://raw.githubusercontent.com/${fullName}/${enc(ref)}/${encoded}`
        : null,
    _links: { self: links.url, git: links.git_url, html: links.html_url },
  };
}

export function app(urls, appInfo, owner) {
  return {
    id: appInfo.id,
    slug: appInfo.slug,
    client_id: appInfo.clientId,
    node_id: nodeId('Integration', appInfo.id),
    owner: simpleUser(urls, owner),
    name: appInfo.name,
    description: appInfo.description,
    external_url: 'https://eph.invalid',
    html_url: `${urls.web}/apps/${appInfo.slug}`,
    created_at: isoTime(appInfo.createdAt),
    updated_at: isoTime(appInfo.createdAt),
    permissions: appInfo.permissions,
    events: appInfo.events,
  };
}

export function issueComment(urls, fullName, { comment, user, app: viaApp }) {
  return {
    id: comment.id,
    node_id: nodeId('IssueComment', comment.id),
    url: `${urls.api}/repos/${fullName}/issues/comments/${comment.id}`,
    html_url: `${urls.web}/${fullName}/pull/${comment.issueNumber}#issuecomment-${comment.id}`,
    body: comment.body,
    user: simpleUser(urls, user),
    created_at: isoTime(comment.createdAt),
    updated_at: isoTime(comment.updatedAt),
    issue_url: `${urls.api}/repos/${fullName}/issues/${comment.issueNumber}`,
    author_association: comment.authorAssociation,
    performed_via_github_app: viaApp ?? null,
    reactions: {
      url: `${urls.api}/repos/${fullName}/issues/comments/${comment.id}/reactions`,
      total_count: 0,
      '+1': 0,
      '-1': 0,
      laugh: 0,
      confused: 0,
      heart: 0,
      hooray: 0,
      eyes: 0,
      rocket: 0,
    },
  };
}

export function deployment(urls, fullName, { deployment: d, creator, app: viaApp }) {
  const url = `${urls.api}/repos/${fullName}/deployments/${d.id}`;
  return {
    url,
    id: d.id,
    node_id: nodeId('Deployment', d.id),
    sha: d.sha,
    ref: d.ref,
    task: d.task,
    payload: d.payload,
    original_environment: d.originalEnvironment,
    environment: d.environment,
    description: d.description,
    creator: simpleUser(urls, creator),
    created_at: isoTime(d.createdAt),
    updated_at: isoTime(d.updatedAt),
    statuses_url: `${url}/statuses`,
    repository_url: `${urls.api}/repos/${fullName}`,
    transient_environment: d.transientEnvironment,
    production_environment: d.productionEnvironment,
    performed_via_github_app: viaApp ?? null,
  };
}

export function deploymentStatus(
  urls,
  fullName,
  { status: s, deploymentId, creator, app: viaApp },
) {
  const deploymentUrl = `${urls.api}/repos/${fullName}/deployments/${deploymentId}`;
  return {
    url: `${deploymentUrl}/statuses/${s.id}`,
    id: s.id,
    node_id: nodeId('DeploymentStatus', s.id),
    state: s.state,
    creator: simpleUser(urls, creator),
    description: s.description,
    environment: s.environment,
    target_url: s.targetUrl,
    created_at: isoTime(s.createdAt),
    updated_at: isoTime(s.createdAt),
    deployment_url: deploymentUrl,
    repository_url: `${urls.api}/repos/${fullName}`,
    environment_url: s.environmentUrl,
    log_url: s.logUrl,
    performed_via_github_app: viaApp ?? null,
  };
}

export function checkRun(urls, fullName, { run, app: runApp, pullRequests }) {
  const url = `${urls.api}/repos/${fullName}/check-runs/${run.id}`;
  return {
    id: run.id,
    head_sha: run.headSha,
    node_id: nodeId('CheckRun', run.id),
    external_id: run.externalId,
    url,
    html_url: `${urls.web}/${fullName}/runs/${run.id}`,
    details_url: run.detailsUrl,
    status: run.status,
    conclusion: run.conclusion,
    started_at: run.startedAt ? isoTime(run.startedAt) : null,
    completed_at: run.completedAt ? isoTime(run.completedAt) : null,
    output: {
      title: run.output.title,
      summary: run.output.summary,
      text: run.output.text,
      annotations_count: run.annotations.length,
      annotations_url: `${url}/annotations`,
    },
    name: run.name,
    check_suite: { id: run.checkSuiteId },
    app: runApp,
    pull_requests: pullRequests,
  };
}

export function commitStatus(urls, fullName, status) {
  return {
    url: `${urls.api}/repos/${fullName}/statuses/${status.sha}`,
    avatar_url: 'https://avatars.githubusercontent.com/u/9919?v=4',
    id: status.id,
    node_id: nodeId('StatusContext', status.id),
    state: status.state,
    description: status.description,
    target_url: status.targetUrl,
    context: status.context,
    created_at: isoTime(status.createdAt),
    updated_at: isoTime(status.createdAt),
  };
}

export function installation(urls, { inst, account, appInfo }) {
  return {
    id: inst.id,
    account: simpleUser(urls, account),
    repository_selection: inst.repositorySelection,
    access_tokens_url: `${urls.api}/app/installations/${inst.id}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: `${urls.web}/settings/installations/${inst.id}`,
    app_id: appInfo.id,
    client_id: appInfo.clientId,
    app_slug: appInfo.slug,
    target_id: account.id,
    target_type: account.type === 'Organization' ? 'Organization' : 'User',
    permissions: appInfo.permissions,
    events: appInfo.events,
    created_at: isoTime(inst.createdAt),
    updated_at: isoTime(inst.createdAt),
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    suspended_by: null,
    suspended_at: inst.suspendedAt ? isoTime(inst.suspendedAt) : null,
  };
}

export function rateLimit({ limit, remaining, reset, used }) {
  return { limit, remaining, reset, used };
}
