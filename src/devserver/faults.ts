/**
 * Fault knobs of the dev server, for tests and demos. A fault applies to the
 * JSON-RPC requests of the listed methods (all when omitted), for the next
 * `count` requests (until cleared when omitted).
 */
import { z } from 'zod';

export const FAULT_MODES = [
  /** Drop the connection without answering (like a backend that is down). */
  'down',
  /** HTTP 500 with an HTML page. */
  'http500',
  /** HTTP 200 with a body that is not JSON. */
  'garbage',
  /** Wait `delayMs`, then answer normally (skipped if the client went away). */
  'slow',
  /** Never answer and never process (until the client gives up). */
  'hang',
  /** A JSON-RPC error object. */
  'rpc-error',
  /** A result with a non-null `err`. */
  'err-field',
  /** A result whose flags have the wrong JSON types. */
  'wrong-types',
  /** A valid response padded to `sizeBytes` (default 20 MiB). */
  'huge',
] as const;

export type FaultMode = (typeof FAULT_MODES)[number];

export const faultSchema = z.object({
  mode: z.enum(FAULT_MODES),
  methods: z.array(z.string()).optional(),
  count: z.number().int().positive().optional(),
  delayMs: z.number().int().nonnegative().optional(),
  sizeBytes: z.number().int().positive().optional(),
});

export type Fault = z.infer<typeof faultSchema>;

export class FaultSwitch {
  private fault: Fault | undefined;
  private remaining: number | undefined;
  injected = 0;

  set(fault: Fault | undefined): void {
    this.fault = fault ? faultSchema.parse(fault) : undefined;
    this.remaining = fault?.count;
  }

  get current(): Fault | undefined {
    return this.fault;
  }

  /** The fault to apply to a request of `method`, consuming one use. */
  take(method: string): Fault | undefined {
    const f = this.fault;
    if (!f) return undefined;
    if (f.methods && !f.methods.includes(method)) return undefined;
    if (this.remaining !== undefined) {
      this.remaining--;
      if (this.remaining <= 0) this.fault = undefined;
    }
    this.injected++;
    return f;
  }
}
