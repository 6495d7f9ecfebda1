/**
 * The log publication loop (docs/protocol/device.md#log-publishing): right away, then every
 * interval, status logs first and then result logs; each batch is the oldest
 * logs within the current byte limit, sent with PublishLogs (LogType 4 / 0),
 * and deleted only once the server acknowledged it. A failure keeps the
 * batch for the next tick. Ticks never overlap; stop() ends the loop and
 * aborts an in-flight publish (its logs stay buffered).
 *
 * A batch the server accepted but the buffer cannot delete (disk full,
 * database read-only) is held back in memory: each tick retries the delete
 * first and publishes nothing of that type until it succeeds, so the server
 * is not sent the same logs every interval (issue 9). If the run ends or the
 * supervisor dies meanwhile, the next run sends them once more (at-least-once).
 *
 * Under abuse (issue 19): while publishes fail, the wait between ticks backs
 * off with jitter (publish-backoff.ts; reset by a success); a batch is read
 * and sent only holding a slot of the process-wide PublishGate, so few
 * batches exist in memory at once however many registrations publish; the
 * batch limit adapts to slow sends and size refusals (batch-limit.ts); and
 * while publishes fail, each attempt sends a small probe batch (PROBE_BYTES)
 * instead of the full limit: a dead server gets nothing from a 3 MiB batch
 * that a 64 KiB one would not tell, and each full batch read, encoded and
 * held through the device client's retries was what grew the heap during
 * outages. The first accepted probe ends the backoff; the next tick sends
 * full batches again.
 */
import { LogType } from '../../src/device/index.js';
import { errorMessage, isLauncherError } from '../../src/errors.js';
import { isBusy, retryBusy } from '../../src/store/busy.js';
import type { LogKind } from '../../src/store/log-buffer.js';
import { BatchLimit } from './batch-limit.js';
import { PublishBackoff } from './publish-backoff.js';
import { sharedPublishGate, type PublishGate } from './publish-gate.js';
import type { ExtensionContext } from './context.js';
import type { Session } from './session.js';

/** How long an acknowledged batch's delete may wait on a lock, retried asynchronously, before it is held back. */
const ACK_LOCK_BUDGET_MS = 1_000;

/** Batch limit of an attempt while publishes fail (bytes; a batch always takes at least one log). */
export const PROBE_BYTES = 64 * 1024;

export type PublishOutcome = 'empty' | 'partial' | 'full' | 'failed';

export class LogPublisher {
  readonly limit: BatchLimit;
  readonly backoff: PublishBackoff;
  /** PublishLogs calls made (each batch sent, whatever the answer). */
  attempts = 0;
  private readonly gate: PublishGate;
  private readonly ctx: ExtensionContext;
  private readonly session: Session;
  private loop: Promise<void> | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  /** Ids the server accepted that the buffer could not delete yet, per type. */
  private readonly undeleted: Record<LogKind, number[]> = { status: [], result: [] };

  constructor(ctx: ExtensionContext, session: Session) {
    this.ctx = ctx;
    this.session = session;
    this.limit = new BatchLimit({
      maxBytes: ctx.opts.maxBytesPerBatch,
      enabled: ctx.opts.adaptiveBatchLimit,
      ...(ctx.opts.slowPublishMs !== undefined ? { slowMs: ctx.opts.slowPublishMs } : {}),
    });
    this.backoff = new PublishBackoff({
      intervalMs: ctx.opts.publishIntervalMs,
      ...(ctx.opts.publishBackoffMaxMs !== undefined ? { maxMs: ctx.opts.publishBackoffMaxMs } : {}),
    });
    this.gate = ctx.opts.publishGate ?? sharedPublishGate;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** End the loop (the caller has already marked the state stopped or disabled). */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
    await this.chain.catch(() => undefined);
  }

  /** Run one tick now (serialised with the loop's ticks). */
  publishNow(): Promise<void> {
    const tick = this.chain.then(() => this.tick());
    this.chain = tick.catch(() => undefined);
    return tick;
  }

