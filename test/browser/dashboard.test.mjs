// The dashboard in Debian's Chromium against a real ephd (see harness.mjs):
//   node --test test/browser/        with EPH_BINARY_DIR=<build dir>, after `npm ci && npm run build` in web/
// The steps build on each other (one environment is created, viewed, extended and destroyed), so
// they run in order; a failed step leaves a screenshot and ephd's log in the artefacts directory.
import assert from 'node:assert/strict';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  api,
  artifactsDir,
  checkPrerequisites,
  launchBrowser,
  MOCK,
  startEphd,
  waitFor,
  watchConsole,
} from './harness.mjs';

const PROJECT = 'acme/shop';
const PR = 7;
// A manually created environment has no trigger or provider behind it, so its log stream may be
// refused (4xx, or 501 where the provider has no logs); the logs pane shows that, and Chromium
// logs it as a failed resource. No other HTTP error may reach the console.
const LOGS_REFUSED = { status: /^(4\d\d|501)$/, url: /\/logs\?/ };

describe(`dashboard against ${MOCK ? 'the MOCK server (EPH_BROWSER_MOCK=1)' : 'ephd'}`, { timeout: 240000 }, () => {
  let server;
  let browser;
  let page;
  let envName;
  const problems = [];
  const artefacts = artifactsDir();

  /** Runs a step; on failure keeps a screenshot of `page` and ephd's log for the post-mortem. */
  async function step(slug, fn, onPage = () => page) {
    try {
      await fn();
    } catch (e) {
      const p = onPage();
      if (p && !p.isClosed()) await p.screenshot({ path: join(artefacts, `dashboard-failed-${slug}.png`), fullPage: true }).catch(() => {});
      if (server) writeFileSync(join(artefacts, `dashboard-failed-${slug}.ephd.log`), server.log());
      throw e;
    }
  }

  async function signIn(p, token) {
    await p.goto(server.baseUrl);
    await p.getByLabel('API token').fill(token);
    await p.getByRole('button', { name: 'Sign in' }).click();
  }

  function row(p, name) {
    return p.locator(`tr[data-environment="${name}"]`);
  }

  before(async () => {
    checkPrerequisites();
    for (const f of readdirSync(artefacts)) if (f.startsWith('dashboard-')) rmSync(join(artefacts, f));
    server = await startEphd();
    browser = await launchBrowser();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    watchConsole(page, 'main', problems, [LOGS_REFUSED]);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('serves the dashboard at / with relative asset paths', async () => {
    const res = await fetch(server.baseUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    const asset = /src="\.\/(assets\/[^"]+\.js)"/.exec(html);
    assert.ok(asset, 'index.html references its script relatively');
    const js = await fetch(new URL(asset[1], server.baseUrl));
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
  });

  test('signs in with an API token and shows the list, live', () =>
    step('sign-in', async () => {
      await signIn(page, server.writeToken);
      await page.getByRole('heading', { name: /^Environments/ }).waitFor();
      // The list is on the event stream before anything is created, so a row appearing later
      // proves the stream delivered it.
      await page.locator('.live-live').waitFor({ timeout: 15000 });
      assert.equal(await page.getByLabel('API token').count(), 0);
    }));

  test('an environment created through the API appears without a reload', () =>
    step('appears', async () => {
      await page.evaluate(() => {
        window.__notReloaded = true;
      });
      const created = await api(server, 'POST', 'environments', { body: { project: PROJECT, pr: PR } });
      assert.ok(created.status === 201 || created.status === 202 || created.status === 200, `create answered ${created.status}: ${created.text}`);
      envName = created.json?.name;
      assert.ok(envName, `create returned the environment: ${created.text}`);

      const r = row(page, envName);
      await r.waitFor({ timeout: 15000 });
      assert.equal(await page.evaluate(() => window.__notReloaded), true, 'the page did not reload');
      assert.equal(await page.locator('.live-live').count(), 1, 'still on the live stream');
      assert.equal(await r.getByRole('cell').first().textContent(), PROJECT);
      assert.equal(await r.getByRole('link', { name: `#${PR}` }).getAttribute('href'), `https://github.com/${PROJECT}/pull/${PR}`);
      const state = await r.locator('.badge').getAttribute('data-state');
      assert.ok(['pending', 'provisioning', 'ready', 'updating', 'failed'].includes(state), `state ${state}`);
      await page.screenshot({ path: join(artefacts, 'dashboard-list.png'), fullPage: true });
    }));

  test('the detail view shows the URL, pull request, TTL, history and logs', () =>
    step('detail', async () => {
      await row(page, envName).getByRole('link', { name: envName, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: envName }).waitFor();
      assert.equal(new URL(page.url()).hash, `#/environments/${envName}`);
      const overview = page.getByRole('region', { name: 'Overview' });
      assert.equal(
        await overview.getByRole('link', { name: `${PROJECT}#${PR}` }).getAttribute('href'),
        `https://github.com/${PROJECT}/pull/${PR}`,
      );
      const env = (await api(server, 'GET', `environments/${envName}`)).json;
      if (env.url) assert.equal(await overview.getByRole('link', { name: env.url }).getAttribute('href'), env.url);
      // The countdown: a duration, "no expiry" or "expired", never blank.
      assert.match((await overview.locator('.ttl').textContent()) ?? '', /^(\d+[dhms]( \d+[hms])?|no expiry|expired)$/);
      const history = page.getByRole('region', { name: 'State history' }).getByRole('listitem');
      await waitFor('a state transition in the history', async () => (await history.count()) >= 1);
      assert.ok((await api(server, 'GET', `environments/${envName}`)).json.events.length >= 1, 'the API has history too');
      await page.getByRole('region', { name: 'Logs' }).getByRole('log').waitFor();
      assert.equal(await page.getByLabel('Component', { exact: true }).count(), 1);
      await page.screenshot({ path: join(artefacts, 'dashboard-detail.png'), fullPage: true });
    }));

  test('extend asks for 4h, 24h or 72h and moves the expiry', () =>
    step('extend', async () => {
      const before = (await api(server, 'GET', `environments/${envName}`)).json.expires_at;
      await page.getByRole('button', { name: 'Extend…' }).click();
      const dialog = page.getByRole('dialog', { name: `Extend ${envName}?` });
      await dialog.waitFor();
      const choices = await dialog.getByRole('radio').evaluateAll((els) => els.map((e) => e.value));
      assert.deepEqual(choices, ['4h', '24h', '72h']);
      await dialog.getByRole('radio', { name: '72h' }).check();
      const requested = Date.now();
      await dialog.getByRole('button', { name: 'Extend by 72h' }).click();
      await dialog.waitFor({ state: 'detached' });
      const after = (await api(server, 'GET', `environments/${envName}`)).json.expires_at;
      assert.ok(after, 'it has an expiry now');
      assert.ok(!before || Date.parse(after) > Date.parse(before), `expiry moved from ${before} to ${after}`);
      assert.ok(Date.parse(after) >= requested + 71 * 3600_000, `at least 72h from now: ${after}`);
      await waitFor('the countdown to show days', async () => /^\dd \d+h$/.test((await page.locator('.facts .ttl').textContent()) ?? ''));
    }));

  test('destroy asks for confirmation, and cancelling keeps the environment', () =>
    step('destroy-cancel', async () => {
      const stateBefore = (await api(server, 'GET', `environments/${envName}`)).json.state;
      await page.getByRole('button', { name: 'Destroy…' }).click();
      const dialog = page.getByRole('dialog', { name: `Destroy ${envName}?` });
      await dialog.waitFor();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      const stateAfter = (await api(server, 'GET', `environments/${envName}`)).json.state;
      assert.ok(!['destroying', 'destroyed'].includes(stateAfter), `still alive (${stateBefore} → ${stateAfter})`);
    }));

  test('a read-only token cannot destroy: the dialog shows the refusal', () => {
    let ro;
    return step(
      'read-only',
      async () => {
        ro = await browser.context.newPage();
        watchConsole(ro, 'read-only', problems, [{ status: 403 }, LOGS_REFUSED]);
        await signIn(ro, server.readToken);
        await row(ro, envName).getByRole('link', { name: envName, exact: true }).click();
        await ro.getByRole('button', { name: 'Destroy…' }).click();
        const dialog = ro.getByRole('dialog', { name: `Destroy ${envName}?` });
        await dialog.getByRole('button', { name: 'Destroy' }).click();
        await dialog.getByRole('alert').waitFor();
        assert.notEqual(await ro.getByLabel('API token').count(), 1, 'a 403 does not sign out');
        const state = (await api(server, 'GET', `environments/${envName}`)).json.state;
        assert.ok(!['destroying', 'destroyed'].includes(state), `not destroyed (${state})`);
        await ro.close();
      },
      () => ro,
    );
  });

  test('destroying it from the page (after confirming) makes it go away', () =>
    step('destroy', async () => {
      await page.getByRole('button', { name: 'Destroy…' }).click();
      const dialog = page.getByRole('dialog', { name: `Destroy ${envName}?` });
      await dialog.getByRole('button', { name: 'Destroy' }).click();
      await dialog.waitFor({ state: 'detached' });
      await waitFor('the badge to say destroying', async () =>
        ['destroying', 'destroyed'].includes(await page.locator('.title-row .badge').getAttribute('data-state')),
      );
      const state = (await api(server, 'GET', `environments/${envName}`)).json.state;
      assert.ok(['destroying', 'destroyed'].includes(state), `the server has it ${state}`);
      assert.ok(await page.getByRole('button', { name: 'Destroy…' }).isDisabled(), 'no second destroy');

      await page.getByRole('link', { name: '← All environments' }).click();
      await page.getByRole('heading', { name: /^Environments/ }).waitFor();
      // Gone once the reconciler finishes; until then it is listed as destroying.
      await waitFor('the row to be gone or destroying', async () => {
        const r = row(page, envName);
        return (await r.count()) === 0 || (await r.locator('.badge').getAttribute('data-state')) === 'destroying';
      });
      const fromApi = (await api(server, 'GET', `environments/${envName}`)).json.state;
      if (fromApi === 'destroyed') {
        await waitFor('a destroyed environment to leave the list', async () => (await row(page, envName).count()) === 0);
      }
    }));

  test('a wrong token shows the sign-in again', () => {
    let p;
    return step(
      'wrong-token',
      async () => {
        p = await browser.context.newPage();
        watchConsole(p, 'wrong-token', problems, [{ status: 401 }]);
        // Refused at sign-in.
        await signIn(p, 'eph_this-is-not-a-token');
        await p.getByRole('alert').filter({ hasText: /refused/ }).waitFor();
        assert.equal(await p.getByLabel('API token').count(), 1);
        assert.equal(await p.getByRole('heading', { name: /^Environments/ }).count(), 0);
        assert.equal(await p.evaluate(() => sessionStorage.length), 0, 'nothing kept');

        // Refused mid-session: a stored token the server no longer accepts.
        await p.getByLabel('API token').fill(server.writeToken);
        await p.getByRole('button', { name: 'Sign in' }).click();
        await p.getByRole('heading', { name: /^Environments/ }).waitFor();
        await p.evaluate(() => {
          for (let i = 0; i < sessionStorage.length; i++) sessionStorage.setItem(sessionStorage.key(i), 'eph_revoked');
        });
        await p.reload();
        await p.getByRole('alert').filter({ hasText: /signed out/ }).waitFor();
        assert.equal(await p.getByLabel('API token').count(), 1);
        assert.equal(await p.evaluate(() => sessionStorage.length), 0, 'the refused token was cleared');
        await p.close();
      },
      () => p,
    );
  });

  test('no console errors or warnings', () => {
    assert.deepEqual(problems, []);
  });
});
