/**
 * Whether terminal output may carry colour: never when NO_COLOR is set to a
 * non-empty value (https://no-color.org), nor when the stream is not a
 * terminal; FORCE_COLOR (non-empty, not 0) forces it on.
 */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}
