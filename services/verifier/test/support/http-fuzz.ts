// Hostile requests to a running verifier, end to end over HTTP: what the engine's own fuzzing does not reach
// (fastify's body parser and schemas, the handlers, the store, the reply serializers). Shared by
// http-fuzz.test.ts (a few hundred inputs in CI) and scripts/fuzz-http.ts (long runs).
//
// Every input is built from genuine traffic: a fresh challenge and the simulated node's evidence for it, a
// genuine attestation result, a genuine record query, then one mutation. The invariants:
// - the verifier answers every request, within REQUEST_TIMEOUT_MS, never with a 5xx;
// - a refusal (4xx) has the error reply's shape, with a stable code;
// - a 200 from /v1/attest has the shape of attestResponseSchema, and its verdict is fail unless the mutation
//   left the evidence as it was in meaning (JSON text with the same value);
// - a disk key is released only for an unaltered result and body;
// - afterwards, the appraisal records are exactly those the 200s named, and each log's chain verifies.
import Ajv from 'ajv';
import fc from 'fast-check';
import type { JSONWebKeySet } from 'jose';
import { connect } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { attestResponseSchema, errorReplySchema, recordPageSchema, type Evidence } from '@joinguard/protocol';
import { AUDITOR_TOKEN, challenge, fetcher, type Fetch, type SimHarness } from './sim-verifier.js';

export const REQUEST_TIMEOUT_MS = 10_000;

const ajv = new Ajv({ strict: false, allErrors: true });
const validAttestReply = ajv.compile(attestResponseSchema);
const validErrorReply = ajv.compile(errorReplySchema);
const validRecordPage = ajv.compile(recordPageSchema);

type Path = (string | number)[];

/** One change to a genuine request. */
export type Mutation =
  | { kind: 'set'; path: Path; value: unknown }
  | { kind: 'drop'; path: Path }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'wrap'; depth: number }
  | { kind: 'contentType'; value: string }
  | { kind: 'big'; path: Path; size: number }
  /** decode a base64 field, change its bytes, encode it again: evidence the schema accepts, for the parsers */
  | { kind: 'bytes'; path: Path; op: 'flip' | 'cut' | 'extend'; at: number; xor: number };

/** Every path into a JSON value, the root excluded. */
export function pathsOf(v: unknown, prefix: Path = []): Path[] {
  if (v === null || typeof v !== 'object') return [];
  const out: Path[] = [];
  const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
  for (const [k, x] of entries) {
    const p = [...prefix, k];
    out.push(p, ...pathsOf(x, p));
  }
  return out;
}

const B64_VALUE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Paths to the string values that are base64 of 16 bytes or more. */
function binaryPathsOf(root: unknown, paths: Path[]): Path[] {
  const at = (p: Path) => p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root);
  return paths.filter((p) => {
    const v = at(p);
    return typeof v === 'string' && v.length >= 24 && B64_VALUE.test(v);
  });
}

function mutationArb(paths: Path[], binary: Path[]): fc.Arbitrary<Mutation> {
  const path = fc.constantFrom(...paths);
  const bytes = fc.record({ kind: fc.constant('bytes' as const), path: fc.constantFrom(...binary), op: fc.constantFrom('flip' as const, 'cut' as const, 'extend' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) });
  const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '\\', '\\u0000', '\\ud800', '__proto__', 'null', '1e999', '-0'));
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('set' as const), path, value: fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('', 'A', '====', '-1', 0, -1, 2 ** 53, 1e308, true, null, [], {})) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('drop' as const), path }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap' as const), depth: fc.integer({ min: 1, max: 5000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('contentType' as const), value: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/octet-stream', '') }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('big' as const), path, size: fc.integer({ min: 64 * 1024, max: 3 * 1024 * 1024 }) }) },
    ...(binary.length > 0 ? [{ weight: 6, arbitrary: bytes }] : []),
  );
}

function setAt(root: unknown, path: Path, f: (parent: Record<string | number, unknown>, key: string | number) => void): void {
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  f(o, path[path.length - 1]!);
}

