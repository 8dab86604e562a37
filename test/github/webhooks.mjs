// Sends GitHub webhooks the way GitHub does (JSON body, HMAC-SHA256 signature over the exact
// bytes sent, X-GitHub-Event, a fresh X-GitHub-Delivery UUID), and builds pull_request and
// issue_comment payloads from the stand-in's state so a test can say "PR 7 was labeled" without
// writing the payload by hand.
//
// Deliveries go to loopback addresses only: the stand-in must never post to the outside world.

import crypto from 'node:crypto';
import net from 'node:net';

import * as gh from './objects.mjs';

export class DeliveryError extends Error {}

export function isLoopbackUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1';
  return false;
}

export function sign(secret, body) {
  return `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
}

// Returns { status, delivery, signature, body }, or { error, delivery } when the receiver could
// not be reached. Throws DeliveryError for a request it refuses to send.
export async function deliverWebhook({
  url,
  secret,
  event,
  payload,
  delivery,
  signature,
  headers,
  installationId,
  timeout_ms: timeoutMs,
}) {
  if (typeof url !== 'string' || !isLoopbackUrl(url)) {
    throw new DeliveryError(
      `refusing to deliver to ${JSON.stringify(url)}: only loopback URLs are allowed`,
    );
  }
  if (typeof event !== 'string' || !event) throw new DeliveryError('event is required');
  if (payload === undefined) throw new DeliveryError('payload is required');
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const id = delivery || crypto.randomUUID();
  const out = {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/eph-standin',
    'x-github-event': event,
    'x-github-delivery': id,
    'x-github-hook-id': '4242',
    'x-github-hook-installation-target-type': 'integration',
    'x-github-hook-installation-target-id': String(installationId ?? ''),
  };
  let sig = null;
  if (typeof secret === 'string' && secret !== '') {
    sig = signature ?? sign(secret, body);
    out['x-hub-signature-256'] = sig;
    out['x-hub-signature'] = `sha1=${crypto.createHmac('sha1', secret).update(body).digest('hex')}`;
  } else if (signature) {
    sig = signature;
    out['x-hub-signature-256'] = sig;
  }
  Object.assign(out, headers || {});
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: out,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs ?? 30000),
    });
    const text = await response.text();
    return { status: response.status, delivery: id, signature: sig, body: text.slice(0, 8192) };
  } catch (e) {
    return { error: `delivery to ${url} failed: ${e.cause?.message || e.message}`, delivery: id };
  }
}

function repositoryWebhook(standin, repo) {
  return {
    ...gh.fullRepository(standin.urls, standin.repoRecord(repo)),
    custom_properties: {},
  };
}

function installationRef(standin, repo) {
  const inst = standin.installationFor(repo);
  return inst ? { id: inst.id, node_id: gh.nodeId('Integration', inst.id) } : undefined;
}

// The pull request as webhooks carry it: the REST object without the fields webhooks omit.
function pullRequestWebhook(standin, repo, pr) {
  const rest = standin.pullObject(repo, pr);
  return { ...rest, assignees: [], requested_reviewers: [], requested_teams: [] };
}

// body: { event, action, repo: "owner/name", number, label?, comment_id?, sender?, before? }.
export function buildWebhookPayload(standin, body) {
  const { event, action } = body;
  const [owner, name] = String(body.repo || '').split('/');
  const repo = standin.repo(owner, name);
  if (!repo)
    throw new DeliveryError(
      `no payload given and no repository ${JSON.stringify(body.repo)} to build one from`,
    );
  const pr = repo.pulls.get(Number(body.number));
  if (!pr) throw new DeliveryError(`no pull request ${body.number} in ${body.repo}`);
  const sender = gh.simpleUser(standin.urls, standin.user(body.sender || pr.user));
  const common = { repository: repositoryWebhook(standin, repo), sender };
  const installation = installationRef(standin, repo);
  if (installation) common.installation = installation;

  if (event === 'pull_request') {
    if (typeof action !== 'string') throw new DeliveryError('action is required');
    const payload = {
      action,
      number: pr.number,
      pull_request: pullRequestWebhook(standin, repo, pr),
      ...common,
    };
    if (action === 'labeled' || action === 'unlabeled') {
      const labelName = body.label ?? pr.labels.at(-1);
      if (!labelName) throw new DeliveryError(`${action} needs a label`);
      payload.label = gh.label(
        standin.urls,
        standin.fullName(repo),
        labelName,
        standin.labelId(repo, labelName),
      );
    }
    if (action === 'synchronize') {
      payload.before = body.before ?? repo.commits.get(pr.headSha)?.parent ?? pr.baseSha;
      payload.after = pr.headSha;
    }
    if (action === 'edited') payload.changes = body.changes ?? {};
    return payload;
  }
  if (event === 'issue_comment') {
    const comment =
      repo.comments.find((c) => c.id === Number(body.comment_id)) ??
      repo.comments.filter((c) => c.issueNumber === pr.number).at(-1);
    if (!comment)
      throw new DeliveryError(`no comment to build an issue_comment payload from on #${pr.number}`);
    const restPr = standin.pullObject(repo, pr);
    const fullName = standin.fullName(repo);
    const issue = {
      url: restPr.issue_url,
      repository_url: `${standin.urls.api}/repos/${fullName}`,
      labels_url: `${restPr.issue_url}/labels{/name}`,
      comments_url: restPr.comments_url,
      events_url: `${restPr.issue_url}/events`,
      html_url: restPr.html_url,
      id: pr.id,
      node_id: gh.nodeId('PullRequest', pr.id),
      number: pr.number,
      title: pr.title,
      user: restPr.user,
      labels: restPr.labels,
      state: pr.state,
      locked: false,
      assignee: null,
      assignees: [],
      milestone: null,
      comments: restPr.comments,
      created_at: restPr.created_at,
      updated_at: restPr.updated_at,
      closed_at: restPr.closed_at,
      author_association: restPr.author_association,
      active_lock_reason: null,
      draft: pr.draft,
      pull_request: {
        url: restPr.url,
        html_url: restPr.html_url,
        diff_url: restPr.diff_url,
        patch_url: restPr.patch_url,
        merged_at: restPr.merged_at,
      },
      body: pr.body,
      reactions: {
        url: `${restPr.issue_url}/reactions`,
        total_count: 0,
        '+1': 0,
        '-1': 0,
        laugh: 0,
        hooray: 0,
        confused: 0,
        heart: 0,
        rocket: 0,
        eyes: 0,
      },
      timeline_url: `${restPr.issue_url}/timeline`,
      performed_via_github_app: null,
      state_reason: null,
    };
    return {
      action: action || 'created',
      issue,
      comment: standin.commentObject(repo, comment),
      ...common,
      sender: gh.simpleUser(standin.urls, standin.user(body.sender || comment.user)),
    };
  }
  throw new DeliveryError(
    `the stand-in builds payloads for pull_request and issue_comment only; pass "payload" for ${event}`,
  );
}
