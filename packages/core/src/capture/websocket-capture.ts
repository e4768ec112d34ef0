import type { CaptureOptions, CaptureRequest, CaptureResult, WebSocketCapture } from './capture-types.js';

// TODO: placeholder that records nothing; the Responses WebSocket parser replaces it.
export function createWebSocketCapture(
  _request: CaptureRequest,
  _options: CaptureOptions,
  _onRecord: (result: CaptureResult) => void,
): WebSocketCapture {
  return { clientMessage() {}, serverMessage() {}, close() {} };
}
