// The OpenTelemetry Node SDK configured the way deployments configure it:
// by environment only (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL
// = http/protobuf (the specified default), http/json or grpc,
// OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_BSP_SCHEDULE_DELAY, OTEL_METRICS_EXPORTER,
// OTEL_LOGS_EXPORTER), with @opentelemetry/instrumentation-openai around the
// `openai` SDK talking to a mock LLM on loopback. One turn: a chat call that
// asks for a tool, the tool call, a second chat call and a provoked 429; the
// server's own root span names the conversation and ends last, after its
// children were exported (tests/integration/test_agent_otlp.c).
//
//   node tests/otlp/sdk.mjs CONVERSATION_ID [shutdown|flush-each|paced]
//
// shutdown: everything exported at the end; flush-each: the SDK flushed after
// every call, so each child span (and its log records) travels in its own
// request before the root; paced: 150 ms between calls with the batch timer
// (OTEL_BSP_SCHEDULE_DELAY) set short by the caller.
import { createRequire } from 'node:module';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OpenAIInstrumentation } from '@opentelemetry/instrumentation-openai';
import { trace } from '@opentelemetry/api';
import { logs } from '@opentelemetry/api-logs';
import { startMockLLM } from './mockllm.mjs';

const [conv, schedule = 'shutdown'] = process.argv.slice(2);
const sdk = new NodeSDK({
  serviceName: 'chat-server',
  instrumentations: [new OpenAIInstrumentation({ captureMessageContent: true })],
});
sdk.start();
const OpenAI = createRequire(import.meta.url)('openai');

const llm = await startMockLLM();
const client = new OpenAI({ apiKey: 'test-key', baseURL: llm.url, maxRetries: 0 });
const tracer = trace.getTracer('chat-server');

async function between() {
  if (schedule === 'flush-each') {
    await trace.getTracerProvider().getDelegate?.().forceFlush?.();
    await logs.getLoggerProvider().forceFlush?.();
  } else if (schedule === 'paced') {
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

await tracer.startActiveSpan('turn', { attributes: { 'gen_ai.conversation.id': conv } }, async (turn) => {
  await client.chat.completions.create({
    model: 'gpt-4o',
    messages: [
      { role: 'system', content: 'You are a weather bot.' },
      { role: 'user', content: 'Weather in Paris? My card is 4111 1111 1111 1111' },
    ],
  });
  await between();
  await tracer.startActiveSpan('execute_tool get_weather', {
    attributes: {
      'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'get_weather', 'gen_ai.tool.call.id': 'call_1',
      'gen_ai.tool.call.arguments': '{"city":"Paris"}', 'gen_ai.tool.call.result': '{"sky":"sunny","c":21}',
    },
  }, async (span) => { span.end(); });
  await between();
  await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Thanks' }] });
  await between();
  try {
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Again' }] });
  } catch (e) {
    // the provoked 429: the instrumentation marks the span as failed
  }
  await between();
  turn.end();
});
llm.close();
await sdk.shutdown(); // flushes what is left: the root span, metrics, logs
