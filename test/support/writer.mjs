// The continuous client of the roll checks: one put every 100 ms through etcd's gRPC gateway, each
// a new key holding a counter, to the first endpoint that acknowledges it (the last good one first).
// Runs inside the test's network namespace; on SIGTERM it finishes the put in flight and writes
// what was acknowledged, and when, to the summary file.
//
//   node writer.mjs <summary.json> <ca.crt> <admin.crt> <admin.key> <key prefix> <endpoint,...>
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';

const [summaryFile, caFile, certFile, keyFile, prefix, endpointList] = process.argv.slice(2);
const tls = { ca: readFileSync(caFile), cert: readFileSync(certFile), key: readFileSync(keyFile) };
const endpoints = endpointList.split(',');
const acknowledged = [];
const ackTimes = [];
let attempts = 0;
let running = true;
process.on('SIGTERM', () => (running = false));

function put(endpoint, key, value) {
  const body = JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v3/kv/put', endpoint), { method: 'POST', ...tls, agent: false, timeout: 2000, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

let preferred = 0;
while (running) {
  const started = Date.now();
  attempts += 1;
  const key = `${prefix}${String(attempts).padStart(7, '0')}`;
  for (let offset = 0; offset < endpoints.length; offset += 1) {
    const index = (preferred + offset) % endpoints.length;
    try {
      await put(endpoints[index], key, String(attempts));
      acknowledged.push(key);
      ackTimes.push(Date.now());
      preferred = index;
      break;
    } catch {
      // not acknowledged there (a member gone, or not there yet): the next endpoint
    }
  }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - (Date.now() - started))));
}
const longestGapMs = ackTimes.slice(1).reduce((longest, time, index) => Math.max(longest, time - ackTimes[index]), 0);
writeFileSync(summaryFile, JSON.stringify({ attempts, acknowledged, longestGapMs }));
