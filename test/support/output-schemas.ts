import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { REPO_ROOT } from './cli.js';

export const OUTPUT_SCHEMA_DIR = join(REPO_ROOT, 'schema', 'output');

const ajv = new Ajv.default({ allErrors: true, strict: true, strictTypes: false });
addFormats.default(ajv, ['date-time', 'ipv4']);
for (const file of readdirSync(OUTPUT_SCHEMA_DIR)) ajv.addSchema(JSON.parse(readFileSync(join(OUTPUT_SCHEMA_DIR, file), 'utf8')) as object);

/** The compiled schema/output/<command>.schema.json, or undefined when there is none. */
export function outputSchema(command: string) {
  return ajv.getSchema(`https://github.com/etcd-cloudinit/etcd-cloudinit/schema/output/${command}.schema.json`);
}

/** What is wrong with a command's --json document by its schema: [] when it is valid. */
export function outputSchemaErrors(command: string, document: unknown): unknown[] {
  const validate = outputSchema(command);
  if (!validate) return [`no schema/output/${command}.schema.json`];
  return validate(document) ? [] : [...(validate.errors ?? [])];
}
