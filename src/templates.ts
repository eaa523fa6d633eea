import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ejs from 'ejs';

/** The folder of templates and scripts that land on a node. */
export const CLOUD_INIT_DIR = fileURLToPath(new URL('../cloud-init/', import.meta.url));

const cache = new Map<string, string>();

/** A file from cloud-init/, read once. */
export function nodeFile(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(`${CLOUD_INIT_DIR}${name}`, 'utf8');
    cache.set(name, text);
  }
  return text;
}

/** A YAML scalar that means exactly `value` (a JSON string is a valid YAML double-quoted scalar). */
export function yamlScalar(value: string | number | boolean): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** A POSIX shell word that means exactly `value`. */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Renders cloud-init/<name> with only the variables given. Templates print with `<%-` and these
 * quoting helpers: `<%=` would HTML-escape, which corrupts YAML and shell.
 */
export function renderTemplate(name: string, variables: Record<string, unknown>): string {
  const locals = { ...variables, yaml: yamlScalar, sh: shellWord };
  // strict: a name the template uses but the caller did not pass is an error, not an empty string.
  return ejs.render(nodeFile(name), locals, { strict: true, async: false, destructuredLocals: Object.keys(locals) });
}
