// The real-client proof of the OTLP receiver (tests/integration/test_agent.c,
// test_agent_otlp_real_sdk): a chat server's turn instrumented the way users
// do it — the official OpenTelemetry Node SDK, its OTLP/HTTP JSON trace
// exporter (and its OTLP/HTTP metric exporter, for the GenAI metrics) and the
// OpenTelemetry OpenAI instrumentation around the `openai`
// SDK — talking to a mock LLM server started here on loopback: a chat call
// that asks for a tool, the tool call, a second chat call, and a provoked
// 429. Versions are pinned in package-lock.json.
//
//   node tests/otlp/chat.mjs OTLP_BASE_URL CONVERSATION_ID
import { createRequire } from 'node:module';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import { trace } from '@opentelemetry/api';
import { startMockLLM } from './mockllm.mjs';

const [otlp, conv] = process.argv.slice(2);
const sdk = new NodeSDK({
  serviceName: 'chat-server',
  traceExporter: new OTLPTraceExporter({ url: `${otlp}/v1/traces` }),
  // exported once, at shutdown (cumulative temporality, the SDK's default)
  metricReader: new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: `${otlp}/v1/metrics` }), exportIntervalMillis: 600000,
  }),
  instrumentations: [new OpenAIInstrumentation({ captureMessageContent: true })],
});
sdk.start();
// required (CommonJS) after start(), so the instrumentation's require hook sees it
const OpenAI = createRequire(import.meta.url)('openai');

const llm = await startMockLLM();
const client = new OpenAI({ apiKey: 'test-key', baseURL: llm.url, maxRetries: 0 });
const tracer = trace.getTracer('chat-server');

// the server names the conversation on its own spans; the SDK's spans share the trace
await tracer.startActiveSpan('turn', { attributes: { 'gen_ai.conversation.id': conv } }, async (turn) => {
  await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  await tracer.startActiveSpan('execute_tool get_weather', {
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_weather', 'gen_ai.tool.call.id': 'call_1' },
  }, async (span) => { span.end(); });
  await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Thanks' }] });
  try {
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Again' }] });
  } catch (e) {
    // the provoked 429: the instrumentation marks the span as failed
  }
  turn.end();
});
llm.close();
await sdk.shutdown(); // flushes the spans and the metrics to flightrec
