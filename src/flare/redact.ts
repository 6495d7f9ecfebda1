/**
 * What a flare must never carry (issue 18, ADR 0020): enroll secrets, node
 * keys, private keys. Two layers: the collectors never read or copy them
 * (the config is copied with secrets replaced, store rows are selected
 * without their secret columns, key files are never opened for their
 * content), and every file is scrubbed before it is archived: each known
 * secret value (from the config, the secret files, the store and the control
 * API's key files) and any PEM private-key block is replaced.
 */
import type { LauncherConfig } from '../config/schema.js';

export const REDACTED = '[redacted]';
/** Values shorter than this are not searched for (they would erase ordinary text); the manifest counts them. */
export const MIN_SCRUB_LENGTH = 4;

/**
 * A PEM private key: the whole block when its END line follows within 8 KiB, else the BEGIN line and the base64
 * lines after it (also JSON-escaped, `\\n`). Never "to the end of the file": a tenant's osqueryd can print a bare
 * BEGIN line into its output, and that must not erase the rest of a log (review).
 */
const PEM_PRIVATE_KEY =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]{0,8192}?-----END [A-Z0-9 ]*PRIVATE KEY-----|(?:[ \t]*(?:\r?\n|\\n)[A-Za-z0-9+/=]+)*)/g;

/** The config as a plain object with every inline enroll secret replaced (paths stay: a path is not a secret). */
export function redactConfig(cfg: LauncherConfig): unknown {
  const copy = structuredClone(cfg) as LauncherConfig;
  for (const r of copy.registrations) if (r.enroll_secret !== undefined) r.enroll_secret = REDACTED;
  // URLs may carry credentials (user:password@, a token in the query): keep the scheme, host, port and path only.
  const scrubUrl = (u: string | undefined): string | undefined => {
    if (u === undefined) return u;
    try {
      const url = new URL(u);
      const hadSecret = url.username !== '' || url.password !== '' || url.search !== '';
      url.username = '';
      url.password = '';
      url.search = '';
      return hadSecret ? `${url.toString()} ${REDACTED}` : u;
    } catch {
      return REDACTED;
    }
  };
  const c = copy as unknown as Record<string, Record<string, string | undefined> | undefined>;
  for (const [section, key] of [
    ['device_server', 'url'],
    ['metrics', 'otlp_url'],
    ['update', 'metadata_url'],
    ['update', 'targets_url'],
  ] as const) {
    const holder = c[section];
    if (holder && typeof holder[key] === 'string') holder[key] = scrubUrl(holder[key]);
  }
  return copy;
}

export class Scrubber {
  private readonly values = new Set<string>();
  /** Secret values too short to search for. */
  tooShort = 0;
  /** Replacements made over every scrubbed text. */
  replaced = 0;

  /** Remember a secret (and its trimmed form, and each long line of a multi-line value such as a PEM body). */
  add(value: string | null | undefined, minLength = MIN_SCRUB_LENGTH): void {
    if (!value) return;
    const forms = new Set([value, value.trim(), ...value.split(/\r?\n/).map((l) => l.trim())]);
    for (const f of forms) {
      if (f.length === 0 || f.startsWith('-----')) continue;
      if (f.length < minLength) {
        if (f === value.trim()) this.tooShort++;
        continue;
      }
      this.values.add(f);
    }
  }

  get size(): number {
    return this.values.size;
  }

  scrub(text: string): string {
    let out = text.replace(PEM_PRIVATE_KEY, () => {
      this.replaced++;
      return `${REDACTED} private key`;
    });
    // Longest first, so a secret that contains another is replaced whole.
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) {
      if (!out.includes(v)) continue;
      const parts = out.split(v);
      this.replaced += parts.length - 1;
      out = parts.join(REDACTED);
    }
    return out;
  }
}
