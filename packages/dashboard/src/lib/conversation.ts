/**
 * Turns a call's stored request and response bodies into a conversation a person can read: the system
 * prompt, the messages with their text, images, thinking, tool calls and tool results, the tool
 * definitions, and the answer. It reads the four API shapes the proxy records (Anthropic Messages, OpenAI
 * Chat Completions and Responses, Gemini `generateContent` and its Code Assist wrapping), streamed or not.
 * Anything it does not recognise becomes an `other` block with its JSON, so nothing is hidden.
 */

export type Block =
  | { kind: 'text'; text: string }
  | { kind: 'thinking'; text: string; redacted: boolean }
  | { kind: 'image'; src: string | null; mediaType: string | null; description: string }
  | { kind: 'tool_call'; id: string | null; name: string; input: string }
  | { kind: 'tool_result'; id: string | null; name: string | null; isError: boolean; content: Block[] }
  | { kind: 'other'; label: string; json: string };

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  blocks: Block[];
}

export interface ToolDefinition {
  name: string;
  description: string | null;
  /** The parameters' JSON schema, pretty-printed; null when the tool has none (built-in tools). */
  schema: string | null;
}

export interface Conversation {
  system: Block[];
  messages: Message[];
  tools: ToolDefinition[];
  /** The answer assembled from the response body; null when there is none or it could not be read. */
  response: Message | null;
}

type Json = Record<string, unknown>;

/** Parse the request and response body texts of a call; null when the request is not JSON of a known shape. */
export function parseConversation(apiShape: string | null, requestText: string | null, responseText: string | null): Conversation | null {
  const request = requestText === null ? null : parseJsonObject(requestText);
  if (request === null) return null;
  const family = apiFamily(apiShape, request);
  if (family === null) return null;

  const conversation = readRequest(family, request);
  conversation.response = responseText === null ? null : readResponse(family, responseText);
  return conversation;
}

type Family = 'anthropic' | 'chat' | 'responses' | 'gemini';

function apiFamily(apiShape: string | null, request: Json): Family | null {
  if (apiShape === 'anthropic.messages' || apiShape === 'anthropic.count_tokens') return 'anthropic';
  if (apiShape === 'openai.chat_completions') return 'chat';
  if (apiShape === 'openai.responses') return 'responses';
  if (apiShape?.startsWith('gemini.')) return 'gemini';
  // Unknown shape: guess from the request's fields.
  if ('contents' in request || (isObject(request.request) && 'contents' in request.request)) return 'gemini';
  if ('input' in request || 'instructions' in request) return 'responses';
  if (Array.isArray(request.messages)) return 'system' in request ? 'anthropic' : 'chat';
  return null;
}

function readRequest(family: Family, request: Json): Conversation {
  switch (family) {
    case 'anthropic':
      return {
        system: typeof request.system === 'string' ? textBlocks(request.system) : anthropicBlocks(request.system),
        messages: asArray(request.messages).map((message) => ({
          role: roleOf(message.role),
          blocks: typeof message.content === 'string' ? textBlocks(message.content) : anthropicBlocks(message.content),
        })),
        tools: asArray(request.tools).map((tool) => toolDefinition(tool.name, tool.description, tool.input_schema, tool)),
        response: null,
      };
    case 'chat':
      return readChatRequest(request);
    case 'responses':
      return readResponsesRequest(request);
    case 'gemini':
      return readGeminiRequest(isObject(request.request) ? request.request : request);
  }
}

function readResponse(family: Family, text: string): Message | null {
  const events = looksLikeSse(text) ? parseSse(text) : null;
  switch (family) {
    case 'anthropic':
      return events ? anthropicStream(events) : anthropicMessage(parseJsonObject(text));
    case 'chat':
      return events ? chatStream(events) : chatMessage(parseJsonObject(text));
    case 'responses':
      return events ? responsesStream(events) : responsesOutput(parseJsonObject(text));
    case 'gemini':
      return geminiResponse(events ? events.map((event) => parseJsonObject(event.data)) : geminiChunks(text));
  }
}

// Anthropic Messages

