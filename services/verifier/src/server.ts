import type { TLSSocket } from 'node:tls';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyRateLimit from '@fastify/rate-limit';
import { JoinguardError, isJoinguardError } from '@joinguard/core';
import {
  attestResponseSchema,
  hexSha256Schema,
  challengeResponseSchema,
  errorReplySchema,
  evidenceSchema,
  jwksSchema,
  keyReleaseParamsSchema,
  keyReleaseRequestSchema,
  keyReleaseResponseSchema,
  nodeStateSchema,
  policyChangeResponseSchema,
  policyDocumentResponseSchema,
  policyListResponseSchema,
  policyPoolParamsSchema,
  recordPageSchema,
  recordQuerySchema,
  referenceValueParamsSchema,
  signedRecordSchema,
  unpinRequestSchema,
  type Evidence,
  type KeyReleaseRequest,
  type RecordQuery,
  type UnpinRequest,
} from '@joinguard/protocol';
import { authenticateBearer, authenticateMtls, hasRole, type Principal, type Role, type TokenEntry } from './auth.js';
import type { Actor, Verifier } from './service.js';
import type { VerifierMetrics } from './metrics.js';
import Ajv, { type ValidateFunction } from 'ajv';
import { notePassedEdgeSchema } from './appraise/index.js';

export interface ServerOptions {
  verifier: Verifier;
  metrics: VerifierMetrics;
  tokens: TokenEntry[];
  mtlsRoles: Record<string, Role[]>;
  attestPerMinute: number;
  /** reverse proxies whose X-Forwarded-For names the client (addresses or CIDR ranges); none: the peer is the client */
  trustedProxies?: string[];
  /** a pino logger; none logs nothing */
  logger?: FastifyBaseLogger;
  https?: { key: Buffer; cert: Buffer; ca?: Buffer };
  /** readiness: e.g. the store answers */
  ready?: () => Promise<boolean>;
  /** how long /readyz waits for `ready` before answering 503 (default 2 s: probes time out, stores retry) */
  readyTimeoutMs?: number;
}

/** Largest request body: evidence with a 4 MiB event log as base64 and its certificates. */
const ATTEST_BODY_LIMIT = 8 * 1024 * 1024;

/** HTTP status for an error: a stable mapping from code families, so clients can rely on it. */
export function statusFor(e: JoinguardError): number {
  if (e.kind === 'internal') return 500;
  if (e.code === 'AUTH_REQUIRED' || e.code === 'KEYS_NO_RESULT' || e.code.startsWith('PROTOCOL_RESULT_') || e.code.startsWith('PROTOCOL_NONCE_')) return 401;
  if (e.code === 'AUTH_FORBIDDEN' || e.code.startsWith('KEYS_')) return 403;
  if (e.code === 'NOT_FOUND') return 404;
  if (e.code === 'REQUEST_TIMEOUT') return 408;
  if (e.code === 'REQUEST_TOO_LARGE') return 413;
  if (e.code === 'REQUEST_URL_TOO_LONG') return 414;
  if (e.code === 'RATE_LIMITED') return 429;
  if (e.code === 'REQUEST_HEADERS_TOO_LARGE') return 431;
  if (e.kind === 'input') return 400;
  return 422;
}

const errorReplies = Object.fromEntries([400, 401, 403, 404, 413, 414, 422, 429, 500].map((status) => [status, errorReplySchema]));

/**
 * For routes that relay signed records: the reply is written as the store gave it, not by the serializer
 * fastify builds from the response schema, which writes only the members the schema lists and writes a
 * `const` member as the constant. A record of a later format, or with a member this version does not know,
 * would otherwise reach an auditor different from its JWS. The schema still describes the reply in the
 * OpenAPI document, and the tests hold the replies to it. The node state routes too: a replica of a newer
 * version sharing the store may keep a member in a node's state that this one does not know.
 */
const asStored = { serializerCompiler: () => (data: unknown) => JSON.stringify(data) };

