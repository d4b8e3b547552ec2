import { Command } from 'commander';
import { EXIT_USAGE, isCommanderExit, quietOnClosedStdout } from './output.js';
import { registerSnp } from './commands/snp.js';
import { registerTdx } from './commands/tdx.js';
import { registerTpm } from './commands/tpm.js';
import { registerEventlog } from './commands/eventlog.js';
import { registerServe } from './commands/serve.js';
import { registerPolicy } from './commands/policy.js';
import { registerAudit } from './commands/audit.js';
import { registerVerify } from './commands/verify.js';
import { registerDemo } from './commands/demo.js';
import { registerNode } from './commands/node.js';

export function buildProgram(): Command {
  const program = new Command('joinguard')
    .description('Attestation gatekeeper for confidential Kubernetes/OpenShift clusters')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  // Subcommands inherit exit override so that argument errors map to exit 2, not commander's default.
  registerSnp(program);
  registerTdx(program);
  registerTpm(program);
  registerEventlog(program);
  registerPolicy(program);
  registerServe(program);
  registerAudit(program);
  registerNode(program);
  registerVerify(program);
  registerDemo(program);
  for (const c of program.commands) applyExitOverride(c);
  return program;
}

function applyExitOverride(c: Command): void {
  c.exitOverride();
  for (const sub of c.commands) applyExitOverride(sub);
}

export async function main(argv: string[]): Promise<void> {
  quietOnClosedStdout();
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (isCommanderExit(e)) {
      // --help and --version exit 0; every argument error is a usage error (2).
      process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    throw e;
  }
}
