// Calls the Messages API through the official Anthropic SDK as a plain Node program would: one
// non-streamed message, one streamed message and one token count. ANTHROPIC_BASE_URL and
// ANTHROPIC_API_KEY come from the environment. Prints one JSON object with what the SDK returned.
import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ maxRetries: 0 });
const request = { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say hi.' }] };

const message = await client.messages.create(request);
const streamed = await client.messages.stream(request).finalMessage();
const counted = await client.messages.countTokens({ model: request.model, messages: request.messages });

const textOf = (reply) =>
  reply.content
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('');
console.log(JSON.stringify({ message: textOf(message), stream: textOf(streamed), countTokens: counted.input_tokens }));
