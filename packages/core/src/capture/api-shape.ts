import type { ApiShape } from '../call-record.js';
import type { RouteDescriptor } from '../routes/route-descriptor.js';

/** Facts the request line gives about an exchange, before any body byte is read. */
export interface ShapeInfo {
  shape: ApiShape | null;
  /** Code Assist wraps requests as `{model, project, request:{…}}` and responses as `{"response":{…}}`. */
  wrapped: boolean;
  /** Gemini names the model in the path (`models/{model}:verb`); null elsewhere. */
  pathModel: string | null;
  /** Gemini streams are asked for by the verb, and `alt=sse` picks SSE over a JSON array. */
  pathStream: boolean;
  altSse: boolean;
  /** Upstream path without the query string, which may carry a key (`?key=`). */
  path: string;
}

const GEMINI_METHOD = /\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;
const CODE_ASSIST_METHOD = /\/v1internal:(generateContent|streamGenerateContent)$/;

/**
 * Classify an exchange by route, method and path. Paths are matched by their ending so that base paths
 * of OpenAI-compatible hosts (`/openai/v1/...`, `/api/v1/...`) and the ChatGPT backend (`/responses`) work.
 */
export function detectApiShape(route: RouteDescriptor, method: string, target: string): ShapeInfo {
  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = new URLSearchParams(queryStart === -1 ? '' : target.slice(queryStart + 1));
  const info: ShapeInfo = { shape: null, wrapped: false, pathModel: null, pathStream: false, altSse: query.get('alt') === 'sse', path };
  if (method.toUpperCase() !== 'POST') return info;

  const decodedPath = safeDecode(path).replace(/\/+$/, '');
  const codeAssist = route.name === 'codeassist' ? CODE_ASSIST_METHOD.exec(decodedPath) : null;
  if (codeAssist) return { ...info, ...geminiVerb(codeAssist[1]!), wrapped: true };

  const gemini = GEMINI_METHOD.exec(decodedPath);
  if (gemini) return { ...info, ...geminiVerb(gemini[2]!), pathModel: gemini[1]! };

  if (route.provider === 'ollama' && decodedPath.endsWith('/api/chat')) return { ...info, shape: 'ollama.chat' };
  if (route.provider === 'ollama' && decodedPath.endsWith('/api/generate')) return { ...info, shape: 'ollama.generate' };
  if (decodedPath.endsWith('/messages/count_tokens')) return { ...info, shape: 'anthropic.count_tokens' };
  if (decodedPath.endsWith('/messages')) return { ...info, shape: 'anthropic.messages' };
  if (decodedPath.endsWith('/chat/completions')) return { ...info, shape: 'openai.chat_completions' };
  if (decodedPath.endsWith('/responses')) return { ...info, shape: 'openai.responses' };
  return info;
}

function geminiVerb(verb: string): Pick<ShapeInfo, 'shape' | 'pathStream'> {
  const stream = verb === 'streamGenerateContent';
  return { shape: stream ? 'gemini.stream_generate_content' : 'gemini.generate_content', pathStream: stream };
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