/** The body and content type of a mutated request, and whether it still means what the genuine one did. */
export function applyMutation(genuine: unknown, m: Mutation): { body: Buffer; contentType: string; same: boolean } {
  const json = structuredClone(genuine);
  let contentType = 'application/json';
  let text: string | undefined;
  let bytes: Buffer | undefined;
  switch (m.kind) {
    case 'set':
      setAt(json, m.path, (o, k) => (o[k] = m.value));
      break;
    case 'drop':
      setAt(json, m.path, (o, k) => {
        if (Array.isArray(o)) o.splice(Number(k), 1);
        else delete o[k];
      });
      break;
    case 'big':
      setAt(json, m.path, (o, k) => (o[k] = 'A'.repeat(m.size)));
      break;
    case 'bytes':
      setAt(json, m.path, (o, k) => {
        const b = Buffer.from(String(o[k]), 'base64');
        const at = m.at % b.length;
        if (m.op === 'flip') b[at]! ^= m.xor;
        o[k] = (m.op === 'cut' ? b.subarray(0, at) : m.op === 'extend' ? Buffer.concat([b, Buffer.alloc(1 + (m.at % 64), m.xor)]) : b).toString('base64');
      });
      break;
    case 'wrap': {
      text = '['.repeat(m.depth) + JSON.stringify(json) + ']'.repeat(m.depth);
      break;
    }
    case 'contentType':
      contentType = m.value;
      break;
    default: {
      const b = Buffer.from(JSON.stringify(json));
      const at = m.at % (b.length + 1);
      if (m.kind === 'truncate') bytes = b.subarray(0, at);
      else if (m.kind === 'insert') bytes = Buffer.concat([b.subarray(0, at), Buffer.from(m.text), b.subarray(at)]);
      else {
        bytes = Buffer.from(b);
        if (at < bytes.length) bytes[at]! ^= m.xor;
      }
    }
  }
  const body = bytes ?? Buffer.from(text ?? JSON.stringify(json));
  // A JSON media type with parameters (a charset) still carries the same value when its text is the same.
  let same = false;
  if (contentType.split(';')[0]!.trim() === 'application/json') {
    try {
      same = isDeepStrictEqual(JSON.parse(body.toString('utf8')), genuine);
    } catch {
      same = false;
    }
  }
  return { body, contentType, same };
}

