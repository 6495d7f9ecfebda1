/**
 * `launcher ctl` as a function: parse `argv`, run, return the exit code.
 * Used by the standalone entry (ctl-main.ts) and by tests in-process.
 */
import { CommanderError } from 'commander';
import { EXIT } from './ctl-exit.js';
import { buildCtlCommand, type CtlIo } from './ctl.js';

export async function runCtl(argv: string[], io: Partial<Omit<CtlIo, 'exit' | 'exitOverride'>> = {}): Promise<number> {
  let code: number = EXIT.ok;
  const ctl = buildCtlCommand({
    ...io,
    exitOverride: true,
    exit: (c) => {
      code = c;
    },
  });
  try {
    await ctl.parseAsync(argv, { from: 'user' });
  } catch (err) {
    // --help / usage errors: commander already printed its message.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw err;
  }
  return code;
}
