/**
 * The stand-in's osquery version. The numeric part is what config `version`
 * fields and extension SDK checks compare against; the `-sim` suffix makes
 * the stand-in recognisable in `osquery_info` and `--version`.
 */
export const OSQUERY_VERSION = simVersion(process.env.OSQUERYD_SIM_VERSION);

/**
 * `OSQUERYD_SIM_VERSION` (tests of the osqueryd update, issue 17: wrapper
 * scripts that stand for different releases) replaces the default version in
 * `--version`, `osquery_info` and the start line; a value that is not a
 * dotted version with an optional `-suffix` is ignored.
 */
export function simVersion(fromEnv: string | undefined): string {
  return fromEnv !== undefined && /^\d+(\.\d+){1,3}(-[0-9A-Za-z.]+)?$/.test(fromEnv) ? fromEnv : '5.12.1-sim';
}
/** Extension SDK version the core reports for itself (osquery_extensions, uuid 0). */
export const CORE_SDK_VERSION = '0.0.0';

function numericParts(version: string): number[] | undefined {
  const core = version.split('-')[0]!;
  const parts = core.split('.');
  if (parts.some((p) => !/^\d+$/.test(p))) return undefined;
  return parts.map(Number);
}

/**
 * osquery's versionAtLeast(required, actual): true when `actual` is empty or
 * "0.0.0" (no version given), or a dotted numeric version ≥ `required`.
 * A non-numeric or shorter version fails.
 */
export function versionAtLeast(required: string, actual: string): boolean {
  if (actual === '' || actual === '0.0.0') return true;
  const want = numericParts(required);
  const have = numericParts(actual);
  if (!want || !have) return false;
  for (let i = 0; i < want.length; i++) {
    const h = have[i];
    if (h === undefined) return false;
    if (h > want[i]!) return true;
    if (h < want[i]!) return false;
  }
  return true;
}
