/**
 * Seeded fuzzing for the issue-9 fuzz suites (test/fuzz).
 *
 * - One PRNG (mulberry32): fast, 32-bit state, good enough to pick mutations.
 * - The base seed comes from FUZZ_SEED (decimal or 0x-hex), else a fixed
 *   default, so a plain `npx vitest run test/fuzz` is deterministic. Each
 *   target derives its own stream from the base seed and its name, so targets
 *   do not shift each other's inputs when one is added or reordered.
 * - Iteration counts are bounded: each target states a modest default; the
 *   env FUZZ_SCALE multiplies every default (bench/fuzz-summary.ts runs with
 *   10), and FUZZ_ITERATIONS, when set, replaces every default outright.
 * - A failing iteration rethrows with the target, seed, iteration and (a
 *   preview of) the input, and the replay command, so a failure replays.
 * - When FUZZ_REPORT names a file, each target appends one JSON line with its
 *   figures (bench/fuzz-summary.ts collects them). FUZZ_VERBOSE=1 makes the
 *   Thrift fuzz print the server's RSS and socket count after every batch.
 *
 * Replay a failure: FUZZ_SEED=<seed from the message> npx vitest run test/fuzz
 */
import { appendFileSync } from 'node:fs';

export const DEFAULT_FUZZ_SEED = 0x9e3779b9;

function parseSeed(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_FUZZ_SEED;
  const n = raw.trim().toLowerCase().startsWith('0x') ? Number.parseInt(raw.trim().slice(2), 16) : Number(raw.trim());
  if (!Number.isFinite(n)) throw new Error(`FUZZ_SEED ${JSON.stringify(raw)} is not a number`);
  return n >>> 0;
}

/** The base seed of this run. */
export const fuzzSeed: number = parseSeed(process.env.FUZZ_SEED);

function positiveEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} ${JSON.stringify(raw)} must be a positive number`);
  return n;
}

/** Iterations for a target whose default is `base`: FUZZ_ITERATIONS, else base × FUZZ_SCALE. */
export function fuzzIterations(base: number): number {
  const fixed = positiveEnv('FUZZ_ITERATIONS');
  if (fixed !== undefined) return Math.floor(fixed);
  return Math.max(1, Math.round(base * (positiveEnv('FUZZ_SCALE') ?? 1)));
}

/** FNV-1a of a string, to mix a target name into the seed. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A deterministic random stream (mulberry32). */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The stream for `target` under the base seed. */
  static forTarget(target: string, seed = fuzzSeed): Rng {
    return new Rng((seed ^ hashName(target)) >>> 0);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick of an empty list');
    return items[this.int(items.length)]!;
  }

  /** Pick by weight: `[[weight, value], …]`. */
  weighted<T>(items: ReadonlyArray<readonly [number, T]>): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let x = this.next() * total;
    for (const [w, v] of items) {
      if ((x -= w) < 0) return v;
    }
    return items[items.length - 1]![1];
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A string of `n` UTF-16 code units drawn from a mix of ASCII, control, non-ASCII and lone surrogates. */
  string(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      s += String.fromCharCode(
        this.weighted<number>([
          [6, this.range(0x20, 0x7e)],
          [1, this.range(0, 0x1f)],
          [1, this.range(0x80, 0x7ff)],
          [1, this.range(0x800, 0xd7ff)],
          [1, this.range(0xd800, 0xdfff)],
        ]),
      );
    }
    return s;
  }
}

/** A short printable form of an input, for failure messages. */
export function previewInput(input: unknown, max = 300): string {
  let text: string;
  if (Buffer.isBuffer(input)) text = `<${input.length} bytes> ${input.subarray(0, Math.ceil(max / 2)).toString('hex')}`;
  else if (typeof input === 'string') text = JSON.stringify(input);
  else {
    try {
      text = JSON.stringify(input) ?? String(input);
    } catch {
      text = String(input);
    }
  }
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

/** Figures of one fuzz target, as recorded in bench/results/fuzz-summary.json. */
export interface FuzzStats {
  target: string;
  seed: number;
  iterations: number;
  /** Inputs that broke the contract (crash, wrong error type, hang, corrupted state). */
  failures: number;
  /** Target-specific outcome counts (e.g. accepted / rejected / closed by server). */
  outcomes: Record<string, number>;
  durationMs: number;
}

export class FuzzFailure extends Error {
  constructor(target: string, seed: number, iteration: number, input: unknown, cause: unknown) {
    const reason = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      `fuzz target ${target} failed at iteration ${iteration} (FUZZ_SEED=${seed}): ${reason}\n` +
        `  input: ${previewInput(input)}\n` +
        `  replay: FUZZ_SEED=${seed} npx vitest run test/fuzz`,
      { cause },
    );
    this.name = 'FuzzFailure';
  }
}

/** Counts outcomes and times a target; `finish()` records it. */
export class FuzzRun {
  readonly target: string;
  readonly seed: number;
  readonly rng: Rng;
  iterations = 0;
  failures = 0;
  readonly outcomes: Record<string, number> = {};
  private readonly started = performance.now();

  constructor(target: string, seed = fuzzSeed) {
    this.target = target;
    this.seed = seed;
    this.rng = Rng.forTarget(target, seed);
  }

  count(outcome: string, n = 1): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + n;
  }

  /** Run one synchronous check; a throw is rethrown as a FuzzFailure naming the seed and input. */
  check<T>(input: unknown, fn: () => T): T {
    const i = this.iterations++;
    try {
      return fn();
    } catch (err) {
      this.failures++;
      this.finish();
      throw new FuzzFailure(this.target, this.seed, i, input, err);
    }
  }

  /** Async variant of check(). */
  async checkAsync<T>(input: unknown, fn: () => Promise<T>): Promise<T> {
    const i = this.iterations++;
    try {
      return await fn();
    } catch (err) {
      this.failures++;
      this.finish();
      throw new FuzzFailure(this.target, this.seed, i, input, err);
    }
  }

  /** Wrap a non-iteration failure (e.g. a batch health check) with the seed. */
  fail(what: string, cause: unknown): never {
    this.failures++;
    this.finish();
    throw new FuzzFailure(this.target, this.seed, this.iterations, what, cause);
  }

  private recorded = false;

  finish(): FuzzStats {
    const stats: FuzzStats = {
      target: this.target,
      seed: this.seed,
      iterations: this.iterations,
      failures: this.failures,
      outcomes: { ...this.outcomes },
      durationMs: Math.round(performance.now() - this.started),
    };
    if (!this.recorded) {
      this.recorded = true;
      const report = process.env.FUZZ_REPORT;
      if (report) appendFileSync(report, `${JSON.stringify(stats)}\n`);
    }
    return stats;
  }
}
