import { describe, expect, it } from 'vitest';
import { escapeForTerminal } from './terminal-text.js';

describe('escapeForTerminal', () => {
  it.each([
    ['\u001b[31mred\u001b[0m', '\\x1b[31mred\\x1b[0m'],
    ['title\u001b]0;owned\u0007', 'title\\x1b]0;owned\\x07'],
    ['line\r\nFAKE ROW', 'line\\r\\nFAKE ROW'],
    ['tab\there', 'tab\\there'],
    ['nul\u0000del\u007f', 'nul\\x00del\\x7f'],
    ['c1 csi\u009b31m', 'c1 csi\\x9b31m'],
    ['bidi\u202eesrever\u202c', 'bidi\\u202eesrever\\u202c'],
    ['isolate\u2066x\u2069', 'isolate\\u2066x\\u2069'],
    ['marks\u200e\u200f\u061c', 'marks\\u200e\\u200f\\u061c'],
    ['separators\u2028\u2029', 'separators\\u2028\\u2029'],
  ])('escapes %j', (input, expected) => {
    expect(escapeForTerminal(input)).toBe(expected);
  });

  it('keeps printable text as it is', () => {
    for (const text of ['claude-sonnet-4-5', 'héllo wörld', 'モデル', 'gpt-5 🚀', 'a\\x1b stays literal']) {
      expect(escapeForTerminal(text)).toBe(text);
    }
  });
});
