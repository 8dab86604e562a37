#!/usr/bin/env node
// The webhook payload examples from npm @octokit/webhooks-examples (real payloads contributed by
// the community) for the events Eph subscribes to, each with its event name.
//
//   node examples.mjs --list            one JSON line per example: {"event","action","file"}
//   node examples.mjs --write FILE      a JSON array of {event, action, file, payload}
//   node examples.mjs --get FILE_ID     the payload of one example (FILE_ID as --list prints it)
//
// `file` names the example inside the package as "<index.json path>#/<i>/examples/<j>", a JSON
// pointer into the package's api.github.com/index.json, so a failing example can be found.
// Nothing generated is committed: build steps run --write into the build tree.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const kEvents = [
  'pull_request',
  'check_suite',
  'check_run',
  'status',
  'issue_comment',
  'installation',
  'installation_repositories',
  'ping',
];

const require = createRequire(import.meta.url);
const kIndex = 'api.github.com/index.json';

export function examplesIndexPath() {
  return path.join(
    path.dirname(require.resolve('@octokit/webhooks-examples/package.json')),
    kIndex,
  );
}

export function loadExamples(events = kEvents) {
  const index = JSON.parse(fs.readFileSync(examplesIndexPath(), 'utf8'));
  const out = [];
  index.forEach((definition, i) => {
    if (!events.includes(definition.name)) return;
    definition.examples.forEach((payload, j) => {
      out.push({
        event: definition.name,
        action: payload.action ?? null,
        file: `@octokit/webhooks-examples/${kIndex}#/${i}/examples/${j}`,
        payload,
      });
    });
  });
  return out;
}

function main(argv) {
  const [command, arg] = argv;
  const examples = loadExamples();
  if (command === '--list') {
    for (const { event, action, file } of examples) {
      process.stdout.write(`${JSON.stringify({ event, action, file })}\n`);
    }
  } else if (command === '--write' && arg) {
    fs.writeFileSync(arg, `${JSON.stringify(examples)}\n`);
    process.stderr.write(`examples: wrote ${examples.length} payloads to ${arg}\n`);
  } else if (command === '--get' && arg) {
    const found = examples.find((e) => e.file === arg);
    if (!found) {
      process.stderr.write(`examples: no example ${arg}\n`);
      return 1;
    }
    process.stdout.write(`${JSON.stringify(found.payload)}\n`);
  } else {
    process.stderr.write('usage: examples.mjs --list | --write FILE | --get FILE_ID\n');
    return 2;
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) {
  // `--list | head` closes the pipe early; that is not an error.
  process.stdout.on('error', (e) => {
    if (e.code !== 'EPIPE') throw e;
  });
  process.exitCode = main(process.argv.slice(2));
}
