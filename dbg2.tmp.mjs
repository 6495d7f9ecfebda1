import { performance } from 'node:perf_hooks';
import { MemoryDatabase } from './dist/src/sim/sql/wasm-sqlite.js';
const db = new MemoryDatabase();
db.exec('create table t(a,b)');
const time = (label, n, fn) => { const t = performance.now(); for (let i = 0; i < n; i++) fn(); console.log(label, ((performance.now() - t) / n * 1000).toFixed(1), 'us/op'); };
for (let r = 0; r < 2; r++) {
time('exec pragma', 1000, () => db.exec('PRAGMA query_only = OFF'));
time('prepare+finalize', 1000, () => db.prepare('select * from t').finalize());
const ins = db.prepare('insert into t values (?, ?)');
time('insert run', 1000, () => ins.run(['x', 1n]));
time('prepare+step+finalize', 1000, () => { const s = db.prepare('select a, b from t limit 1'); s.step(); s.value(0); s.finalize(); });
db.setAuthorizer(() => 0);
time('prepare with authorizer', 1000, () => db.prepare('select * from t').finalize());
}
