// The README's "State tables" section names every table the extension serves (issue 21 review: the list was
// written by hand and went stale silently).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { launcherInfoTable } from '../../src/state/launcher-info.js';
import { STATE_TABLES } from '../../src/state/tables.js';

const repo = resolve(import.meta.dirname, '../..');

describe('README state tables', () => {
  it('lists every state table', () => {
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    const section = /^## State tables\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    const names = [launcherInfoTable, ...STATE_TABLES].map((t) => t.name);
    expect(names.filter((n) => !section.includes(`\`${n}\``))).toEqual([]);
  });
});