function anthropicBlocks(content: unknown): Block[] {
  return asArray(content).flatMap((block): Block[] => {
    switch (block.type) {
      case 'text':
        return textBlocks(block.text);
      case 'thinking':
        return [{ kind: 'thinking', text: String(block.thinking ?? ''), redacted: false }];
      case 'redacted_thinking':
        return [{ kind: 'thinking', text: '', redacted: true }];
      case 'image':
        return [anthropicImage(block.source)];
      case 'tool_use':
      case 'server_tool_use':
        return [{ kind: 'tool_call', id: stringOrNull(block.id), name: String(block.name ?? ''), input: pretty(block.input) }];
      case 'tool_result':
        return [
          {
            kind: 'tool_result',
            id: stringOrNull(block.tool_use_id),
            name: null,
            isError: block.is_error === true,
            content: typeof block.content === 'string' ? textBlocks(block.content) : anthropicBlocks(block.content),
          },
        ];
      default:
        return [{ kind: 'other', label: String(block.type ?? 'block'), json: pretty(block) }];
    }
  });
}

function anthropicImage(source: unknown): Block {
  if (!isObject(source)) return { kind: 'image', src: null, mediaType: null, description: 'image' };
  const mediaType = stringOrNull(source.media_type);
  if (source.type === 'base64' && typeof source.data === 'string' && mediaType?.startsWith('image/')) {
    return { kind: 'image', src: `data:${mediaType};base64,${source.data}`, mediaType, description: `${mediaType} image` };
  }
  return { kind: 'image', src: null, mediaType, description: source.type === 'url' ? `image at ${String(source.url)}` : 'image' };
}

function anthropicMessage(body: Json | null): Message | null {
  if (!body || !Array.isArray(body.content)) return null;
  return { role: 'assistant', blocks: anthropicBlocks(body.content) };
}

/** Rebuild the content blocks of a streamed message from its `content_block_*` events, by block index. */
function anthropicStream(events: SseEvent[]): Message | null {
  const blocks: Json[] = [];
  const partialInputs: string[] = [];
  for (const event of events) {
    const data = parseJsonObject(event.data);
    if (!data) continue;
    const index = typeof data.index === 'number' ? data.index : -1;
    if (data.type === 'content_block_start' && isObject(data.content_block)) {
      blocks[index] = { ...data.content_block };
      partialInputs[index] = '';
    } else if (data.type === 'content_block_delta' && isObject(data.delta) && blocks[index]) {
      const block = blocks[index]!;
      const delta = data.delta;
      if (delta.type === 'text_delta') block.text = String(block.text ?? '') + String(delta.text ?? '');
      else if (delta.type === 'thinking_delta') block.thinking = String(block.thinking ?? '') + String(delta.thinking ?? '');
      else if (delta.type === 'input_json_delta') partialInputs[index] += String(delta.partial_json ?? '');
    } else if (data.type === 'content_block_stop' && blocks[index] && partialInputs[index]) {
      blocks[index]!.input = parseJsonValue(partialInputs[index]!) ?? partialInputs[index];
    }
  }
  const present = blocks.filter(Boolean);
  return present.length === 0 ? null : { role: 'assistant', blocks: anthropicBlocks(present) };
}

// OpenAI Chat Completions

function readChatRequest(request: Json): Conversation {
  const system: Block[] = [];
  const messages: Message[] = [];
  for (const message of asArray(request.messages)) {
    const blocks = chatContent(message.content);
    for (const call of asArray(message.tool_calls)) blocks.push(chatToolCall(call));
    if (message.role === 'tool') {
      messages.push({
        role: 'tool',
        blocks: [
          {
            kind: 'tool_result',
            id: stringOrNull(message.tool_call_id),
            name: stringOrNull(message.name),
            isError: false,
            content: blocks,
          },
        ],
      });
    } else if (message.role === 'system' && messages.length === 0) {
      system.push(...blocks);
    } else {
      messages.push({ role: roleOf(message.role), blocks });
    }
  }
  const tools = asArray(request.tools).map((tool) => {
    const fn = isObject(tool.function) ? tool.function : tool;
    return toolDefinition(fn.name ?? tool.type, fn.description, fn.parameters, tool);
  });
  return { system, messages, tools, response: null };
}

