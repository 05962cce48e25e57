// One raw OTLP/gRPC call, for tests/integration/test_agent_otlp.c: sends the
// bytes of FILE (an Export*ServiceRequest, protobuf) as the message of METHOD
// over @grpc/grpc-js (the gRPC implementation the OpenTelemetry JS exporters
// use), and prints what came back as one JSON line: the status code and
// message, grpc-status-details-bin and the response message, base64.
//
//   node tests/otlp/grpc-probe.mjs HOST:PORT METHOD FILE [TOKEN]
import fs from 'node:fs';
import grpc from '@grpc/grpc-js';

const [addr, method, file, token] = process.argv.slice(2);
const client = new grpc.Client(addr, grpc.credentials.createInsecure());
const md = new grpc.Metadata();
if (token) md.set('authorization', `Bearer ${token}`);
const id = (x) => x;
client.makeUnaryRequest(method, id, id, fs.readFileSync(file), md,
  { deadline: Date.now() + 20000 }, (err, resp) => {
    const out = { code: err ? err.code : 0, details: err ? err.details : '' };
    const bin = err && err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
    out.status_details = bin.length ? Buffer.from(bin[0]).toString('base64') : '';
    out.response = resp ? Buffer.from(resp).toString('base64') : '';
    console.log(JSON.stringify(out));
    client.close();
  });
