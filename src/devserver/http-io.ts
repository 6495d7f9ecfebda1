/** Small HTTP helpers of the dev server: bounded body reading and JSON replies. */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class BodyTooLargeError extends Error {}

/** True when the request body uses chunked transfer encoding. */
export function isChunked(req: IncomingMessage): boolean {
  return String(req.headers['transfer-encoding'] ?? '')
    .toLowerCase()
    .split(',')
    .some((t) => t.trim() === 'chunked');
}

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes)
    throw new BodyTooLargeError(`request body of ${declared} bytes is over ${maxBytes}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyTooLargeError(`request body is over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export function send(res: ServerResponse, status: number, body: string | Buffer, contentType = 'application/json'): void {
  if (res.headersSent || res.destroyed) return;
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(buf.length) });
  res.end(buf);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, `${JSON.stringify(value)}\n`);
}
