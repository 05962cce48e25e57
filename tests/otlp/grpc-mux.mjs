// Several OTLP/gRPC calls as streams of one connection, for
// tests/integration/test_agent_otlp.c: one @grpc/grpc-js client (one HTTP/2
// connection), as the OpenTelemetry Collector's exporter sends the concurrent
// exports of its queue. Each CALL is METHOD=FILE (the bytes of an
// Export*ServiceRequest) or METHOD=FILE=cancel. The first call is made at
// once, the others once the file DIR/go exists; those marked cancel are
// cancelled (RST_STREAM) once DIR/cancel exists, then DIR/cancelled is
// written. Prints one JSON line per answer, in the order they came:
// {"call": i, "code": n, "details": "..."}.
//
//   node tests/otlp/grpc-mux.mjs HOST:PORT DIR CALL...
import fs from 'node:fs';
import path from 'node:path';
import { until } from './signal.mjs';
import grpc from '@grpc/grpc-js';

const [addr, dir, ...calls] = process.argv.slice(2);
const client = new grpc.Client(addr, grpc.credentials.createInsecure());
const id = (x) => x;
let left = calls.length;
const made = calls.map((spec, i) => {
  const [method, file, mark] = spec.split('=');
  return { i, method, msg: fs.readFileSync(file), cancel: mark === 'cancel' };
});
const call = (c) => client.makeUnaryRequest(c.method, id, id, c.msg, new grpc.Metadata(),
  { deadline: Date.now() + 60000 }, (err) => {
    console.log(JSON.stringify({ call: c.i, code: err ? err.code : 0,
      details: err ? err.details : '' }));
    if (--left === 0) client.close();
  });
call(made[0]);
await until(dir, 'go');
const pending = made.slice(1).map((c) => ({ c, handle: call(c) }));
await until(dir, 'cancel');
for (const p of pending) if (p.c.cancel) p.handle.cancel();
fs.writeFileSync(path.join(dir, 'cancelled'), ''); // the resets are sent
