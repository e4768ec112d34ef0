// Calls Chat Completions and Responses through the official OpenAI SDK as a plain Node program would,
// each once without and once with streaming (Chat streaming asks for the usage chunk). OPENAI_BASE_URL
// and OPENAI_API_KEY come from the environment. Prints one JSON object with the text of each answer.
import OpenAI from 'openai';

const client = new OpenAI({ maxRetries: 0 });
const model = 'gpt-5';
const messages = [{ role: 'user', content: 'Say hi.' }];

const chat = await client.chat.completions.create({ model, messages });

let chatStream = '';
const chunks = await client.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
for await (const chunk of chunks) chatStream += chunk.choices[0]?.delta?.content ?? '';

const response = await client.responses.create({ model, input: 'Say hi.' });

let responseStream = '';
const events = await client.responses.create({ model, input: 'Say hi.', stream: true });
for await (const event of events) {
  if (event.type === 'response.output_text.delta') responseStream += event.delta;
}

console.log(
  JSON.stringify({
    chat: chat.choices[0]?.message?.content ?? null,
    chatStream,
    responses: response.output_text,
    responsesStream: responseStream,
  }),
);
