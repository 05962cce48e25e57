// A mock OpenAI-compatible chat server on loopback, shared by the real-SDK
// tests (tests/otlp/*.mjs): call 1 asks for the get_weather tool, call 2
// answers, call 3 is a 429; usage grows with the call number (prompt 100+n,
// completion 20+n, cached 10n, reasoning n).
import http from 'node:http';

export async function startMockLLM() {
  let calls = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      res.setHeader('content-type', 'application/json');
      if (calls === 3) {
        res.statusCode = 429;
        res.end(JSON.stringify({ error: { message: 'Rate limit reached for gpt-4o', type: 'rate_limit_error' } }));
        return;
      }
      const tool = calls === 1;
      res.end(JSON.stringify({
        id: `chatcmpl-${calls}`, object: 'chat.completion', created: 1771357445, model: 'gpt-4o-2024-08-06',
        choices: [{
          index: 0, finish_reason: tool ? 'tool_calls' : 'stop',
          message: tool
            ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] }
            : { role: 'assistant', content: 'It is sunny in Paris.' },
        }],
        usage: {
          prompt_tokens: 100 + calls, completion_tokens: 20 + calls, total_tokens: 120 + 2 * calls,
          prompt_tokens_details: { cached_tokens: 10 * calls },
          completion_tokens_details: { reasoning_tokens: calls },
        },
      }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/v1`, close: () => server.close() };
}