/** Where a mutated body parts from the genuine value: a path and the two texts around the first difference. */
export function firstDifference(genuine: unknown, body: Buffer): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const walk = (a: unknown, b: unknown, path: string): string | undefined => {
    if (typeof a === 'string' && typeof b === 'string') {
      if (a === b) return undefined;
      let i = 0;
      while (a[i] === b[i]) i++;
      return `${path || '.'} at ${i} of ${a.length}: ${JSON.stringify(a.slice(Math.max(0, i - 6), i + 6))} became ${JSON.stringify(b.slice(Math.max(0, i - 6), i + 6))}`;
    }
    if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        const d = walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`);
        if (d) return d;
      }
      return undefined;
    }
    return isDeepStrictEqual(a, b) ? undefined : `${path || '.'}: ${JSON.stringify(a)?.slice(0, 40)} became ${JSON.stringify(b)?.slice(0, 40)}`;
  };
  return walk(genuine, parsed, '') ?? 'the same value';
}

/**
 * Whether a bundle that passed may differ from the genuine one: only in bytes no signature or digest covers,
 * i.e. the event log's (an event's data, e.g. an image's device path, is not what its digest is over; the
 * replay decides), the SNP report's after its signed part (0x2A0 on) and a TDX quote's after its signature data;
 * or in spelling only (sameMeaning).
 */
/**
 * Spellings the verifier reads as one value: PCR values in either case of hex (normalised before the digest),
 * and certificate text with or without whitespace (PEM allows line breaks and spaces in a body).
 */
function sameMeaning(e: Evidence): Evidence {
  const x = structuredClone(e) as { tpm?: { pcrs?: unknown }; hardware?: { certs?: unknown } };
  const pcrs = x.tpm?.pcrs;
  if (pcrs && typeof pcrs === 'object') {
    for (const bank of Object.values(pcrs as Record<string, unknown>)) {
      if (!bank || typeof bank !== 'object') continue;
      const values = bank as Record<string, unknown>;
      for (const [k, v] of Object.entries(values)) if (typeof v === 'string') values[k] = v.toLowerCase();
    }
  }
  const certs = x.hardware?.certs;
  if (certs && typeof certs === 'object') {
    const c = certs as Record<string, unknown>;
    for (const [k, v] of Object.entries(c)) if (typeof v === 'string') c[k] = v.replace(/[ \t\r\n]+/g, '');
  }
  return x as Evidence;
}

export function mayPassWith(genuine: Evidence, body: Buffer): boolean {
  let got: Evidence;
  try {
    got = JSON.parse(body.toString('utf8')) as Evidence;
  } catch {
    return false;
  }
  if (typeof got !== 'object' || got === null || typeof got.eventLog !== 'string') return false;
  const a = { ...genuine, eventLog: '' } as Evidence;
  const b = { ...got, eventLog: '' } as Evidence;
  if (genuine.tee === 'snp' && typeof got.hardware?.report === 'string') {
    const ra = Buffer.from(genuine.hardware.report, 'base64');
    const rb = Buffer.from(got.hardware.report, 'base64');
    if (rb.length !== ra.length || !ra.subarray(0, 0x2a0).equals(rb.subarray(0, 0x2a0)) || rb.toString('base64') !== got.hardware.report) return false;
    b.hardware = { ...got.hardware, report: genuine.hardware.report };
  }
  if (genuine.tee === 'tdx' && typeof got.hardware?.report === 'string') {
    // Bytes after the quote's signature data are tolerated (quote buffers come padded) and covered by nothing.
    const ra = Buffer.from(genuine.hardware.report, 'base64');
    const rb = Buffer.from(got.hardware.report, 'base64');
    if (rb.length < ra.length || !rb.subarray(0, ra.length).equals(ra) || rb.toString('base64') !== got.hardware.report) return false;
    b.hardware = { ...got.hardware, report: genuine.hardware.report };
  }
  return isDeepStrictEqual(sameMeaning(a), sameMeaning(b));
}

export interface FuzzTally {
  inputs: number;
  /** HTTP status → count */
  statuses: Record<string, number>;
  /** error code (4xx) or verdict (200) → count */
  outcomes: Record<string, number>;
  /** what broke an invariant, described; empty when all held */
  problems: string[];
  /** the slowest answer, in ms */
  slowestMs: number;
}

async function send(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; text: string; ms: number } | { error: string }> {
  const t0 = performance.now();
  try {
    const r = await fetch(base + path, { method, headers, ...(body ? { body } : {}), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return { status: r.status, text: await r.text(), ms: performance.now() - t0 };
  } catch (e) {
    return { error: `${method} ${path}: ${(e as Error).name}: ${(e as Error).message}` };
  }
}

/**
 * The same over a raw socket, for requests fetch will not send (a header value with a control character or a
 * character past Latin-1): the bytes go out as they are and the first reply is read until the server closes.
 */
export function sendRaw(base: string, method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; text: string; ms: number } | { error: string }> {
  const { hostname, port } = new URL(base);
  const t0 = performance.now();
  const head = [`${method} ${path} HTTP/1.1`, `host: ${hostname}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${body.length}`, 'connection: close', '', ''].join('\r\n');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: hostname, port: Number(port) });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ error: `${method} ${path}: no reply within ${REQUEST_TIMEOUT_MS} ms` });
    }, REQUEST_TIMEOUT_MS);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const reply = Buffer.concat(chunks).toString('utf8');
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(reply);
      const split = reply.indexOf('\r\n\r\n');
      if (!status || split < 0) return resolve({ error: `${method} ${path}: no HTTP reply (${JSON.stringify(reply.slice(0, 80))})` });
      // Refusals are small JSON bodies sent with a content-length, never chunked.
      resolve({ status: Number(status[1]), text: reply.slice(split + 4), ms: performance.now() - t0 });
    });
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

/** Whether fetch sends this header value as it is (visible ASCII and spaces, nothing else). */
const fetchable = (v: string) => /^[\x20-\x7e]*$/.test(v) && v.trim() === v;

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function tallyReply(t: FuzzTally, what: string, r: { status: number; text: string; ms: number }, onOk: (body: unknown) => string | undefined): void {
  t.inputs++;
  t.statuses[r.status] = (t.statuses[r.status] ?? 0) + 1;
  t.slowestMs = Math.max(t.slowestMs, r.ms);
  const body = parse(r.text);
  const problem = (s: string) => {
    if (t.problems.length < 20) t.problems.push(`${what}: ${s}`);
  };
  if (r.status >= 500) return problem(`HTTP ${r.status} ${r.text.slice(0, 300)}`);
  if (r.status >= 400) {
    if (!validErrorReply(body)) return problem(`HTTP ${r.status} without the error reply shape: ${r.text.slice(0, 300)}`);
    const code = (body as { code: string }).code;
    t.outcomes[code] = (t.outcomes[code] ?? 0) + 1;
    return;
  }
  if (r.status !== 200) return problem(`HTTP ${r.status}`);
  const p = onOk(body);
  if (p) problem(p);
}

/** Mutated bundles to POST /v1/attest, each for a fresh challenge. */
async function fuzzAttest(h: SimHarness, f: Fetch, runs: number, seed: number, t: FuzzTally, answered: Set<string>): Promise<void> {
  const { nonce } = await challenge(f);
  const sample = await h.sim.evidence({ nonce });
  const paths = pathsOf(sample);
  const samples = fc.sample(mutationArb(paths, binaryPathsOf(sample, paths)), { numRuns: runs, seed });
  for (const m of samples) {
    const { nonce: fresh } = await challenge(f);
    const evidence: Evidence = await h.sim.evidence({ nonce: fresh });
    const { body, contentType, same } = applyMutation(evidence, m);
    const r = await send(h.v.url, 'POST', '/v1/attest', contentType ? { 'content-type': contentType } : {}, body);
    const what = `attest ${JSON.stringify(m).slice(0, 200)}`;
    if ('error' in r) {
      t.problems.push(`${what}: ${r.error}`);
      continue;
    }
    tallyReply(t, what, r, (reply) => {
      if (!validAttestReply(reply)) return `200 without the attest reply shape: ${JSON.stringify(validAttestReply.errors).slice(0, 300)}`;
      const verdict = (reply as { appraisal: { verdict: string } }).appraisal.verdict;
      t.outcomes[verdict] = (t.outcomes[verdict] ?? 0) + 1;
      answered.add((reply as { recordId: string }).recordId);
      if (verdict === 'pass' && !same && !mayPassWith(evidence, body)) return `altered evidence passed (${firstDifference(evidence, body)})`;
      return undefined;
    });
  }
}

/** Mutated attestation results and bodies to POST /v1/keys/disk/{name}. */
async function fuzzKeys(h: SimHarness, f: Fetch, runs: number, seed: number, t: FuzzTally, answered: Set<string>): Promise<void> {
  const { nonce } = await challenge(f);
  const evidence = await h.sim.evidence({ nonce });
  const res = await f('/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evidence) });
  const { result, recordId } = (await res.json()) as { result: string; recordId: string };
  answered.add(recordId);
  const name = 'root';
  const genuine = { token: result, body: {} as Record<string, unknown>, name };
  const arb = fc.oneof(
    fc.record({ part: fc.constant('token' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 127 }), cut: fc.boolean() }),
    fc.record({ part: fc.constant('body' as const), value: fc.jsonValue({ maxDepth: 2 }) }),
    fc.record({ part: fc.constant('name' as const), value: fc.oneof(fc.string({ maxLength: 80 }), fc.constantFrom('..', '%2e%2e', 'a'.repeat(300), '%00', 'root%2Fx')) }),
  );
  for (const m of fc.sample(arb, { numRuns: runs, seed })) {
    let token = genuine.token;
    let body: unknown = genuine.body;
    let keyName = genuine.name;
    let altered = true;
    if (m.part === 'token') {
      const i = m.at % token.length;
      token = m.cut ? token.slice(0, i) : token.slice(0, i) + String.fromCharCode(token.charCodeAt(i) ^ m.xor) + token.slice(i + 1);
    } else if (m.part === 'body') {
      body = m.value;
      altered = !isDeepStrictEqual(body, genuine.body);
    } else {
      keyName = encodeURIComponent(m.value).replace(/%25/g, '%');
      altered = keyName !== genuine.name;
    }
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const r = await (fetchable(token) ? send : sendRaw)(h.v.url, 'POST', `/v1/keys/disk/${keyName}`, headers, Buffer.from(JSON.stringify(body)));
    const what = `keys ${JSON.stringify(m).slice(0, 200)}`;
    if ('error' in r) {
      t.problems.push(`${what}: ${r.error}`);
      continue;
    }
    tallyReply(t, what, r, () => {
      t.outcomes.released = (t.outcomes.released ?? 0) + 1;
      return altered && m.part === 'token' ? 'a disk key released for an altered result' : undefined;
    });
  }
}

/** Mutated queries to GET /v1/records. */
async function fuzzRecords(h: SimHarness, runs: number, seed: number, t: FuzzTally): Promise<void> {
  const names = ['node', 'from', 'to', 'verdict', 'tee', 'purpose', 'kind', 'log', 'limit', 'cursor', 'x', '__proto__', 'constructor'];
  const value = fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('pass', 'snp', 'appraisal', 'appraisals', '2026-12-02T00:00:00Z', '0', '-1', '1e9', 'NaN', '', 'a'.repeat(5000)), fc.integer().map(String));
  const arb = fc.array(fc.tuple(fc.constantFrom(...names), value), { maxLength: 5 });
  for (const q of fc.sample(arb, { numRuns: runs, seed })) {
    const query = q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
    const r = await send(h.v.url, 'GET', `/v1/records?${query}`, { authorization: `Bearer ${AUDITOR_TOKEN}` });
    const what = `records ?${query.slice(0, 200)}`;
    if ('error' in r) {
      t.problems.push(`${what}: ${r.error}`);
      continue;
    }
    tallyReply(t, what, r, (page) => (validRecordPage(page) ? undefined : `200 without the record page shape: ${JSON.stringify(validRecordPage.errors).slice(0, 300)}`));
  }
}

/**
 * Runs `runs` hostile requests (about 70 % to /v1/attest, 15 % each to the key broker and the records query)
 * against the harness's verifier, then checks what the store holds.
 */
export async function fuzzVerifier(h: SimHarness, runs: number, seed: number): Promise<FuzzTally> {
  const f = fetcher(h.v.url);
  const t: FuzzTally = { inputs: 0, statuses: {}, outcomes: {}, problems: [], slowestMs: 0 };
  const jwks = async () => (await (await f('/.well-known/jwks.json')).json()) as JSONWebKeySet;
  const before = await h.v.store.verifyChain('appraisals', await jwks());
  const keyRuns = Math.floor(runs * 0.15);
  const recordRuns = Math.floor(runs * 0.15);
  const answered = new Set<string>();
  await fuzzAttest(h, f, runs - keyRuns - recordRuns, seed, t, answered);
  await fuzzKeys(h, f, keyRuns, seed + 1, t, answered);
  await fuzzRecords(h, recordRuns, seed + 2, t);
  const health = await f('/healthz');
  if (health.status !== 200) t.problems.push(`healthz: HTTP ${health.status} after the run`);
  for (const log of await h.v.store.logs()) {
    const c = await h.v.store.verifyChain(log, await jwks());
    if (!c.ok) t.problems.push(`log ${log}: chain does not verify at seq ${c.firstBadSeq}: ${c.code} ${c.reason}`);
  }
  // Every appraisal record since the start is one that a 200 named, and each of those is there.
  const stored = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await h.v.store.query({ log: 'appraisals', limit: 500, ...(cursor ? { cursor } : {}) });
    for (const r of page.records) {
      if (r.record.seq <= before.count) continue;
      stored.add(r.record.id);
      if (!answered.has(r.record.id)) {
        const body = r.record.body as { checks?: { id: string; outcome: string; code?: string; message?: string }[]; evidence?: { runtimeData?: { nodeName?: unknown } } };
        const failed = body.checks?.find((c) => c.outcome === 'fail');
        t.problems.push(`record ${r.record.id} (seq ${r.record.seq}, verdict ${r.record.verdict}, first failed check ${failed?.id} ${failed?.code}: ${failed?.message?.slice(0, 200)}) was not answered with a 200`);
      }
    }
    cursor = page.nextCursor;
  } while (cursor);
  for (const id of answered) if (!stored.has(id)) t.problems.push(`record ${id}, named by a 200, is not in the store`);
  return t;
}
