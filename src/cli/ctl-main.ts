#!/usr/bin/env node
/** Standalone entry of `launcher ctl` (node dist/src/cli/ctl-main.js …). */
import { runCtl } from './ctl-run.js';

process.exitCode = await runCtl(process.argv.slice(2));
