// The Vercel AI SDK (`ai` 6, with @ai-sdk/openai against the mock LLM) and its
// built-in OpenTelemetry spans (experimental_telemetry: ai.generateText,
// ai.generateText.doGenerate, ai.toolCall with the ai.* attributes, as AI SDK
// 3 to 6 send them), exported by the OpenTelemetry SDK's OTLP/HTTP protobuf
// exporter (tests/integration/test_agent_otlp.c). One turn: generateText
// with a tool (the model asks for get_weather, then answers), then a call the
// mock LLM refuses with 429. The conversation is the telemetry metadata's
// conversationId (ai.telemetry.metadata.conversationId on every span).
// AI SDK 7 moved its spans to @ai-sdk/otel, whose current integration speaks
// the GenAI conventions (invoke_agent, chat, execute_tool) and needs
// Node.js 22.
//
//   node tests/otlp/vercel.mjs OTLP_BASE_URL CONVERSATION_ID
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { generateText, tool, jsonSchema, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { startMockLLM } from './mockllm.mjs';

const [base, conv] = process.argv.slice(2);
const sdk = new NodeSDK({
  serviceName: 'chat-server',
  traceExporter: new OTLPTraceExporter({ url: `${base}/v1/traces` }),
});
sdk.start();
const llm = await startMockLLM();
const openai = createOpenAI({ baseURL: llm.url, apiKey: 'test-key' });
const telemetry = { isEnabled: true, functionId: 'answer', metadata: { conversationId: conv } };
await generateText({
  model: openai.chat('gpt-4o'),
  tools: {
    get_weather: tool({
      description: 'The weather in a city',
      inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
      execute: async () => ({ sky: 'sunny' }),
    }),
  },
  stopWhen: stepCountIs(3),
  maxRetries: 0,
  prompt: 'Weather in Paris? mail jane.doe@example.com',
  experimental_telemetry: telemetry,
});
try {
  await generateText({ model: openai.chat('gpt-4o'), maxRetries: 0, prompt: 'Again', experimental_telemetry: telemetry });
} catch (e) {
  // the provoked 429
}
llm.close();
await sdk.shutdown();
