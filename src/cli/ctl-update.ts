/**
 * `launcher ctl update status|check|pin|unpin` (issue 17): the osqueryd
 * update rpcs from the command line, and the update lines `ctl get` adds.
 */
import type { Command } from 'commander';
import type { ControlClient } from '../control/client.js';
import { FEATURES } from '../control/features.js';
import type { UpdateStatusInfo } from '../control/target.js';
import { wireJson } from './cli-output.js';
import { table } from './ctl-format.js';

interface UpdateContext {
  client: ControlClient;
  json: boolean;
  io: { stdout(text: string): void };
}

type Action = <A extends unknown[]>(
  // biome-ignore lint/suspicious/noConfusingVoidType: bodies either resolve nothing or an exit code (as ctl.ts)
  body: (ctx: UpdateContext, ...args: A) => Promise<number | void>,
) => (...args: unknown[]) => Promise<void>;

const dash = (v: string | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : v);

/** The human form of an update status. */
export function updateStatusText(s: UpdateStatusInfo): string {
  const lines: string[] = [];
  if (!s.enabled) lines.push('osqueryd updates: off (no update section in the config)');
  else lines.push(`osqueryd updates: channel ${dash(s.channel)} from ${dash(s.metadataUrl)}`);
  if (s.lastCheck)
    lines.push(
      `last check: ${s.lastCheck.at} ${s.lastCheck.result}${s.lastCheck.available ? `, channel points at ${s.lastCheck.available}` : ''}${s.lastCheck.error ? `: ${s.lastCheck.error}` : ''}`,
    );
  const r = s.rollout;
  if (r) {
    lines.push(
      `rollout: ${r.version} ${r.state}${r.canary ? `, canary ${r.canary}` : ''}, done ${r.done.join(', ') || '-'}${r.current ? `, now ${r.current}` : ''}`,
    );
    if (r.detail) lines.push(`  ${r.detail}`);
  }
  lines.push(`installed: ${s.installedVersions.join(', ') || '-'}`);
  if (s.badVersions.length > 0)
    lines.push(`marked bad: ${s.badVersions.map((b) => (b.reason ? `${b.version} (${b.reason})` : b.version)).join('; ')}`);
  lines.push(
    table(
      ['ID', 'RUNNING', 'ASSIGNED', 'PREVIOUS', 'PINNED', 'PENDING'],
      s.instances.map((i) => [
        i.registrationId,
        dash(i.runningVersion),
        i.assignedVersion ?? 'osqueryd_path',
        dash(i.previousVersion),
        i.pinnedVersion ? `${i.pinnedVersion} (${i.pinSource})` : '-',
        dash(i.pendingVersion),
      ]),
    ).trimEnd(),
  );
  return `${lines.join('\n')}\n`;
}

/** The lines `ctl get` adds for one registration, or '' when the server has no updates. */
export async function updateLinesFor(client: ControlClient, id: string): Promise<{ text: string; json: unknown } | undefined> {
  if (!(await client.supports(FEATURES.osquerydUpdate))) return undefined;
  const s = await client.updateStatus(id);
  const i = s.instances[0];
  if (!i) return undefined;
  const text = `osqueryd update:  assigned ${i.assignedVersion ?? 'osqueryd_path'}, pending ${dash(i.pendingVersion)}, pinned ${i.pinnedVersion ? `${i.pinnedVersion} (${i.pinSource})` : '-'}${s.lastCheck?.available ? `, channel ${s.channel} at ${s.lastCheck.available}` : ''}\n`;
  return { text, json: { ...i, availableVersion: s.lastCheck?.available ?? null } };
}

export function addUpdateCommands(ctl: Command, action: Action): void {
  const print = (ctx: UpdateContext, s: UpdateStatusInfo): void =>
    ctx.io.stdout(ctx.json ? `${JSON.stringify(wireJson(s), null, 2)}\n` : updateStatusText(s));
  const update = ctl.command('update').description('osqueryd updates: status, check, pin, unpin');
  update
    .command('status [id]')
    .description('update channel, last check, rollout, and the versions of each instance')
    .action(action(async (ctx, id?: string) => print(ctx, await ctx.client.updateStatus(id ?? ''))));
  update
    .command('check')
    .description('check the update repository now (admin); a new version starts a rollout')
    .action(action(async (ctx) => print(ctx, await ctx.client.checkUpdate())));
  update
    .command('pin <id> [version]')
    .description('keep a registration on a version (default: the one it runs); left out of rollouts (admin)')
    .action(action(async (ctx, id: string, version?: string) => print(ctx, await ctx.client.pinVersion(id, version ?? ''))));
  update
    .command('unpin <id>')
    .description('remove the pin of a registration (admin); it joins the next rollout')
    .action(action(async (ctx, id: string) => print(ctx, await ctx.client.unpinVersion(id))));
}
