// Two OTLP/gRPC calls on one HTTP/2 connection, the first one's message
// held half sent, for tests/integration/test_agent_otlp.c (the bound on
// request bodies held at once, http.max_inflight_bytes). Raw HTTP/2
// (node:http2), since a gRPC library sends a unary call's message whole.
// FILE holds the bytes of an Export*ServiceRequest; both calls send it as
// their one length-prefixed message. The first call sends its first FIRST
// bytes (prefix included) at once; once the file DIR/go exists the second
// call is made whole, and once it is answered the first one's rest follows.
// Prints one JSON line per answer, in the order they came:
// {"call": i, "code": n, "message": "..."}.
//
//   node tests/otlp/grpc-held.mjs HOST:PORT DIR METHOD FILE FIRST
import fs from 'node:fs';
import http2 from 'node:http2';
import { until } from './signal.mjs';

const [addr, dir, method, file, first] = process.argv.slice(2);
const msg = fs.readFileSync(file);
const framed = Buffer.alloc(5 + msg.length);
framed.writeUInt32BE(msg.length, 1);
msg.copy(framed, 5);
const cut = Number(first);
const session = http2.connect(`http://${addr}`);
session.on('error', (e) => { console.error(`connection: ${e.message}`); process.exit(1); });
let finished = false;
session.on('close', () => { if (!finished) { console.error('connection closed'); process.exit(1); } });
setTimeout(() => { console.error('no answer in 90 s'); process.exit(1); }, 90000).unref();

// A call's answer: grpc-status from the trailers, or from the headers of a trailers-only answer.
const call = (i) => {
  const req = session.request({
    ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers',
  });
  const done = new Promise((resolve) => {
    let status = null;
    let message = '';
    const take = (h) => {
      if (h['grpc-status'] !== undefined) {
        status = Number(h['grpc-status']);
        message = decodeURIComponent(h['grpc-message'] || '');
      }
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => {});
    req.on('close', () => {
      console.log(JSON.stringify({ call: i, code: status, message }));
      resolve();
    });
  });
  return { req, done };
};

const held = call(0);
held.req.write(framed.subarray(0, cut));
await until(dir, 'go');
const other = call(1);
other.req.end(framed);
await other.done;
held.req.end(framed.subarray(cut));
await held.done;
finished = true;
session.close();