const ajvLogger = {
  log: (...a: unknown[]) => console.log(...a),
  warn: (...a: unknown[]) => {
    if (!(typeof a[0] === 'string' && a[0].startsWith('DEPRECATED: option unicode'))) console.warn(...a);
  },
  error: (...a: unknown[]) => console.error(...a),
};

export async function buildServer(o: ServerOptions): Promise<FastifyInstance> {
  const refuse = (err: unknown, req: FastifyRequest, reply: FastifyReply): void => {
    const e = toJoinguardError(err);
    const status = statusFor(e);
    if (status >= 500) req.log.error({ err, code: e.code }, 'request failed');
    else req.log.info({ code: e.code }, 'request refused');
    o.metrics.rejections.inc({ code: e.code });
    // A fault of ours is logged in full above; the client learns its code, not our internals.
    void reply.status(status).send(status >= 500 ? { code: e.code, message: 'internal error', details: {} } : e.toJSON());
  };
  const app = Fastify({
    // What the router refuses before any route runs (a URL it cannot decode, a path parameter longer than
    // maxParamLength) is answered like every other refusal, not in fastify's own shape.
    frameworkErrors: refuse,
    // What Node's HTTP parser cannot read (a header value with a control character, a broken request line)
    // never reaches fastify's routing: it too is answered in the error reply shape, then the connection ends.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const [code, message] =
        err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['REQUEST_TIMEOUT', 'the request was not received in time']
          : err.code === 'HPE_HEADER_OVERFLOW'
            ? ['REQUEST_HEADERS_TOO_LARGE', 'the request headers are larger than allowed']
            : ['REQUEST_MALFORMED', 'the request is not well-formed HTTP/1.1'];
      const e = new JoinguardError(code, message, { parserCode: err.code ?? 'unknown' }, { kind: 'input' });
      const status = statusFor(e);
      o.metrics.rejections.inc({ code });
      const body = JSON.stringify(e.toJSON());
      if (!socket.writable) return void socket.destroy();
      // end() lets the reply go out before the socket closes; a peer that never reads it is cut off soon.
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      setTimeout(() => socket.destroy(), 1000).unref();
    },
    ...(o.logger ? { loggerInstance: o.logger } : { logger: false }),
    bodyLimit: 1024 * 1024,
    ...(o.https ? { https: { key: o.https.key, cert: o.https.cert, ...(o.https.ca ? { ca: o.https.ca, requestCert: true, rejectUnauthorized: false } : {}) } } : {}),
    // A forwarded address is believed only from the proxies the configuration names; rate limits key on the
    // client address that gives (the peer's own address without them).
    trustProxy: o.trustedProxies && o.trustedProxies.length > 0 ? o.trustedProxies : false,
  });
  // Query strings and path parameters arrive as text and are coerced to their schema's types; bodies are JSON
  // and are taken exactly as sent: a coerced body would be stored and hashed as something the client never sent.
  // unicode: false counts maxLength in UTF-16 code units, never fewer than code points (so no looser), and
  // spares a per-character walk of every base64 field of the evidence (half of its validation time). Ajv 8
  // still honours the option but calls it deprecated at every start: that one notice is dropped.
  const bodyAjv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, strict: false, unicode: false, logger: ajvLogger });
  const textAjv = new Ajv({ allErrors: false, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'joinguard verifier', version: '0.1.0', description: 'Attestation of confidential-cluster nodes, key release and audit records' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  await app.register(fastifyRateLimit, {
    global: false,
    keyGenerator: (req) => req.ip || 'unknown',
    errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, code: 'RATE_LIMITED', message: `rate limit exceeded: at most ${ctx.max} requests per ${ctx.after}`, details: {} }),
  });

  // Graceful shutdown: close() closes idle keep-alive connections once, then waits for every connection to
  // end. A connection whose request is in flight at that moment would otherwise stay open (idle, keep-alive)
  // after its reply until the keep-alive timeout, holding the shutdown for up to 72 s; replies sent while
  // closing therefore end their connection.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });

  app.setErrorHandler(refuse);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, details: {} });
  });

  const principal = (req: FastifyRequest): Principal | undefined => {
    const viaToken = authenticateBearer(req.headers.authorization, o.tokens);
    if (viaToken) return viaToken;
    const sock = req.socket as Partial<TLSSocket>;
    if (typeof sock.getPeerCertificate === 'function') {
      const cert = sock.getPeerCertificate();
      const cn = cert?.subject?.CN;
      return authenticateMtls(Array.isArray(cn) ? cn[0] : cn, sock.authorized === true, o.mtlsRoles);
    }
    return undefined;
  };
  const requireRole = (role: Role) => async (req: FastifyRequest): Promise<void> => {
    const p = principal(req);
    if (!p) throw new JoinguardError('AUTH_REQUIRED', `this route needs ${role} credentials (a Bearer token or an mTLS client certificate)`, {}, { kind: 'rejected' });
    if (!hasRole(p, role)) throw new JoinguardError('AUTH_FORBIDDEN', `${p.name} lacks the ${role} role`, { principal: p.name }, { kind: 'rejected' });
    (req as FastifyRequest & { principal?: Principal }).principal = p;
  };
  /** Who a request that passed requireRole comes from. */
  const actor = (req: FastifyRequest): Actor => {
    const p = (req as FastifyRequest & { principal?: Principal }).principal;
    return { name: p?.name ?? 'unknown', via: p?.via ?? 'token' };
  };
  const attesterLimit = { rateLimit: { max: o.attestPerMinute, timeWindow: '1 minute' } };

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    const ok = o.ready ? await withTimeout(o.ready().catch(() => false), o.readyTimeoutMs ?? 2000, false) : true;
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready' });
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    return reply.header('content-type', o.metrics.registry.contentType).send(await o.metrics.registry.metrics());
  });
  app.get(
    '/.well-known/jwks.json',
    { schema: { tags: ['keys'], summary: 'Verifier keys that sign attestation results and records', response: { 200: jwksSchema, ...errorReplies } } },
    async () => o.verifier.jwks(),
  );

  app.get('/v1/challenge', { config: attesterLimit, schema: { tags: ['attester'], response: { 200: challengeResponseSchema, ...errorReplies } } }, async () => o.verifier.challenge());

  app.post<{ Body: Evidence }>(
    '/v1/attest',
    {
      bodyLimit: ATTEST_BODY_LIMIT,
      config: attesterLimit,
      schema: { tags: ['attester'], body: evidenceSchema, response: { 200: attestResponseSchema, ...errorReplies } },
      // The engine need not validate again what passed this (stricter) schema.
      validatorCompiler: ({ schema }) => {
        const validate = bodyAjv.compile(schema);
        const noting = ((body: unknown) => {
          const ok = validate(body) as boolean;
          noting.errors = validate.errors;
          if (ok) notePassedEdgeSchema(body);
          return ok;
        }) as ValidateFunction;
        return noting;
      },
    },
    async (req) => o.verifier.attest(req.body),
  );

  app.post<{ Params: { name: string }; Body: KeyReleaseRequest | undefined }>(
    '/v1/keys/disk/:name',
    {
      config: attesterLimit,
      schema: { tags: ['attester'], params: keyReleaseParamsSchema, body: keyReleaseRequestSchema, security: [{ bearer: [] }], response: { 200: keyReleaseResponseSchema, ...errorReplies } },
      // The body is optional (both members are): a request without one is a request with {}, and goes on to
      // the key broker, which decides and records it, instead of being refused at the schema.
      preValidation: async (req: FastifyRequest) => {
        if (req.body === undefined) req.body = {};
      },
    },
    async (req) => {
      const auth = req.headers.authorization;
      const bearer = auth && /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
      return o.verifier.releaseDiskKey(req.params.name, bearer || undefined, req.body ?? {});
    },
  );

  app.get<{ Querystring: RecordQuery }>(
    '/v1/records',
    { ...asStored, preHandler: requireRole('auditor'), schema: { tags: ['audit'], querystring: recordQuerySchema, security: [{ bearer: [] }], response: { 200: recordPageSchema, ...errorReplies } } },
    async (req) => o.verifier.records(req.query),
  );
  app.get<{ Params: { id: string } }>(
    '/v1/records/:id',
    {
      ...asStored,
      preHandler: requireRole('auditor'),
      schema: { tags: ['audit'], params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } } }, security: [{ bearer: [] }], response: { 200: signedRecordSchema, ...errorReplies } },
    },
    async (req) => {
      const r = await o.verifier.record(req.params.id);
      if (!r) throw new JoinguardError('NOT_FOUND', `no record ${req.params.id}`, { id: req.params.id }, { kind: 'input' });
      return r;
    },
  );
  // What records name by digest (an appraisal's event log): the raw bytes, whose SHA-256 is the name.
  app.get<{ Params: { sha256: string } }>(
    '/v1/blobs/:sha256',
    {
      preHandler: requireRole('auditor'),
      schema: {
        tags: ['audit'],
        summary: 'Content a record names by SHA-256 (evidenceBlobs), as raw bytes',
        params: { type: 'object', properties: { sha256: hexSha256Schema } },
        security: [{ bearer: [] }],
        // Sent as a Buffer, which no serializer touches; the schema is for the OpenAPI document.
        response: { 200: { content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...errorReplies },
      },
    },
    async (req, reply) => {
      const data = await o.verifier.blob(req.params.sha256);
      if (!data) throw new JoinguardError('NOT_FOUND', `no blob ${req.params.sha256}`, { sha256: req.params.sha256 }, { kind: 'input' });
      return reply.type('application/octet-stream').send(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    },
  );
  const nodesReply = { type: 'object', required: ['nodes'], additionalProperties: false, properties: { nodes: { type: 'array', items: nodeStateSchema } } } as const;
  app.get('/v1/nodes', { ...asStored, preHandler: requireRole('auditor'), schema: { tags: ['audit'], security: [{ bearer: [] }], response: { 200: nodesReply, ...errorReplies } } }, async () => ({ nodes: await o.verifier.nodes() }));
  app.get(
    '/v1/keys/all',
    { preHandler: requireRole('auditor'), schema: { tags: ['audit'], summary: 'Every verifier key ever used (to verify old records)', security: [{ bearer: [] }], response: { 200: jwksSchema, ...errorReplies } } },
    async () => o.verifier.allKeys(),
  );
  app.post<{ Params: { name: string }; Body: { reason: string } }>(
    '/v1/nodes/:name/revoke',
    {
      ...asStored,
      preHandler: requireRole('admin'),
      schema: {
        tags: ['admin'],
        params: keyReleaseParamsSchema,
        body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 1024 } } },
        security: [{ bearer: [] }],
        response: { 200: nodeStateSchema, ...errorReplies },
      },
    },
    async (req) => o.verifier.revoke(req.params.name, req.body.reason, actor(req).name),
  );
  app.post<{ Params: { name: string }; Body: UnpinRequest }>(
    '/v1/nodes/:name/unpin',
    {
      ...asStored,
      preHandler: requireRole('admin'),
      schema: {
        tags: ['admin'],
        summary: 'Clear the vTPM AK a node is pinned to (tpm.pinAk): its next pass pins the AK it comes with',
        params: keyReleaseParamsSchema,
        body: unpinRequestSchema,
        security: [{ bearer: [] }],
        response: { 200: nodeStateSchema, ...errorReplies },
      },
    },
    async (req) => o.verifier.unpin(req.params.name, req.body, actor(req).name),
  );

  // Policies per node pool. Reading them is an auditor's; changing them (the whole policy, or one reference
  // value) an admin's. A new policy goes through the checks of `joinguard policy check`; its errors come back
  // as details.errors with 400.
  app.get('/v1/policies', { preHandler: requireRole('auditor'), schema: { tags: ['audit'], summary: 'Node pools and the policy in force for each', security: [{ bearer: [] }], response: { 200: policyListResponseSchema, ...errorReplies } } }, async () => ({
    pools: o.verifier.policies(),
  }));
  // The three routes that change a policy: admin only, each answering what changed.
  const policyChange = (summary: string, params: object) => ({
    preHandler: requireRole('admin'),
    schema: { tags: ['admin'], summary, params, security: [{ bearer: [] }], response: { 200: policyChangeResponseSchema, ...errorReplies } },
  });
  await app.register(async (scope) => {
    // YAML bodies for PUT: only in this scope, so no other route parses YAML.
    scope.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
    scope.get<{ Params: { pool: string } }>(
      '/v1/policies/:pool',
      { preHandler: requireRole('auditor'), schema: { tags: ['audit'], summary: 'A pool and its whole policy document', params: policyPoolParamsSchema, security: [{ bearer: [] }], response: { 200: policyDocumentResponseSchema, ...errorReplies } } },
      async (req) => o.verifier.policyDocument(req.params.pool),
    );
    scope.put<{ Params: { pool: string }; Body: unknown }>(
      '/v1/policies/:pool',
      policyChange('Replace a pool\'s policy (JSON, or YAML as application/yaml)', policyPoolParamsSchema),
      async (req) => {
        // Text is read as YAML only when sent as YAML; a JSON body must be the policy object itself.
        const yaml = /^(application\/(x-)?yaml|text\/yaml)\b/i.test(req.headers['content-type'] ?? '');
        if (!yaml && typeof req.body === 'string') throw new JoinguardError('REQUEST_INVALID', 'a JSON body must be the policy object; send YAML as application/yaml', {}, { kind: 'input' });
        return o.verifier.putPolicy(req.params.pool, req.body, actor(req));
      },
    );
    scope.post<{ Params: { pool: string }; Body: unknown }>(
      '/v1/policies/:pool/reference-values',
      policyChange('Add a reference value to a pool\'s policy', policyPoolParamsSchema),
      async (req) => o.verifier.addReferenceValue(req.params.pool, req.body, actor(req)),
    );
    scope.delete<{ Params: { pool: string; ref: string } }>(
      '/v1/policies/:pool/reference-values/:ref',
      policyChange('Remove reference value {id}@{version} from a pool\'s policy', referenceValueParamsSchema),
      async (req) => o.verifier.removeReferenceValue(req.params.pool, req.params.ref, actor(req)),
    );
  });

  return app;
}