function chatContent(content: unknown): Block[] {
  if (typeof content === 'string') return textBlocks(content);
  return asArray(content).flatMap((part): Block[] => {
    if (part.type === 'text' || part.type === 'input_text' || part.type === 'output_text') return textBlocks(part.text);
    if (part.type === 'image_url' || part.type === 'input_image') {
      const url = isObject(part.image_url) ? part.image_url.url : part.image_url;
      return [imageFromUrl(url)];
    }
    if (part.type === 'refusal') return textBlocks(part.refusal);
    return [{ kind: 'other', label: String(part.type ?? 'part'), json: pretty(part) }];
  });
}

function chatToolCall(call: Json): Block {
  const fn = isObject(call.function) ? call.function : {};
  return { kind: 'tool_call', id: stringOrNull(call.id), name: String(fn.name ?? ''), input: prettyArguments(fn.arguments) };
}

function chatMessage(body: Json | null): Message | null {
  const choice = asArray(body?.choices)[0];
  const message = isObject(choice?.message) ? choice.message : null;
  if (!message) return null;
  const blocks: Block[] = [];
  const reasoning = message.reasoning_content ?? message.reasoning;
  if (typeof reasoning === 'string' && reasoning !== '') blocks.push({ kind: 'thinking', text: reasoning, redacted: false });
  blocks.push(...chatContent(message.content));
  if (typeof message.refusal === 'string') blocks.push(...textBlocks(message.refusal));
  for (const call of asArray(message.tool_calls)) blocks.push(chatToolCall(call));
  return { role: 'assistant', blocks };
}

/** Join the streamed deltas of the first choice; tool call fragments are joined by their `index`. */
function chatStream(events: SseEvent[]): Message | null {
  let text = '';
  let reasoning = '';
  const calls: { id: string | null; name: string; args: string }[] = [];
  let seen = false;
  for (const event of events) {
    const data = parseJsonObject(event.data);
    const choice = asArray(data?.choices).find((item) => (item.index ?? 0) === 0);
    const delta = isObject(choice?.delta) ? choice.delta : null;
    if (!delta) continue;
    seen = true;
    if (typeof delta.content === 'string') text += delta.content;
    const thought = delta.reasoning_content ?? delta.reasoning;
    if (typeof thought === 'string') reasoning += thought;
    for (const fragment of asArray(delta.tool_calls)) {
      const index = typeof fragment.index === 'number' ? fragment.index : calls.length;
      calls[index] ??= { id: null, name: '', args: '' };
      const call = calls[index]!;
      const fn = isObject(fragment.function) ? fragment.function : {};
      if (typeof fragment.id === 'string') call.id = fragment.id;
      if (typeof fn.name === 'string') call.name += fn.name;
      if (typeof fn.arguments === 'string') call.args += fn.arguments;
    }
  }
  if (!seen) return null;
  const blocks: Block[] = [];
  if (reasoning) blocks.push({ kind: 'thinking', text: reasoning, redacted: false });
  blocks.push(...textBlocks(text));
  for (const call of calls.filter(Boolean))
    blocks.push({ kind: 'tool_call', id: call.id, name: call.name, input: prettyArguments(call.args) });
  return { role: 'assistant', blocks };
}

// OpenAI Responses

function readResponsesRequest(request: Json): Conversation {
  const system = typeof request.instructions === 'string' ? textBlocks(request.instructions) : [];
  const messages: Message[] = [];
  if (typeof request.input === 'string') messages.push({ role: 'user', blocks: textBlocks(request.input) });
  for (const item of asArray(request.input)) {
    const message = responsesItem(item);
    const last = messages.at(-1);
    // Consecutive items of one role (a reasoning item, then a function call) read as one turn.
    if (last && last.role === message.role && message.role !== 'user') last.blocks.push(...message.blocks);
    else messages.push(message);
  }
  const tools = asArray(request.tools).map((tool) => toolDefinition(tool.name ?? tool.type, tool.description, tool.parameters, tool));
  return { system, messages, tools, response: null };
}

