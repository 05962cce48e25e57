// make bench (bench/otlp.sh): OTLP/gRPC as the OpenTelemetry Collector's
// exporter sends it, its queue's concurrent exports as streams of one HTTP/2
// connection (@grpc/grpc-js, one client), STREAMS requests in flight at a
// time. DUMP holds the requests (fr-httpbench with FR_HTTPBENCH_DUMP: per
// request its length and its spans, 32-bit big-endian, then the message).
// Prints what fr-httpbench prints (events_per_s, mb_per_s, ack_p99_ms, ...).
// RESOURCE_EXHAUSTED is retried after 20 ms, as fr-httpbench retries a 429.
//
//   node bench/grpc-mux.mjs HOST:PORT DUMP [STREAMS]
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';

const [addr, dump, streamsArg] = process.argv.slice(2);
const streams = Number(streamsArg || 8);
const buf = fs.readFileSync(dump);
const reqs = [];
for (let o = 0; o < buf.length;) {
  const len = buf.readUInt32BE(o), spans = buf.readUInt32BE(o + 4);
  reqs.push({ msg: buf.subarray(o + 8, o + 8 + len), spans });
  o += 8 + len;
}
const method = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const client = new grpc.Client(addr, grpc.credentials.createInsecure());
const id = (x) => x;
const once = (r) => new Promise((resolve) => client.makeUnaryRequest(method, id, id, r.msg,
  new grpc.Metadata(), { deadline: Date.now() + 120000 }, (err) => resolve(err ? err.code : 0)));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// the connection up before the clock starts, as fr-httpbench's clients are
await new Promise((resolve, reject) => client.waitForReady(Date.now() + 10000,
  (err) => (err ? reject(err) : resolve())));
const lat = [];
let next = 0, retries = 0, failures = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: streams }, async () => {
  while (next < reqs.length) {
    const r = reqs[next++], s = performance.now();
    let code;
    while ((code = await once(r)) === 8) {
      retries++;
      await sleep(20);
    }
    if (code !== 0) failures++;
    lat.push(performance.now() - s);
  }
}));
const secs = (performance.now() - t0) / 1000;
client.close();
const spans = reqs.reduce((a, r) => a + r.spans, 0);
const bytes = reqs.reduce((a, r) => a + r.msg.length, 0);
lat.sort((a, b) => a - b);
console.log([`events ${spans}`, `requests ${reqs.length}`, `streams ${streams}`,
  `seconds ${secs.toFixed(3)}`, `events_per_s ${Math.round(spans / secs)}`,
  `bytes_per_event ${Math.round(bytes / spans)}`, `mb_per_s ${(bytes / secs / 1e6).toFixed(1)}`,
  `ack_p50_ms ${lat[Math.floor(lat.length / 2)].toFixed(1)}`,
  `ack_p99_ms ${lat[Math.floor(lat.length * 0.99)].toFixed(1)}`,
  `retries_429 ${retries}`, `failures ${failures}`].join('\n'));
process.exit(failures > 0 ? 1 : 0);
