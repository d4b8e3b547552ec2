import type { Command } from 'commander';
import { inputError } from '@joinguard/core';
import { isSha256Hex, type NodeState, type UnpinRequest } from '@joinguard/protocol';
import { runCommand, usage } from '../output.js';

interface RemoteOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

type ErrorBody = { code?: string; message?: string; details?: unknown } | undefined;

/** One request to a running verifier with a bearer token; its refusal is CLI_HTTP with the server's code and details. */
async function call(o: RemoteOptions, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  if (!o.url) throw usage('give --url URL of a running verifier (with --token or JOINGUARD_TOKEN)');
  const token = o.token ?? process.env.JOINGUARD_TOKEN;
  const url = `${o.url.replace(/\/+$/, '')}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw inputError('CLI_UNREACHABLE', `cannot reach ${url}: ${(e as Error).message}`, { url });
  }
  const reply = (await res.json().catch(() => undefined)) as ErrorBody;
  if (!res.ok) {
    const details = typeof reply?.details === 'object' && reply.details !== null && !Array.isArray(reply.details) ? { serverDetails: reply.details as Record<string, unknown> } : {};
    throw inputError('CLI_HTTP', `${method} ${url} answered ${res.status}${reply?.code ? ` ${reply.code}: ${reply.message}` : ''}`, {
      status: res.status,
      ...(typeof reply?.code === 'string' ? { serverCode: reply.code } : {}),
      ...details,
    });
  }
  if (reply === undefined) throw inputError('CLI_HTTP', `${url} did not answer JSON: is it a joinguard verifier?`, { status: res.status });
  return reply;
}

const remoteFlags = (c: Command, role: string): Command =>
  c
    .requiredOption('--url <url>', 'a running verifier')
    .option('--token <token>', `${role} bearer token (or JOINGUARD_TOKEN)`)
    .option('--json', 'print JSON');

function pinText(n: NodeState): string {
  return n.pinnedAkSha256 ? `pinned to AK ${n.pinnedAkSha256} since ${n.pinnedAkAt ?? '?'} (record ${n.pinnedAkRecordId ?? '?'})` : 'no AK pinned';
}

/** `joinguard node …`: a running verifier's node states, and the admin's changes to them. */
export function registerNode(program: Command): void {
  const node = program.command('node').description("a running verifier's nodes: their state and the vTPM AK each is pinned to (tpm.pinAk)");

  remoteFlags(node.command('list').description('every node the verifier keeps state for (GET /v1/nodes, auditor)'), 'auditor').action((o: RemoteOptions) =>
    runCommand(o, async () => {
      const reply = (await call(o, 'GET', '/v1/nodes')) as { nodes?: NodeState[] };
      const nodes = Array.isArray(reply.nodes) ? reply.nodes : [];
      const lines = nodes.map((n) => `${n.name.padEnd(32)} ${(n.lastVerdict ?? '-').padEnd(5)} ${n.revoked ? 'revoked' : 'active '} ${pinText(n)}`);
      return { json: { nodes }, text: lines.join('\n') || '(no nodes)' };
    }),
  );

  remoteFlags(
    node
      .command('unpin')
      .argument('<name>', 'node name')
      .description('clear the vTPM AK a node is pinned to (its machine was replaced): its next passing appraisal pins the AK it comes with (POST /v1/nodes/{name}/unpin, admin)')
      .requiredOption('--reason <text>', 'why, for the ak-unpin record')
      .option('--ak <sha256>', 'the pinned AK as you read it (node list): nothing is cleared if the node is pinned to another one'),
    'admin',
  ).action((name: string, o: RemoteOptions & { reason: string; ak?: string }) =>
    runCommand(o, async () => {
      if (o.ak !== undefined && !isSha256Hex(o.ak)) throw usage(`--ak ${o.ak} is not a lowercase hex SHA-256`);
      const body: UnpinRequest = { reason: o.reason, ...(o.ak !== undefined ? { akPublicSha256: o.ak } : {}) };
      const state = (await call(o, 'POST', `/v1/nodes/${encodeURIComponent(name)}/unpin`, body)) as NodeState;
      return { json: state, text: `node ${name} unpinned: its next passing appraisal pins the AK it comes with` };
    }),
  );
}
