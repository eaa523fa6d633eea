// `node --import` this file to append every module URL the process resolves (static and dynamic
// imports alike) to $MODULE_LOG. It registers itself as the resolve hook; the hooks run on their own thread.
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) register(import.meta.url, { data: process.env.MODULE_LOG });

let logFile;

export function initialize(path) {
  logFile = path;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(logFile, `${resolved.url}\n`);
  return resolved;
}
