// The webhook example corpus that Eph's webhook tests deliver.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { kEvents, loadExamples } from './examples.mjs';

const kCli = path.join(path.dirname(fileURLToPath(import.meta.url)), 'examples.mjs');

test('every event Eph subscribes to has examples, each a payload object', () => {
  const examples = loadExamples();
  for (const event of kEvents) {
    assert.ok(
      examples.some((e) => e.event === event),
      `no example for ${event}`,
    );
  }
  for (const e of examples) {
    assert.equal(typeof e.payload, 'object');
    assert.equal(e.action, e.payload.action ?? null);
  }
  const prActions = new Set(
    examples.filter((e) => e.event === 'pull_request').map((e) => e.action),
  );
  for (const action of [
    'opened',
    'reopened',
    'synchronize',
    'labeled',
    'unlabeled',
    'closed',
    'ready_for_review',
    'converted_to_draft',
  ]) {
    assert.ok(prActions.has(action), `no pull_request ${action} example`);
  }
});

test('the CLI lists, writes and gets examples', () => {
  const lines = execFileSync(process.execPath, [kCli, '--list'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, loadExamples().length);
  assert.deepEqual(Object.keys(lines[0]).sort(), ['action', 'event', 'file']);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'examples-'));
  try {
    const out = path.join(dir, 'webhook-examples.json');
    execFileSync(process.execPath, [kCli, '--write', out], { stdio: 'ignore' });
    const written = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.deepEqual(
      written.map(({ event, action, file }) => ({ event, action, file })),
      lines,
    );

    const one = lines.find((l) => l.event === 'ping');
    const payload = JSON.parse(
      execFileSync(process.execPath, [kCli, '--get', one.file], { encoding: 'utf8' }),
    );
    assert.deepEqual(payload, written.find((w) => w.file === one.file).payload);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
