// OpenInference (Arize Phoenix's conventions: openinference.span.kind, llm.*,
// session.id) through @arizeai/openinference-instrumentation-openai, with the
// OpenTelemetry SDK's OTLP/HTTP protobuf exporter, against the mock LLM
// (tests/integration/test_agent_otlp.c). The conversation is OpenInference's
// session (setSession), the tool a span of kind TOOL.
//
//   node tests/otlp/openinference.mjs OTLP_BASE_URL CONVERSATION_ID
import { createRequire } from 'node:module';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { context, trace } from '@opentelemetry/api';
import { OpenAIInstrumentation } from '@arizeai/openinference-instrumentation-openai';
import { setSession } from '@arizeai/openinference-core';
import { startMockLLM } from './mockllm.mjs';

const [base, conv] = process.argv.slice(2);
const sdk = new NodeSDK({
  serviceName: 'chat-server',
  traceExporter: new OTLPTraceExporter({ url: `${base}/v1/traces` }),
  instrumentations: [new OpenAIInstrumentation()],
});
sdk.start();
const OpenAI = createRequire(import.meta.url)('openai');
const llm = await startMockLLM();
const client = new OpenAI({ apiKey: 'test-key', baseURL: llm.url, maxRetries: 0 });
const tracer = trace.getTracer('chat-server');

await context.with(setSession(context.active(), { sessionId: conv }), async () => {
  await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather in Paris? mail jane.doe@example.com' }] });
  await tracer.startActiveSpan('get_weather', {
    attributes: {
      'openinference.span.kind': 'TOOL', 'tool.name': 'get_weather', 'session.id': conv,
      'input.value': '{"city":"Paris"}', 'output.value': '{"sky":"sunny"}',
    },
  }, async (span) => { span.end(); });
  await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Thanks' }] });
  try {
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Again' }] });
  } catch (e) {
    // the provoked 429
  }
});
llm.close();
await sdk.shutdown();
