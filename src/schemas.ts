import { createRequire } from 'node:module';
import type AjvModule from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type addFormatsModule from 'ajv-formats';

const require = createRequire(import.meta.url);

/** A JSON Schema shipped in schema/ (the input's, and those of the files the tool writes and reads back). */
export function loadSchema(file: 'cluster.schema.json' | 'cluster-record.schema.json' | 'digitalocean-state.schema.json' | 'roll-state.schema.json'): Record<string, unknown> {
  return require(`../schema/${file}`) as Record<string, unknown>;
}

/** One ajv setup for every schema: strict, all errors, IPv4 format, our `errorMessage` wording. */
export function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  // Required on first compile, not imported: --help loads this module but never ajv. Both are CommonJS with a default export object.
  const Ajv = (require('ajv') as typeof AjvModule).default;
  const addFormats = (require('ajv-formats') as typeof addFormatsModule).default;
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false, useDefaults: false });
  addFormats(ajv, ['ipv4']);
  ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
  return ajv.compile(schema);
}

/** `/members/2/ip` -> `members[2].ip`: the field as the user wrote it. */
export function fieldName(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((part, index) => (/^\d+$/.test(part) ? `[${part}]` : `${index === 0 ? '' : '.'}${part}`))
    .join('');
}

export type { ErrorObject };