  private async run(): Promise<void> {
    while (this.ctx.state.active) {
      await this.publishNow().catch((err: unknown) => this.ctx.log.error({ err: errorMessage(err) }, 'log publication tick failed'));
      if (!this.ctx.state.active) break;
      this.reportBackoff();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, this.backoff.nextDelayMs());
      });
      this.wake = undefined;
    }
  }

  private loggedCeiling: number | undefined;

  /** One record each time the wait ceiling changes while failing, and one when publishing resumed. */
  private reportBackoff(): void {
    const b = this.backoff;
    if (b.failures > 0 && b.ceilingMs !== this.loggedCeiling) {
      this.loggedCeiling = b.ceilingMs;
      this.ctx.log.info({ failures: b.failures, max_wait_ms: b.ceilingMs }, 'log publication backs off while the device server fails');
    } else if (b.failures === 0 && this.loggedCeiling !== undefined) {
      this.loggedCeiling = undefined;
      this.ctx.log.info({}, 'log publication resumed at the normal interval');
    }
  }

  private async tick(): Promise<void> {
    let failed = false;
    let sent = false;
    try {
      for (const kind of ['status', 'result'] as const) {
        for (let i = 0; i < this.ctx.opts.maxBatchesPerTick; i++) {
          if (!this.ctx.state.active) return;
          const outcome = await this.publishBatch(kind);
          if (outcome === 'failed') failed = true;
          else if (outcome !== 'empty') sent = true;
          if (outcome !== 'full') break;
        }
        // The server fails: the other type would fail the same way; try again after the backoff.
        if (failed) break;
      }
    } finally {
      if (failed) this.backoff.onFailure();
      else if (sent) this.backoff.onSuccess();
    }
  }

  /** Send the oldest batch of one buffer (holding a slot of the gate); delete it when acknowledged. */
  publishBatch(kind: LogKind): Promise<PublishOutcome> {
    // Stopped while waiting for a slot: nothing to send.
    return this.gate.run(() => (this.ctx.state.active ? this.publishBatchNow(kind) : Promise.resolve<PublishOutcome>('empty')));
  }

  /**
   * Delete acknowledged logs. The delete may meet a lock (the checkpoint worker's short TRUNCATE, ADR 0009, or another
   * process): it is retried off the event loop for a moment (src/store/busy.ts) before the batch is held back.
   */
  private ack(kind: LogKind, ids: number[]): Promise<void> {
    const { opts, buffer } = this.ctx;
    return retryBusy(`deleting published ${kind} logs of ${opts.registrationId}`, () => void buffer.ack(opts.registrationId, kind, ids), {
      budgetMs: ACK_LOCK_BUDGET_MS,
    });
  }

  private async publishBatchNow(kind: LogKind): Promise<PublishOutcome> {
    const { opts, state, buffer, log } = this.ctx;
    const reg = opts.registrationId;
    if (this.undeleted[kind].length > 0) {
      try {
        await this.ack(kind, this.undeleted[kind]);
      } catch (err) {
        state.recordError(`delete_${kind}`, err);
        return 'failed';
      }
      log.warn({ kind, logs: this.undeleted[kind].length }, 'published logs deleted from the buffer; publishing resumes');
      this.undeleted[kind] = [];
    }
    const probing = this.backoff.failures > 0;
    const batch = buffer.readBatch(reg, kind, {
      limitBytes: probing ? Math.min(PROBE_BYTES, this.limit.current) : this.limit.current,
      maxLogBytes: opts.maxBytesPerBatch,
    });
    if (batch.droppedOversize > 0)
      log.warn({ kind, dropped: batch.droppedOversize, max_bytes: opts.maxBytesPerBatch }, 'dropped logs larger than a batch');
    if (batch.logs.length === 0) return 'empty';
    const logType = kind === 'status' ? LogType.STATUS : LogType.STRING;
    const lines = batch.logs.map((l) => l.data);
    const started = Date.now();
    this.attempts++;
    try {
      const res = await this.session.withNodeKey(`publish_${kind}`, (nodeKey, call) =>
        opts.client.publishLogs(nodeKey, logType, lines, call),
      );
      if (res.errorCode || (res.message && res.message !== 'ok'))
        log.debug({ kind, message: res.message, error_code: res.errorCode }, 'PublishLogs response');
    } catch (err) {
      if (!isLauncherError(err, 'E_SHUTDOWN')) opts.onPublish?.(kind, false);
      this.limit.onFailure(Date.now() - started, err);
      state.recordError(`publish_${kind}`, err);
      log.warn({ kind, logs: lines.length, bytes: batch.bytes, err: errorMessage(err) }, 'log publication failed; logs stay buffered');
      return 'failed';
    }
    const elapsed = Date.now() - started;
    opts.onPublish?.(kind, true);
    state.publishedLogs[kind] += lines.length;
    state.lastPublishAt = Date.now();
    const ids = batch.logs.map((l) => l.id);
    try {
      await this.ack(kind, ids);
    } catch (err) {
      this.undeleted[kind] = ids;
      state.recordError(`delete_${kind}`, err);
      // A lock that outlasted the retries (another process holding the database) is the host's doing: a warning;
      // anything else is an error.
      const locked = isBusy(err) || isBusy((err as { cause?: unknown }).cause);
      const fields = { kind, logs: ids.length, err: errorMessage(err) };
      const msg = 'published logs cannot be deleted from the buffer; holding them back (not resent) until they can';
      if (locked) log.warn(fields, msg);
      else log.error(fields, msg);
      return 'failed';
    }
    // A probe that came out full says nothing about the limit; a slow one still does.
    this.limit.onSuccess(batch.full && !probing, elapsed);
    log.debug({ kind, logs: lines.length, bytes: batch.bytes }, 'logs published');
    return batch.full ? 'full' : 'partial';
  }
}