/** `p`, or `fallback` once `ms` have passed (a store that lost its servers may retry for longer than a probe waits). */
function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Maps fastify's own errors (validation, body size, JSON syntax) and anything unexpected to our error type. */
function toJoinguardError(err: unknown): JoinguardError {
  if (isJoinguardError(err)) return err;
  const e = err as { code?: string; statusCode?: number; message?: string; validation?: unknown };
  if (e.statusCode === 429) return new JoinguardError('RATE_LIMITED', e.message ?? 'rate limit exceeded', {}, { kind: 'input' });
  if (e.validation) return new JoinguardError('REQUEST_INVALID', `request does not match the schema: ${e.message}`, {}, { kind: 'input' });
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new JoinguardError('REQUEST_TOO_LARGE', 'request body is larger than allowed', {}, { kind: 'input' });
  if (e.code === 'FST_ERR_MAX_PARAM_LENGTH') return new JoinguardError('REQUEST_URL_TOO_LONG', 'a path parameter of the URL is longer than allowed (100 characters)', {}, { kind: 'input' });
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    return new JoinguardError('REQUEST_INVALID', e.message ?? 'invalid request', { fastifyCode: e.code }, { kind: 'input' });
  }
  return new JoinguardError('INTERNAL', 'internal error', {}, { kind: 'internal', cause: err });
}

export type { FastifyReply };
