#!/usr/bin/env node
/**
 * The `optimize` command line. It only parses arguments, builds options and calls the functions the library
 * exposes; each command lives in `commands/<name>.ts` and registers itself here, in this list.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerBench } from './commands/bench.js';
import { registerConvert } from './commands/convert.js';
import { registerDemo } from './commands/demo.js';
import { registerDistill } from './commands/distill.js';
import { registerEval } from './commands/eval.js';
import { GateInconclusive, registerGate } from './commands/gate.js';
import { registerInspect } from './commands/inspect.js';
import { registerPrune } from './commands/prune.js';
import { GoalNotMet, registerQuantize } from './commands/quantize.js';
import { registerReport } from './commands/report.js';
import { registerRun } from './commands/run.js';
import { EXIT, packageVersion, reportError } from './output.js';

/** Every command, in the order `--help` lists them. */
const COMMANDS: readonly ((program: Command) => void)[] = [registerInspect, registerEval, registerBench, registerQuantize, registerPrune, registerDistill, registerConvert, registerRun, registerReport, registerGate, registerDemo];

/** Builds the program (exported for tests and for embedding). */
export function makeProgram(): Command {
  const program = new Command('optimize')
    .description('Make ONNX models smaller and faster without leaving Node.js.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--debug', 'print stack traces on errors')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      // commander's own errors ("error: unknown option '--x'") get our prefix
      outputError: (str, write) => write(`optimize: ${str}`),
    })
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the CLI on `argv` (as in process.argv) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const args = argv.slice(2);
  const flags = { debug: args.includes('--debug'), json: args.includes('--json') };
  try {
    await makeProgram().parseAsync([...argv]);
    return EXIT.ok;
  } catch (e) {
    // `optimize` with no command prints the help (to stderr) and is a usage error
    if (e instanceof CommanderError && e.code === 'commander.help') return EXIT.usage;
    // the command already wrote and printed its result; only the exit code is left to give
    if (e instanceof GoalNotMet) return EXIT.gateFailed;
    if (e instanceof GateInconclusive) return EXIT.inconclusive;
    return reportError(e, flags);
  }
}

/** True when this file is the program being run (not imported); npm's bin links are followed. */
function isEntryPoint(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv);
