// One raw OTLP/gRPC call, for tests/integration/test_agent_otlp.c: sends the
// bytes of FILE (an Export*ServiceRequest, protobuf) as the message of METHOD
// over @grpc/grpc-js (the gRPC implementation the OpenTelemetry JS exporters
// use), and prints what came back as one JSON line: the status code and
// message, grpc-status-details-bin and the response message, base64.
//
//   node tests/otlp/grpc-probe.mjs HOST:PORT METHOD FILE [TOKEN [ENCODING]]
//
// With ENCODING, FILE holds the message already compressed that way: it is
// sent with the compressed flag and `grpc-encoding: ENCODING` over node:http2
// (grpc-js compresses only with gzip and deflate), and the answer's
// grpc-accept-encoding is printed too.
import fs from 'node:fs';
import http2 from 'node:http2';
import grpc from '@grpc/grpc-js';

const [addr, method, file, token, encoding] = process.argv.slice(2);
if (encoding) {
  const msg = fs.readFileSync(file);
  const prefix = Buffer.alloc(5);
  prefix[0] = 1;
  prefix.writeUInt32BE(msg.length, 1);
  const session = http2.connect('http://' + addr);
  const headers = { ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers', 'grpc-encoding': encoding };
  if (token) headers.authorization = `Bearer ${token}`;
  const req = session.request(headers);
  const out = { code: null, details: '', status_details: '', response: '', accept_encoding: '' };
  const status = (h) => {
    if (h['grpc-status'] === undefined) return;
    out.code = Number(h['grpc-status']);
    try { out.details = decodeURIComponent(h['grpc-message'] || ''); } catch { out.details = h['grpc-message']; }
  };
  const chunks = [];
  req.on('response', (h) => { out.accept_encoding = h['grpc-accept-encoding'] || ''; status(h); });
  req.on('trailers', status);
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (body.length >= 5) out.response = body.subarray(5).toString('base64');
    console.log(JSON.stringify(out));
    session.close();
  });
  req.end(Buffer.concat([prefix, msg]));
} else {
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
}
