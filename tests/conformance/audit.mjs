// Runs every GraphQL-over-HTTP server audit of the npm package graphql-http (serverAudits)
// against the GraphQL endpoint given on the command line, and prints a JSON summary on stdout:
//
//   node audit.mjs http://127.0.0.1:8000/graphql
//
// {"url": ..., "graphqlHttp": "1.23.1", "total": 60,
//  "counts": {"MUST": {"ok": n, "error": n}, "SHOULD": {"ok": n, "warn": n}, "MAY": {...}},
//  "failed": [{"id", "name", "level", "status", "reason", "responseStatus", "contentType", "body"}]}
//
// An audit that fails reports "error" for a MUST, "warn" for a SHOULD and "notice" for a MAY.
// Exit status: 0 when every MUST passes, 1 when one fails, 2 when the audit could not run.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { serverAudits } from 'graphql-http';

const LEVELS = ['MUST', 'SHOULD', 'MAY'];
const BODY_PREVIEW = 500;

function packageVersion(name) {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve(`${name}/package.json`);
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

async function preview(response) {
  if (!response) return {};
  let body;
  try {
    body = (await response.clone().text()).slice(0, BODY_PREVIEW);
  } catch {
    body = '(body already read)';
  }
  return {
    responseStatus: response.status,
    contentType: response.headers.get('content-type'),
    body,
  };
}

async function main() {
  const url = process.argv[2];
  if (!url) {
    console.error('usage: node audit.mjs <graphql endpoint url>');
    return 2;
  }
  const audits = serverAudits({ url, fetchFn: fetch });
  const results = [];
  // One at a time: the order of the output is the order of the suite, and a small server
  // is not flooded with ~60 concurrent connections.
  for (const audit of audits) {
    results.push(await audit.fn());
  }

  const counts = Object.fromEntries(LEVELS.map((level) => [level, {}]));
  const failed = [];
  for (const result of results) {
    const level = LEVELS.find((l) => result.name.startsWith(l)) ?? 'OTHER';
    counts[level] ??= {};
    counts[level][result.status] = (counts[level][result.status] ?? 0) + 1;
    if (result.status !== 'ok') {
      failed.push({
        id: result.id,
        name: result.name,
        level,
        status: result.status,
        reason: result.reason,
        ...(await preview(result.response)),
      });
    }
  }
  const summary = {
    url,
    graphqlHttp: packageVersion('graphql-http'),
    graphql: packageVersion('graphql'),
    total: results.length,
    counts,
    failed,
  };
  console.log(JSON.stringify(summary, null, 2));
  return (counts.MUST.error ?? 0) > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`the audit could not run: ${error?.stack ?? error}`);
    process.exitCode = 2;
  },
);
