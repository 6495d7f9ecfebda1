/**
 * zod building blocks that decode JSON the way Go's encoding/json fills a
 * struct (docs/protocol/device.md#decoding): object keys match fields case-insensitively (an
 * exact match wins), unknown keys are ignored, a missing key or a `null`
 * leaves the zero value, and a value of the wrong type fails the decode.
 */
import { z } from 'zod';

/** Go's case folding for ASCII plus the two non-ASCII runes that fold into it. */
export function foldKey(key: string): string {
  return key
    .toLowerCase()
    .replace(/\u017f/g, 's')
    .replace(/\u212a/g, 'k');
}

/**
 * Keep only the wanted keys of an object, found exactly or else by case
 * folding (the last folded match wins, as Go overwrites in document order).
 * Anything that is not a plain object is returned as is for zod to reject.
 */
export function pickFields(value: unknown, keys: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const src = value as Record<string, unknown>;
  const folded = new Map<string, string>();
  for (const k of Object.keys(src)) folded.set(foldKey(k), k);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (Object.hasOwn(src, key)) {
      out[key] = src[key];
    } else {
      const alt = folded.get(foldKey(key));
      if (alt !== undefined) out[key] = src[alt];
    }
  }
  return out;
}

/** A Go struct: fields matched as Go does; missing or `null` is the zero struct. */
export function goStruct<S extends z.ZodRawShape>(shape: S) {
  const keys = Object.keys(shape);
  return z.preprocess((v) => pickFields(v === null || v === undefined ? {} : v, keys), z.object(shape));
}

export const goString = () =>
  z
    .string()
    .nullish()
    .transform((v) => v ?? '');

export const goBool = () =>
  z
    .boolean()
    .nullish()
    .transform((v) => v ?? false);

export const goInt = (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number()
    .int()
    .min(min)
    .max(max)
    .nullish()
    .transform((v) => v ?? 0);

export const goInt32 = () => goInt(-2_147_483_648, 2_147_483_647);

/** map[string]string: keys are exact (maps do not fold); null is an empty map. */
export const goStringMap = () =>
  z
    .record(z.string(), z.string())
    .nullish()
    .transform((v) => v ?? undefined);

/** Describe zod issues in one line: `path: message; …`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}
