// Traceloop's SDK (OpenLLMetry, @traceloop/node-server-sdk) as its users run
// it: its own exporter (OTLP/HTTP protobuf to `${baseUrl}/v1/traces`), its
// OpenAI instrumentation, a workflow with a tool inside, and the conversation
// named by an association property; against the mock LLM
// (tests/integration/test_agent_otlp.c).
//
//   node tests/otlp/traceloop.mjs OTLP_BASE_URL CONVERSATION_ID
import * as traceloop from '@traceloop/node-server-sdk';
import OpenAI from 'openai';
import { startMockLLM } from './mockllm.mjs';

const [base, conv] = process.argv.slice(2);
traceloop.initialize({
  appName: 'chat-server', baseUrl: base, apiKey: 'not-used', disableBatch: true,
  silenceInitializationMessage: true, traceloopSyncEnabled: false,
  instrumentModules: { openAI: OpenAI },
});
const llm = await startMockLLM();
const client = new OpenAI({ apiKey: 'test-key', baseURL: llm.url, maxRetries: 0 });

await traceloop.withAssociationProperties({ conversation_id: conv }, () =>
  traceloop.withWorkflow({ name: 'answer' }, async () => {
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Weather in Paris? mail jane.doe@example.com' }] });
    await traceloop.withTool({ name: 'get_weather' }, async () => ({ sky: 'sunny' }), { city: 'Paris' });
    await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Thanks' }] });
    try {
      await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Again' }] });
    } catch (e) {
      // the provoked 429
    }
  }));
llm.close();
await traceloop.forceFlush();