function responsesItem(item: Json): Message {
  const type = item.type ?? (item.role ? 'message' : undefined);
  switch (type) {
    case 'message':
      return { role: roleOf(item.role), blocks: chatContent(item.content) };
    case 'function_call':
    case 'custom_tool_call':
      return {
        role: 'assistant',
        blocks: [
          {
            kind: 'tool_call',
            id: stringOrNull(item.call_id),
            name: String(item.name ?? ''),
            input: prettyArguments(item.arguments ?? item.input),
          },
        ],
      };
    case 'function_call_output':
    case 'custom_tool_call_output': {
      const output = item.output;
      const content = typeof output === 'string' ? textBlocks(output) : chatContent(output);
      return { role: 'tool', blocks: [{ kind: 'tool_result', id: stringOrNull(item.call_id), name: null, isError: false, content }] };
    }
    case 'reasoning': {
      const summary = asArray(item.summary)
        .map((part) => String(part.text ?? ''))
        .join('\n\n');
      return { role: 'assistant', blocks: [{ kind: 'thinking', text: summary, redacted: summary === '' }] };
    }
    default:
      return { role: 'assistant', blocks: [{ kind: 'other', label: String(type ?? 'item'), json: pretty(item) }] };
  }
}

function responsesOutput(body: Json | null): Message | null {
  if (!body || !Array.isArray(body.output)) return null;
  return { role: 'assistant', blocks: body.output.filter(isObject).flatMap((item) => responsesItem(item).blocks) };
}

/** Take the output of the terminal event; without one (a cut stream), join the text deltas seen so far. */
function responsesStream(events: SseEvent[]): Message | null {
  let text = '';
  for (const event of events) {
    const data = parseJsonObject(event.data);
    if (!data) continue;
    const terminal = ['response.completed', 'response.incomplete', 'response.failed', 'response.done'].includes(String(data.type));
    if (terminal && isObject(data.response) && Array.isArray(data.response.output) && data.response.output.length > 0) {
      return responsesOutput(data.response);
    }
    if (data.type === 'response.output_text.delta' && typeof data.delta === 'string') text += data.delta;
  }
  return text === '' ? null : { role: 'assistant', blocks: textBlocks(text) };
}

// Gemini

function readGeminiRequest(request: Json): Conversation {
  const instruction = isObject(request.systemInstruction)
    ? request.systemInstruction
    : isObject(request.system_instruction)
      ? request.system_instruction
      : null;
  const tools = asArray(request.tools).flatMap((tool) => {
    const declarations = asArray(tool.functionDeclarations ?? tool.function_declarations);
    if (declarations.length === 0) return [toolDefinition(Object.keys(tool)[0] ?? 'tool', null, null, tool)];
    return declarations.map((fn) => toolDefinition(fn.name, fn.description, fn.parameters ?? fn.parametersJsonSchema, fn));
  });
  return {
    system: instruction ? geminiParts(instruction.parts) : [],
    messages: asArray(request.contents).map((content) => ({
      role: content.role === 'model' ? 'assistant' : geminiHasOnlyResponses(content.parts) ? 'tool' : 'user',
      blocks: geminiParts(content.parts),
    })),
    tools,
    response: null,
  };
}

function geminiHasOnlyResponses(parts: unknown): boolean {
  const list = asArray(parts);
  return list.length > 0 && list.every((part) => isObject(part.functionResponse));
}

function geminiParts(parts: unknown): Block[] {
  return asArray(parts).flatMap((part): Block[] => {
    if (typeof part.text === 'string') {
      return part.thought === true ? [{ kind: 'thinking', text: part.text, redacted: false }] : textBlocks(part.text);
    }
    if (isObject(part.inlineData)) {
      const mediaType = stringOrNull(part.inlineData.mimeType);
      const src =
        mediaType?.startsWith('image/') && typeof part.inlineData.data === 'string'
          ? `data:${mediaType};base64,${part.inlineData.data}`
          : null;
      return [{ kind: 'image', src, mediaType, description: `${mediaType ?? 'inline'} data` }];
    }
    if (isObject(part.functionCall)) {
      return [
        {
          kind: 'tool_call',
          id: stringOrNull(part.functionCall.id),
          name: String(part.functionCall.name ?? ''),
          input: pretty(part.functionCall.args ?? {}),
        },
      ];
    }
    if (isObject(part.functionResponse)) {
      const response = part.functionResponse;
      return [
        {
          kind: 'tool_result',
          id: stringOrNull(response.id),
          name: stringOrNull(response.name),
          isError: false,
          content: [{ kind: 'text', text: pretty(response.response) }],
        },
      ];
    }
    return [{ kind: 'other', label: Object.keys(part)[0] ?? 'part', json: pretty(part) }];
  });
}

