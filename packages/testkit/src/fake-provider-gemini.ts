import { FAKE_ANSWER_TEXT, FAKE_MODELS, FAKE_TOOL_COMMAND, FAKE_USAGE } from './fake-provider-answers.js';
import {
  type FakeAnswer,
  type FakeReply,
  type FakeTurnBehavior,
  fakeId,
  isRecord,
  jsonReply,
  offeredToolNames,
  parseJsonBody,
  splitText,
} from './fake-provider-reply.js';

/** Gemini CLI's shell tool (0.61.0); a tool-call answer uses it only when the request offers it. */
const SHELL_TOOL = 'run_shell_command';

/** The Code Assist project the fake reports for a Google-login user. */
export const FAKE_CODE_ASSIST_PROJECT = 'fake-project-0001';

export type GeminiVerb = 'generateContent' | 'streamGenerateContent' | 'countTokens';

/**
 * Answer a Gemini API model call (`/v1beta/models/{model}:{verb}`), or with `codeAssist` the same call
 * wrapped as Code Assist does it (`/v1internal:{verb}`: the request in `request`, the answer in `response`).
 * `streamGenerateContent` answers SSE with `\r\n\r\n` framing when the query has `alt=sse`, and otherwise a
 * JSON array written element by element.
 */
export function answerGemini(
  verb: GeminiVerb,
  query: URLSearchParams,
  bodyText: string,
  options: { behavior: FakeTurnBehavior; codeAssist: boolean },
): FakeReply {
  const body = parseJsonBody(bodyText);
  const request = options.codeAssist && isRecord(body) ? body.request : body;
  const endpointPrefix = options.codeAssist ? 'codeassist' : 'gemini';

  if (verb === 'countTokens') {
    return jsonReply(200, {}, { totalTokens: FAKE_USAGE.countTokens }, metadataAnswer(`${endpointPrefix}.countTokens`));
  }
  if (!isRecord(request) || !Array.isArray(request.contents)) {
    return googleError(400, 'INVALID_ARGUMENT', '* GenerateContentRequest.contents: contents is not specified');
  }

  const responseId = fakeId('', 22);
  const stream = verb === 'streamGenerateContent';
  const format = stream ? (query.get('alt') === 'sse' ? 'sse' : 'json-array') : null;
  const content = answerContent(request, options.behavior);
  const answer: FakeAnswer = {
    endpoint: `${endpointPrefix}.${stream ? 'stream_generate_content' : 'generate_content'}`,
    kind: content.kind,
    status: 200,
    stream: format,
    responseId,
    upstreamRequestId: null,
    model: FAKE_MODELS.gemini,
  };
  const wrap = (response: unknown) => (options.codeAssist ? { response, traceId: responseId } : response);

  if (!stream) {
    const response = generateContentResponse(content.parts, true, FAKE_USAGE.gemini.candidatesTokenCount, responseId);
    return {
      status: 200,
      headers: { 'content-type': 'application/json; charset=UTF-8' },
      chunks: [JSON.stringify(wrap(response), null, 2)],
      answer,
    };
  }

  // The answer streams in two pieces; usageMetadata is a running total on every piece.
  const pieces = content.parts.length === 1 && typeof content.parts[0]?.text === 'string' ? splitText(content.parts[0].text) : null;
  const elements = pieces
    ? [
        generateContentResponse([{ text: pieces[0] }], false, Math.ceil(FAKE_USAGE.gemini.candidatesTokenCount / 2), responseId),
        generateContentResponse([{ text: pieces[1] }], true, FAKE_USAGE.gemini.candidatesTokenCount, responseId),
      ]
    : [generateContentResponse(content.parts, true, FAKE_USAGE.gemini.candidatesTokenCount, responseId)];

  if (format === 'sse') {
    return {
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
      chunks: elements.map((element) => `data: ${googleCompactJson(wrap(element))}\r\n\r\n`),
      answer,
    };
  }
  // NOTE: the whitespace between array elements (`\n,\r\n`) follows what Google's REST streaming has been
  // seen to send; clients parse it as plain JSON, so only the element boundaries matter.
  const chunks = elements.map((element, index) => `${index === 0 ? '[' : '\n,\r\n'}${JSON.stringify(wrap(element), null, 2)}`);
  chunks.push('\n]');
  return { status: 200, headers: { 'content-type': 'application/json; charset=UTF-8' }, chunks, answer };
}

/**
 * Answer the Code Assist set-up calls Gemini CLI makes before a model call with a Google login:
 * loadCodeAssist (an existing standard-tier user with a project), onboardUser (done), and empty answers
 * for quota, experiments and metrics.
 */
