/**
 * A bounded ring of one osqueryd run's stdout/stderr lines.
 *
 * The supervisor appends every line it reads from the child (`append` is
 * synchronous and O(1): it never waits for readers). When the ring is full
 * the oldest line is dropped. Every line gets a sequence number, from 0 for
 * each run, so a reader holds nothing but a cursor: a reader that falls
 * behind simply finds its cursor below the ring's first line and is told how
 * many lines it missed. Many readers can follow the same ring concurrently;
 * none of them can slow the writer or each other.
 */

export type OutputStreamName = 'stdout' | 'stderr';

export interface OutputLine {
  /** Position in the run's output, from 0. */
  readonly seq: number;
  readonly stream: OutputStreamName;
  readonly text: string;
  /** Unix epoch milliseconds when the line was appended. */
  readonly time: number;
}

/** A line handed to a subscriber, with the lines lost just before it. */
export interface DeliveredLine extends OutputLine {
  readonly missed: number;
}

export interface OutputReadResult {
  lines: OutputLine[];
  /** Lines between `fromSeq` and the first returned line that are gone. */
  missed: number;
  /** The cursor to pass to the next `read`. */
  nextSeq: number;
}

export interface OutputSubscribeOptions {
  /** 'beginning': seq 0 of the run (missed lines reported); 'now' (default): only new lines; or a seq. */
  from?: 'beginning' | 'now' | number;
  /** Wait for new lines until the ring closes (default true); false ends once caught up. */
  follow?: boolean;
  /** Ends the subscription (the iterator finishes normally). */
  signal?: AbortSignal;
}

export interface OutputRingOptions {
  /** Lines kept (default 10,000). */
  capacity?: number;
  /** Longer lines are cut to this many characters plus a marker (default 16,384). */
  maxLineLength?: number;
  /** The run these lines belong to, for readers. */
  runId?: string;
  clock?: () => number;
}

export const DEFAULT_OUTPUT_RING_CAPACITY = 10_000;
export const DEFAULT_MAX_LINE_LENGTH = 16_384;

export class OutputRing {
  readonly capacity: number;
  readonly runId: string;
  private readonly maxLineLength: number;
  private readonly clock: () => number;
  /** Grows to `capacity` as lines come, then wraps (not preallocated: 10,000 empty slots are 80 KB per instance, issue 14). */
  private readonly slots: OutputLine[] = [];
  private first = 0;
  private next = 0;
  private isClosed = false;
  private changed: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(options: OutputRingOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_OUTPUT_RING_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`OutputRing capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.runId = options.runId ?? '';
    this.maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.clock = options.clock ?? Date.now;
  }

  /** Seq of the oldest line still held (equals `nextSeq` when empty). */
  get firstSeq(): number {
    return this.first;
  }

  /** Seq the next appended line will get (= lines appended so far). */
  get nextSeq(): number {
    return this.next;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Add a line; drops the oldest when full. Ignored (returns undefined) once closed. */
  append(stream: OutputStreamName, text: string): OutputLine | undefined {
    if (this.isClosed) return undefined;
    const body =
      text.length > this.maxLineLength
        ? `${text.slice(0, this.maxLineLength)}… [${text.length - this.maxLineLength} characters cut]`
        : text;
    const line: OutputLine = { seq: this.next, stream, text: body, time: this.clock() };
    const slot = this.next % this.capacity;
    if (slot === this.slots.length) this.slots.push(line);
    else this.slots[slot] = line;
    this.next += 1;
    if (this.next - this.first > this.capacity) this.first = this.next - this.capacity;
    this.notify();
    return line;
  }

  /** Lines from `fromSeq` (default: the oldest held) that are available now. */
  read(fromSeq = this.first, max = Number.POSITIVE_INFINITY): OutputReadResult {
    let cursor = Math.max(0, Math.floor(fromSeq));
    let missed = 0;
    if (cursor < this.first) {
      missed = this.first - cursor;
      cursor = this.first;
    }
    const lines: OutputLine[] = [];
    while (cursor < this.next && lines.length < max) {
      lines.push(this.at(cursor));
      cursor += 1;
    }
    return { lines, missed, nextSeq: cursor };
  }

  /**
   * Iterate over lines, each exactly once and in order. In follow mode the
   * iterator waits for new lines and ends when the ring is closed (the run
   * ended) or `signal` aborts.
   */
  subscribe(options: OutputSubscribeOptions = {}): AsyncIterableIterator<DeliveredLine> {
    const from = options.from ?? 'now';
    const start = from === 'beginning' ? 0 : from === 'now' ? this.next : Math.max(0, Math.floor(from));
    return this.iterate(start, options.follow ?? true, options.signal);
  }

  /** The run ended: followers finish once they have read what is left. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.notify();
  }

  private at(seq: number): OutputLine {
    return this.slots[seq % this.capacity]!;
  }

  private notify(): void {
    const wake = this.wake;
    this.changed = undefined;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves on the next append or close (shared by all waiting readers), or on abort. */
  private waitForChange(signal: AbortSignal | undefined): Promise<void> {
    if (!this.changed) {
      this.changed = new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    if (!signal) return this.changed;
    return new Promise<void>((resolve) => {
      const onAbort = (): void => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      void (this.changed as Promise<void>).then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private async *iterate(start: number, follow: boolean, signal: AbortSignal | undefined): AsyncGenerator<DeliveredLine> {
    let cursor = start;
    for (;;) {
      if (signal?.aborted) return;
      let missed = 0;
      if (cursor < this.first) {
        missed = this.first - cursor;
        cursor = this.first;
      }
      if (cursor < this.next) {
        const line = this.at(cursor);
        cursor += 1;
        yield { ...line, missed };
        continue;
      }
      if (!follow || this.isClosed) return;
      await this.waitForChange(signal);
    }
  }
}