/** A Gemini response body: one JSON object, or the JSON array `streamGenerateContent` sends without `alt=sse`. */
function geminiChunks(text: string): (Json | null)[] {
  const value = parseJsonValue(text);
  if (Array.isArray(value)) return value.map((item) => (isObject(item) ? item : null));
  return [isObject(value) ? value : null];
}

function geminiResponse(chunks: (Json | null)[]): Message | null {
  const parts: Json[] = [];
  for (const chunk of chunks) {
    // Code Assist wraps each chunk in {"response": …}.
    const body = chunk && isObject(chunk.response) ? chunk.response : chunk;
    const candidate = asArray(body?.candidates)[0];
    if (isObject(candidate?.content)) parts.push(...asArray(candidate.content.parts));
  }
  if (parts.length === 0) return null;
  return { role: 'assistant', blocks: mergeText(geminiParts(parts)) };
}

/** Join consecutive text (and thinking) blocks, as streamed chunks split one answer into many parts. */
function mergeText(blocks: Block[]): Block[] {
  const merged: Block[] = [];
  for (const block of blocks) {
    const last = merged.at(-1);
    if (last?.kind === 'text' && block.kind === 'text') last.text += block.text;
    else if (last?.kind === 'thinking' && block.kind === 'thinking') last.text += block.text;
    else merged.push({ ...block });
  }
  return merged;
}

// Server-sent events

export interface SseEvent {
  event: string | null;
  data: string;
}

function looksLikeSse(text: string): boolean {
  return /^(?:event|data|id|retry):|^:/m.test(text.slice(0, 200)) && !/^\s*[[{]/.test(text);
}

/** Split an SSE body into events (data lines joined by newlines); CRLF and LF line ends both count. */
export function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  let event: string | null = null;
  let data: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (line === '') {
      if (data.length > 0) events.push({ event, data: data.join('\n') });
      event = null;
      data = [];
    } else if (line.startsWith('data:')) {
      data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    } else if (line.startsWith('event:')) {
      event = line.slice(6).trim();
    }
  }
  if (data.length > 0) events.push({ event, data: data.join('\n') });
  return events;
}

// Helpers

function toolDefinition(name: unknown, description: unknown, schema: unknown, whole: Json): ToolDefinition {
  return {
    name: String(name ?? 'tool'),
    description: typeof description === 'string' ? description : null,
    schema: schema === undefined ? (name === undefined ? pretty(whole) : null) : pretty(schema),
  };
}

function imageFromUrl(url: unknown): Block {
  if (typeof url === 'string' && /^data:image\/[a-z0-9.+-]+;base64,/i.test(url)) {
    return { kind: 'image', src: url, mediaType: url.slice(5, url.indexOf(';')), description: 'inline image' };
  }
  // Remote images are not fetched, so the page makes no request to another host.
  return { kind: 'image', src: null, mediaType: null, description: typeof url === 'string' ? `image at ${url}` : 'image' };
}

function textBlocks(text: unknown): Block[] {
  return typeof text === 'string' && text !== '' ? [{ kind: 'text', text }] : [];
}

function roleOf(role: unknown): Role {
  return role === 'system' || role === 'developer' || role === 'assistant' || role === 'tool' ? role : 'user';
}

function prettyArguments(value: unknown): string {
  if (typeof value !== 'string') return pretty(value ?? {});
  const parsed = parseJsonValue(value);
  return parsed === undefined ? value : pretty(parsed);
}

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? String(value);
}

function parseJsonValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseJsonObject(text: string): Json | null {
  const value = parseJsonValue(text);
  return isObject(value) ? value : null;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