export function answerCodeAssistMethod(method: string): FakeReply {
  const answer = metadataAnswer(`codeassist.${method}`);
  switch (method) {
    case 'loadCodeAssist':
      return jsonReply(
        200,
        {},
        {
          currentTier: { id: 'standard-tier', name: 'Gemini Code Assist', userDefinedCloudaicompanionProject: true },
          allowedTiers: [{ id: 'standard-tier', name: 'Gemini Code Assist', isDefault: true, userDefinedCloudaicompanionProject: true }],
          cloudaicompanionProject: FAKE_CODE_ASSIST_PROJECT,
        },
        answer,
      );
    case 'onboardUser':
      return jsonReply(200, {}, { done: true, response: { cloudaicompanionProject: { id: FAKE_CODE_ASSIST_PROJECT } } }, answer);
    case 'retrieveUserQuota':
      return jsonReply(200, {}, { buckets: [] }, answer);
    case 'listExperiments':
      return jsonReply(200, {}, { experimentIds: [], flags: [] }, answer);
    default:
      return jsonReply(200, {}, {}, answer);
  }
}

export function googleError(code: number, status: string, message: string): FakeReply {
  return jsonReply(
    code,
    {},
    { error: { code, message, status } },
    {
      endpoint: 'google.error',
      kind: 'error',
      status: code,
      stream: null,
      responseId: null,
      upstreamRequestId: null,
      model: null,
    },
  );
}

/**
 * Serialize as Google's SSE `data:` lines do: `": "` after keys and a bare `,` between members and
 * elements (the layout of the recorded fixtures).
 */
export function googleCompactJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(googleCompactJson).join(',')}]`;
  if (isRecord(value)) {
    const members = Object.entries(value)
      .filter(([, member]) => member !== undefined)
      .map(([key, member]) => `${JSON.stringify(key)}: ${googleCompactJson(member)}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

type GeminiPart = { text?: string; functionCall?: { name: string; args: Record<string, unknown> } };

function metadataAnswer(endpoint: string): FakeAnswer {
  return { endpoint, kind: 'metadata', status: 200, stream: null, responseId: null, upstreamRequestId: null, model: null };
}

/**
 * Choose the parts of the answer. A request for JSON output (Gemini CLI's model-router classifier asks for
 * `responseMimeType: application/json` with a schema) gets a JSON text built from the schema alone; a
 * first call of a turn gets the shell tool call in tool-call mode; everything else gets the fixed text.
 */
function answerContent(request: Record<string, unknown>, behavior: FakeTurnBehavior): { kind: FakeAnswer['kind']; parts: GeminiPart[] } {
  const config = isRecord(request.generationConfig) ? request.generationConfig : {};
  if (behavior.answerText !== undefined) return { kind: 'text', parts: [{ text: behavior.answerText }] };
  if (config.responseMimeType === 'application/json') {
    const schema = config.responseJsonSchema ?? config.responseSchema;
    return { kind: 'text', parts: [{ text: JSON.stringify(sampleFromSchema(schema)) }] };
  }

  const lastContent = Array.isArray(request.contents) ? request.contents.at(-1) : undefined;
  const continuesTurn =
    isRecord(lastContent) &&
    Array.isArray(lastContent.parts) &&
    lastContent.parts.some((part) => isRecord(part) && 'functionResponse' in part);
  if (behavior.toolCallFirst && !continuesTurn && offeredToolNames(request.tools).has(SHELL_TOOL)) {
    return { kind: 'tool_call', parts: [{ functionCall: { name: SHELL_TOOL, args: { command: FAKE_TOOL_COMMAND } } }] };
  }
  return { kind: 'text', parts: [{ text: FAKE_ANSWER_TEXT }] };
}

/**
 * A value that satisfies a JSON schema (or Gemini's OpenAPI-style `responseSchema`) without reading any
 * prompt: strings are the fixed answer text (or the first enum value), numbers the smallest allowed value.
 */
function sampleFromSchema(schema: unknown): unknown {
  if (!isRecord(schema)) return FAKE_ANSWER_TEXT;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const type = String(Array.isArray(schema.type) ? schema.type[0] : (schema.type ?? 'object')).toLowerCase();
  switch (type) {
    case 'object': {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      return Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, sampleFromSchema(property)]));
    }
    case 'array':
      return Array.from({ length: typeof schema.minItems === 'number' ? schema.minItems : 0 }, () => sampleFromSchema(schema.items));
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : typeof schema.maximum === 'number' ? Math.min(1, schema.maximum) : 1;
    case 'boolean':
      return false;
    case 'null':
      return null;
    default:
      return FAKE_ANSWER_TEXT;
  }
}

function generateContentResponse(parts: GeminiPart[], last: boolean, candidatesTokenCount: number, responseId: string) {
  const wire = FAKE_USAGE.gemini;
  return {
    candidates: [{ content: { parts, role: 'model' }, ...(last ? { finishReason: 'STOP' } : {}), index: 0 }],
    usageMetadata: {
      promptTokenCount: wire.promptTokenCount,
      candidatesTokenCount,
      totalTokenCount: wire.promptTokenCount + candidatesTokenCount + wire.thoughtsTokenCount,
      cachedContentTokenCount: wire.cachedContentTokenCount,
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: wire.promptTokenCount }],
      cacheTokensDetails: [{ modality: 'TEXT', tokenCount: wire.cachedContentTokenCount }],
      thoughtsTokenCount: wire.thoughtsTokenCount,
    },
    modelVersion: FAKE_MODELS.gemini,
    responseId,
  };
}
