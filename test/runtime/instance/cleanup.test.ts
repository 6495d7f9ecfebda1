import { describe, expect, it } from 'vitest';
import { CleanupStack } from '../../../src/runtime/instance/cleanup.js';
import { silentLogger } from '../../../src/log/logger.js';

describe('CleanupStack', () => {
  it('runs steps newest first, once, past failures and hung steps', async () => {
    const ran: string[] = [];
    const s = new CleanupStack(silentLogger(), 50);
    s.push('first', () => void ran.push('first'));
    s.push('hangs', () => new Promise(() => ran.push('hangs')));
    s.push('throws', () => {
      ran.push('throws');
      throw new Error('nope');
    });
    s.push('last', async () => void ran.push('last'));
    await Promise.all([s.run(), s.run()]);
    await s.run();
    expect(ran).toEqual(['last', 'throws', 'hangs', 'first']);
  });
});
