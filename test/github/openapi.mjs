// GitHub's OpenAPI description (npm @octokit/openapi, api.github.com) as a request router and
// validator for the stand-in.
//
// Contract:
//  - load() reads the description once (about 13 MB of JSON) and builds the route table; it
//    compiles nothing. Validators are compiled on first use per operation and cached, so startup
//    stays well under a second; warm() compiles a list of operations ahead of time.
//  - The description is OpenAPI 3.0.3, whose `nullable: true` is not JSON Schema. Each schema is
//    converted when an operation first needs it (nullable -> a "null" type or an anyOf with null;
//    `discriminator`, `example` and `x-*` keywords dropped) so that ajv validates it as JSON
//    Schema draft-07. Component schemas are registered with ajv individually, so two operations
//    that share `pull-request` share its compiled code.
//  - match() finds the operation for a method and a concrete path. Path parameters match one
//    segment, except those marked `x-multi-segment` (a ref, a file path), which may span
//    several; when two templates match, the one with more literal segments wins
//    (`/commits/{ref}/status` before `/commits/{ref}`).
//  - validateRequest()/validateResponse() return a list of human-readable problems, empty when
//    valid.
//
// Not thread-safe in any interesting sense: node runs it on one thread.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const require = createRequire(import.meta.url);
// Component schemas are registered with ajv one by one, on first use, under this prefix.
const kSchemaIdPrefix = 'https://eph.invalid/github/components/schemas/';
const kComponentRef = '#/components/schemas/';
const kMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export function descriptionPath() {
  const pkg = path.dirname(require.resolve('@octokit/openapi/package.json'));
  return path.join(pkg, 'generated', 'api.github.com.json');
}

// Rewrites one OpenAPI 3.0 schema object (in place, recursively) into JSON Schema draft-07.
// Local component refs become absolute ids of the individually registered components; their
// names are added to `refs` so the caller can register them.
function convertSchema(schema, refs) {
  if (Array.isArray(schema)) {
    return schema.map((s) => convertSchema(s, refs));
  }
  if (schema === null || typeof schema !== 'object') {
    return schema;
  }
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'example' || key === 'discriminator' || key.startsWith('x-')) {
      continue;
    }
    if (key === '$ref') {
      if (!value.startsWith(kComponentRef)) throw new Error(`unsupported $ref ${value}`);
      const name = value.slice(kComponentRef.length);
      refs.add(name);
      out.$ref = kSchemaIdPrefix + encodeURIComponent(name);
    } else if (key === 'properties' || key === 'patternProperties') {
      out[key] = {};
      for (const [name, sub] of Object.entries(value)) {
        out[key][name] = convertSchema(sub, refs);
      }
    } else if (
      ['items', 'additionalProperties', 'not'].includes(key) &&
      typeof value === 'object'
    ) {
      out[key] = convertSchema(value, refs);
    } else if (['allOf', 'anyOf', 'oneOf'].includes(key)) {
      out[key] = convertSchema(value, refs);
    } else {
      out[key] = value;
    }
  }
  if (out.nullable !== undefined) {
    const nullable = out.nullable === true;
    delete out.nullable;
    if (nullable) {
      const composite = out.allOf || out.anyOf || out.oneOf || out.$ref;
      if (composite) {
        // A composite (or a $ref, whose siblings 3.0 ignores) cannot take a "null" type next to
        // it, so the null goes beside it instead.
        return { anyOf: [out, { type: 'null' }] };
      }
      if (out.type !== undefined) {
        out.type = Array.isArray(out.type)
          ? [...new Set([...out.type, 'null'])]
          : [out.type, 'null'];
      }
      if (Array.isArray(out.enum) && !out.enum.includes(null)) {
        out.enum = [...out.enum, null];
      }
    }
  }
  return out;
}

// Places where GitHub's description contradicts what api.github.com answers, and the fix the
// stand-in applies (to a copy of the OpenAPI schema) before validating its own answers. Keep this list short and explained.
const kResponseErrata = {
  // The inline installation schema here says the account is a user AND an enterprise (allOf);
  // the `installation` component, and GitHub, say one OR the other (anyOf).
  'apps/list-installations': (schema) => {
    const account = schema?.items?.properties?.account;
    if (account?.allOf) {
      account.anyOf = account.allOf;
      delete account.allOf;
    }
    return schema;
  },
};

