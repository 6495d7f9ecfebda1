/**
 * Stand-in only (osqueryd has no such file): every SQL statement the stand-in
 * executes is appended, before it runs, as one JSON line
 * `{"t":<unix ms>,"source":"schedule|distributed|query|...","name":...,"sql":...}`
 * to `<database_path>.queries.log`. Tests use it to prove which osqueryd ran
 * which query. Written synchronously so the line exists even when the query
 * then crashes the process (crash_on_query).
 */
import { appendFileSync } from 'node:fs';

export type QuerySource = 'schedule' | 'distributed' | 'query' | 'discovery' | 'decorator' | 'call';

export class QueryLog {
  readonly path: string;

  constructor(databasePath: string) {
    this.path = `${databasePath.replace(/\/+$/, '')}.queries.log`;
  }

  append(source: QuerySource, name: string, sql: string): void {
    try {
      appendFileSync(this.path, `${JSON.stringify({ t: Date.now(), source, name, sql })}\n`);
    } catch {
      // The log is a test aid; an unwritable path must not fail the query.
    }
  }
}
