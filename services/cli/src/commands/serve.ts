import type { Command } from 'commander';
import { isJoinguardError } from '@joinguard/core';
import { loadConfig, startVerifier } from '@joinguard/verifier';
import { EXIT_USAGE } from '../output.js';

const SHUTDOWN_TIMEOUT_MS = 25_000;

/** `joinguard serve`: the verifier service, until SIGTERM/SIGINT (graceful: in-flight requests finish). */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the verifier service (config file and JOINGUARD_* environment variables)')
    .option('-c, --config <file>', 'configuration file (YAML or JSON); JOINGUARD_CONFIG also works')
    .option('--port <port>', 'listen port (overrides the config)')
    .option('--host <host>', 'listen address (overrides the config)')
    .action(async (opts: { config?: string; port?: string; host?: string }) => {
      try {
        const env = { ...process.env, ...(opts.port ? { JOINGUARD_LISTEN_PORT: opts.port } : {}), ...(opts.host ? { JOINGUARD_LISTEN_HOST: opts.host } : {}) };
        const config = loadConfig({ ...(opts.config ? { file: opts.config } : {}), env });
        const running = await startVerifier(config);
        process.stderr.write(`joinguard verifier listening on ${running.url} (store: ${config.store.kind}, policy: ${running.verifier.policyRef.id})\n`);
        let closing = false;
        const stop = (signal: string) => {
          if (closing) return;
          closing = true;
          process.stderr.write(`joinguard: ${signal}: shutting down\n`);
          // In-flight requests finish and the store closes; a close that hangs (a store that cannot reach its
          // servers) must not outlive the orchestrator's grace period unreported.
          setTimeout(() => {
            process.stderr.write(`joinguard: shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS / 1000} s; exiting\n`);
            process.exit(1);
          }, SHUTDOWN_TIMEOUT_MS).unref();
          running.close().then(
            () => process.exit(0),
            (e: unknown) => {
              process.stderr.write(`joinguard: shutdown failed: ${(e as Error).message}\n`);
              process.exit(1);
            },
          );
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      } catch (e) {
        if (isJoinguardError(e)) process.stderr.write(`joinguard: ${e.code}: ${e.message}\n`);
        else process.stderr.write(`joinguard: ${(e as Error).message}\n`);
        process.exitCode = EXIT_USAGE;
      }
    });
}
