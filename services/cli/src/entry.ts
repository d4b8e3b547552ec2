// Process entry of the bundled CLI (dist/joinguard.js).
import { main } from './main.js';

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`joinguard: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 2;
});
