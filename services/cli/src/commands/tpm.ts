import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Command } from 'commander';
import { decodeBinaryOrHex, fromHex, inputError, readInputFile, wrapError } from '@joinguard/core';
import { decodePublic, hashIdByName, verifyQuote, type AkPublicInput, type PcrValues, type TpmtSignature } from '@joinguard/tpm';
import { runCommand, usage } from '../output.js';

interface VerifyQuoteOpts {
  json?: boolean;
  quote: string;
  signature: string;
  ak: string;
  nonce?: string;
  pcrs?: string;
  rawSignature?: string;
  allowBareAk?: boolean;
}

/** `--pcrs` is inline JSON or a JSON file: {"sha256": {"0": "hex", …}, …}. */
export function readPcrs(arg: string): PcrValues {
  const text = arg.trimStart().startsWith('{') ? arg : Buffer.from(readInputFile(arg, 'PCR values')).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw usage(`--pcrs is not JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw usage('--pcrs must be an object {"sha256": {"0": "hex", …}}');
  const out: PcrValues = {};
  for (const [bank, values] of Object.entries(v as Record<string, unknown>)) {
    if (!values || typeof values !== 'object') throw usage(`--pcrs bank ${bank} must map PCR indices to hex strings`);
    const m: { [pcr: number]: string } = {};
    for (const [k, hex] of Object.entries(values as Record<string, unknown>)) {
      if (!/^\d{1,2}$/.test(k) || typeof hex !== 'string') throw usage(`--pcrs ${bank}.${k} must be a PCR index mapped to a hex string`);
      m[Number(k)] = hex;
    }
    out[bank.toLowerCase()] = m;
  }
  return out;
}

/** The AK file: TPMT_PUBLIC/TPM2B_PUBLIC bytes, SPKI as PEM or DER, or a JWK (e.g. Azure's HCLAkPub). */
function readAk(path: string): AkPublicInput {
  const raw = readInputFile(path, 'AK public key');
  const text = Buffer.from(raw).toString('latin1').trim();
  if (text.startsWith('-----BEGIN')) return text;
  if (text.startsWith('{')) {
    try {
      return createPublicKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' }) as KeyObject;
    } catch (e) {
      throw wrapError('TPM_BAD_AK', `AK ${path} is not a JWK public key`, e, { path });
    }
  }
  const bytes = decodeBinaryOrHex(raw);
  if (bytes[0] !== 0x30) decodePublic(bytes); // fail early with the decoder's message
  return bytes;
}

function readSignature(path: string, raw: string | undefined): Uint8Array | TpmtSignature {
  const bytes = decodeBinaryOrHex(readInputFile(path, 'signature'));
  if (raw === undefined) return bytes;
  const m = /^(rsassa|rsapss)-(sha1|sha256|sha384|sha512)$/.exec(raw);
  if (!m) throw usage(`--raw-signature ${JSON.stringify(raw)} must be rsassa-<hash> or rsapss-<hash> (e.g. rsassa-sha256)`);
  return { sigAlg: m[1] as 'rsassa' | 'rsapss', hash: hashIdByName(m[2]!)!, signature: bytes };
}

/** `joinguard tpm verify-quote`: a TPM2_Quote (TPMS_ATTEST + TPMT_SIGNATURE) against its AK. */
export function registerTpm(program: Command): void {
  const tpm = program.command('tpm').description('TPM 2.0 quotes: verify TPMS_ATTEST signatures, nonce and PCR digest');

  tpm
    .command('verify-quote')
    .description('verify a TPM quote: AK signature, extraData = nonce, pcrDigest = digest of the given PCRs')
    .requiredOption('--quote <file>', 'TPMS_ATTEST (binary or hex), e.g. tpm2_quote -m')
    .requiredOption('--signature <file>', 'TPMT_SIGNATURE (binary or hex), e.g. tpm2_quote -s')
    .requiredOption('--ak <file>', 'AK as TPMT_PUBLIC/TPM2B_PUBLIC (tpm2_createak -u), SPKI PEM/DER or JWK')
    .option('--nonce <hex>', 'expected extraData')
    .option('--pcrs <json>', 'PCR values (inline JSON or a file): {"sha256": {"0": "hex", …}}')
    .option('--raw-signature <scheme>', 'the signature file is a bare signature of this scheme, e.g. rsassa-sha256 (Azure tpm-quote JSON)')
    .option('--allow-bare-ak', 'accept an SPKI/PEM/JWK AK, whose restricted-signing attributes cannot be checked')
    .option('--json', 'print JSON')
    .action(async (opts: VerifyQuoteOpts) => {
      await runCommand(opts, () => {
        let expectedExtraData: Uint8Array | undefined;
        if (opts.nonce !== undefined) {
          expectedExtraData = fromHex(opts.nonce);
          if (!expectedExtraData) throw usage(`--nonce ${JSON.stringify(opts.nonce)} is not hex`);
          if (expectedExtraData.length > 64) throw inputError('CLI_USAGE', `--nonce is ${expectedExtraData.length} bytes; extraData holds at most 64`);
        }
        const claims = verifyQuote({
          quote: decodeBinaryOrHex(readInputFile(opts.quote, 'quote')),
          signature: readSignature(opts.signature, opts.rawSignature),
          akPublic: readAk(opts.ak),
          ...(expectedExtraData ? { expectedExtraData } : {}),
          ...(opts.pcrs !== undefined ? { pcrs: readPcrs(opts.pcrs) } : {}),
          allowAkWithoutAttributes: opts.allowBareAk === true,
        });
        const lines = [
          'quote verified',
          `signature: ${claims.signature.sigAlg}/${claims.signature.hash}`,
          `ak: ${claims.ak.keyType}${claims.ak.name ? ` name ${claims.ak.name}` : ''}${claims.ak.attributesChecked ? '' : ' (attributes not checked)'}`,
          `extraData: ${claims.extraData}${claims.extraDataVerified ? ' (matches --nonce)' : ' (not checked: no --nonce)'}`,
          `pcrDigest: ${claims.pcrDigest}${claims.pcrsVerified ? ' (matches --pcrs)' : ' (not checked: no --pcrs)'}`,
          `pcrSelect: ${claims.pcrSelect.map((s) => `${s.bank}:${s.pcrs.join(',')}`).join(' ')}`,
          `clockInfo: clock ${claims.clockInfo.clock} resetCount ${claims.clockInfo.resetCount} restartCount ${claims.clockInfo.restartCount} safe ${claims.clockInfo.safe}`,
          `firmwareVersion: ${claims.firmwareVersion}`,
        ];
        return { json: { verified: true, ...claims }, text: lines.join('\n') };
      });
    });
}
