/**
 * Launcher's rewrite of a server config (docs/protocol/device.md#config-rewrite): an empty
 * string is `{}`; `options.verbose` and `options.distributed_interval = 5`
 * are forced; text that is not a JSON object, or whose `options` is not an
 * object, passes through unchanged.
 */
export function rewriteConfig(text: string, verbose: boolean): string {
  const source = text.trim() === '' ? '{}' : text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch {
    return text;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return text;
  const config = parsed as Record<string, unknown>;
  const options = config.options ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return text;
  config.options = { ...(options as Record<string, unknown>), verbose, distributed_interval: 5 };
  return JSON.stringify(config);
}

/** `verbose` until the instance has been up `thresholdSeconds` (true when unknown). */
export function verboseFor(uptimeSeconds: number | undefined, thresholdSeconds: number): boolean {
  return uptimeSeconds === undefined || !Number.isFinite(uptimeSeconds) || uptimeSeconds < thresholdSeconds;
}