function templateToMatcher(template, multiSegment) {
  const names = [];
  let literals = 0;
  const source = template
    .split('/')
    .map((segment) => {
      if (segment === '') return '';
      let literalSegment = true;
      const part = segment.replace(/\{([^}]+)\}|([^{]+)/g, (m, name, literal) => {
        if (name !== undefined) {
          literalSegment = false;
          names.push(name);
          return multiSegment.has(name) ? '(.+?)' : '([^/]+)';
        }
        return literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      });
      if (literalSegment) literals += 1;
      return part;
    })
    .join('/');
  return { regex: new RegExp(`^${source}$`), names, literals };
}

function formatErrors(where, errors) {
  return (errors || []).map((e) => {
    let detail = e.message;
    if (e.keyword === 'additionalProperties') {
      detail = `has unknown property "${e.params.additionalProperty}"`;
    } else if (e.keyword === 'enum') {
      detail = `must be one of ${JSON.stringify(e.params.allowedValues)}`;
    }
    return `${where}${e.instancePath || ''} ${detail}`;
  });
}

export class OpenApi {
  constructor(doc) {
    this.doc = doc;
    this.routes = [];
    this.operations = new Map(); // operationId -> operation record
    this.validators = new Map(); // cache key -> compiled ajv function
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const method of kMethods) {
        const op = item[method];
        if (!op) continue;
        const parameters = [...(item.parameters || []), ...(op.parameters || [])].map((p) =>
          this.resolve(p),
        );
        const multi = new Set(parameters.filter((p) => p['x-multi-segment']).map((p) => p.name));
        const record = {
          method: method.toUpperCase(),
          template,
          operationId: op.operationId,
          op,
          parameters,
          ...templateToMatcher(template, multi),
        };
        this.routes.push(record);
        this.operations.set(op.operationId, record);
      }
    }

    const makeAjv = (options) => {
      const ajv = new Ajv({ strict: false, allErrors: true, logger: false, ...options });
      addFormats(ajv);
      ajv.addFormat('repo.nwo', /^[^/]+\/[^/]+$/);
      ajv.registered = new Set(); // component schema names added to this instance
      return ajv;
    };
    this.ajv = makeAjv({});
    // GitHub itself answers "" in some `format: uri` fields (a deployment status without a
    // target_url, for one), so the stand-in's answers are checked with a uri format that allows
    // the empty string. Requests are still checked with the strict one.
    this.responseAjv = makeAjv({});
    const strictUri = this.responseAjv.formats.uri;
    this.responseAjv.addFormat('uri', {
      type: 'string',
      validate: (value) => value === '' || strictUri(value),
    });
    // Parameters arrive as strings; coercion turns "30" into 30 for an integer parameter.
    this.paramAjv = makeAjv({ coerceTypes: 'array' });
  }

  // Converts an operation-level schema and registers, with `ajv`, every component schema it
  // reaches.
  toJsonSchema(schema, ajv) {
    const refs = new Set();
    const converted = convertSchema(schema, refs);
    const pending = [...refs];
    while (pending.length) {
      const name = pending.pop();
      if (ajv.registered.has(name)) continue;
      const component = this.doc.components.schemas[name];
      if (!component) throw new Error(`missing component schema ${name}`);
      const more = new Set();
      const body = convertSchema(component, more);
      ajv.addSchema({ ...body, $id: kSchemaIdPrefix + encodeURIComponent(name) });
      ajv.registered.add(name);
      pending.push(...more);
    }
    return converted;
  }

  static load(file = descriptionPath()) {
    return new OpenApi(JSON.parse(fs.readFileSync(file, 'utf8')));
  }

  // Follows a local $ref to components.{parameters,responses,requestBodies,...}.
  resolve(obj) {
    let seen = 0;
    while (obj && obj.$ref && obj.$ref.startsWith('#/') && seen++ < 10) {
      obj = obj.$ref
        .slice(2)
        .split('/')
        .reduce((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], this.doc);
    }
    return obj;
  }

  // Returns { route, params } for the operation, or { pathKnown: bool } when there is none.
  match(method, pathname) {
    let best = null;
    let pathKnown = false;
    for (const route of this.routes) {
      const m = route.regex.exec(pathname);
      if (!m) continue;
      pathKnown = true;
      if (route.method !== method) continue;
      if (best && best.route.literals >= route.literals) continue;
      const params = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]);
        } catch {
          params[name] = m[i + 1];
        }
      });
      best = { route, params };
    }
    return best || { pathKnown };
  }

  compile(key, build, ajv = this.ajv) {
    let validate = this.validators.get(key);
    if (!validate) {
      validate = ajv.compile(build());
      this.validators.set(key, validate);
    }
    return validate;
  }

  paramValidator(route, location) {
    return this.compile(
      `${route.operationId} ${location}`,
      () => {
        const schema = { type: 'object', properties: {}, required: [] };
        for (const p of route.parameters.filter((q) => q.in === location)) {
          schema.properties[p.name] = this.toJsonSchema(p.schema || {}, this.paramAjv);
          if (p.required) schema.required.push(p.name);
        }
        // GitHub ignores unknown query parameters; a misspelt one is a bug in the caller, so the
        // stand-in rejects them.
        if (location === 'query') schema.additionalProperties = false;
        return schema;
      },
      this.paramAjv,
    );
  }

  requestBodyInfo(route) {
    const body = this.resolve(route.op.requestBody);
    if (!body) return null;
    const json = body.content?.['application/json'];
    return { required: !!body.required, schema: json?.schema, json: !!json };
  }

  bodyValidator(route) {
    return this.compile(`${route.operationId} body`, () => {
      const schema = this.toJsonSchema(this.requestBodyInfo(route).schema, this.ajv);
      // As with query parameters: GitHub drops unknown top-level fields silently, which would
      // hide a misspelt field in Eph, so the stand-in treats them as violations.
      if (
        schema.type === 'object' &&
        schema.properties &&
        schema.additionalProperties === undefined &&
        !schema.oneOf &&
        !schema.anyOf &&
        !schema.allOf
      ) {
        schema.additionalProperties = false;
      }
      return schema;
    });
  }

  // query: plain object of strings (repeated keys as arrays); body: parsed JSON or undefined.
  // Returns problems; `params` values are coerced in place to their schema types.
  validateRequest(match, query, body, hasBody) {
    const problems = [];
    const { route, params } = match;
    const pathCheck = this.paramValidator(route, 'path');
    if (!pathCheck(params)) problems.push(...formatErrors('path', pathCheck.errors));
    const queryCheck = this.paramValidator(route, 'query');
    if (!queryCheck(query)) problems.push(...formatErrors('query', queryCheck.errors));
    const info = this.requestBodyInfo(route);
    if (!info) {
      if (
        hasBody &&
        body !== undefined &&
        !(typeof body === 'object' && Object.keys(body).length === 0)
      ) {
        problems.push(`body: ${route.method} ${route.template} takes no request body`);
      }
    } else if (!hasBody) {
      if (info.required) problems.push('body: a request body is required');
    } else if (info.json && info.schema) {
      const bodyCheck = this.bodyValidator(route);
      if (!bodyCheck(body)) problems.push(...formatErrors('body', bodyCheck.errors));
    }
    return problems;
  }

  responseInfo(route, status) {
    const responses = route.op.responses || {};
    const response = this.resolve(responses[String(status)] || responses.default);
    return response || null;
  }

  validateResponse(match, status, body) {
    const { route } = match;
    const response = this.responseInfo(route, status);
    if (!response) {
      return [`response: status ${status} is not a documented response of ${route.operationId}`];
    }
    const schema = response.content?.['application/json']?.schema;
    if (!schema) return [];
    const check = this.responseValidator(route, status, schema);
    return check(body) ? [] : formatErrors('response', check.errors);
  }

  responseValidator(route, status, schema) {
    return this.compile(
      `${route.operationId} response ${status}`,
      () => {
        const fix = kResponseErrata[route.operationId];
        return this.toJsonSchema(fix ? fix(structuredClone(schema)) : schema, this.responseAjv);
      },
      this.responseAjv,
    );
  }

  // Compiles the validators of the given operations now rather than on their first request.
  warm(operationIds) {
    for (const id of operationIds) {
      const route = this.operations.get(id);
      if (!route) throw new Error(`unknown operation ${id}`);
      this.paramValidator(route, 'path');
      this.paramValidator(route, 'query');
      if (this.requestBodyInfo(route)?.schema) this.bodyValidator(route);
      for (const status of Object.keys(route.op.responses || {})) {
        const schema = this.responseInfo(route, status)?.content?.['application/json']?.schema;
        if (schema) this.responseValidator(route, status, schema);
      }
    }
  }

  // A webhook payload schema from the description's `x-webhooks`, by its key there
  // (e.g. "pull-request-labeled"), or null.
  webhookValidator(key) {
    const hook = this.doc['x-webhooks']?.[key]?.post;
    const schema = this.resolve(hook?.requestBody)?.content?.['application/json']?.schema;
    if (!schema) return null;
    return this.compile(
      `webhook ${key}`,
      () => this.toJsonSchema(schema, this.responseAjv),
      this.responseAjv,
    );
  }
}
