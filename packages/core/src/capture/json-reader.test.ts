import { describe, expect, it } from 'vitest';
import { JsonReader, type JsonReaderOptions, type JsonReadResult } from './json-reader.js';

const roomy: JsonReaderOptions = { maxStringBytes: 1 << 20, maxRetainedBytes: 1 << 24 };

function read(text: string, options: Partial<JsonReaderOptions> = {}, splits: number[] = []): JsonReadResult {
  const bytes = new TextEncoder().encode(text);
  const reader = new JsonReader({ ...roomy, ...options });
  let start = 0;
  for (const split of [...splits, bytes.length]) {
    reader.push(bytes.subarray(start, split));
    start = split;
  }
  return reader.end();
}

describe('JsonReader', () => {
  it('reads a document like JSON.parse', () => {
    const text = '{"a":[1,-2.5e3,true,false,null],"b":{"c":"d\\n\\"e\\u00e9\\ud83d\\ude00"},"e":[],"f":{}}';
    expect(read(text)).toEqual({ value: JSON.parse(text), complete: true, error: null, overflow: false });
  });

  it('gives the same value at every split point', () => {
    const text = ' { "text" : "naïve \\u263A 😀 \\\\ \\"q\\"" , "n" : [ 12 , 3.5 ] , "ok" : true } ';
    for (let split = 0; split <= new TextEncoder().encode(text).length; split++) {
      expect(read(text, {}, [split]).value, `split at byte ${split}`).toEqual(JSON.parse(text));
    }
  });

  it('reads a number at the very end of the input', () => {
    expect(read('42')).toMatchObject({ value: 42, complete: true });
  });

  it('reports syntax errors with their offset', () => {
    expect(read('{"a":1,}').error).toBe('expected a property name at offset 7');
    expect(read('[DONE]').error).toBe('unexpected byte 0x44 where a value should start at offset 1');
    expect(read('[nul]').error).toBe('invalid literal "nul"');
    expect(read('{"a":1} x').error).toBe('unexpected data after the JSON value at offset 8');
    expect(read('{"a":').error).toBe('incomplete document');
  });

  it('returns the partial root of an incomplete document', () => {
    expect(read('{"model":"m","stream":true,"messages":[{"role"')).toMatchObject({
      value: { model: 'm', stream: true },
      complete: false,
    });
  });

  it('keeps a prefix of long strings without splitting characters', () => {
    expect(read('{"s":"abcdef","t":"ééé"}', { maxStringBytes: 3 }).value).toEqual({ s: 'abc', t: 'é' });
  });

  it('drops a partial escape at the cut', () => {
    expect(read('{"s":"ab\\u00e9cd"}', { maxStringBytes: 5 }).value).toEqual({ s: 'ab' });
  });

  it('stops building once the budget is spent', () => {
    // The string that crosses the budget is kept whole; values after it are dropped.
    const result = read(`{"a":"${'x'.repeat(100)}","b":"${'y'.repeat(100)}","c":1}`, { maxRetainedBytes: 150 });
    expect(result.overflow).toBe(true);
    expect(result.complete).toBe(true);
    expect(result.value).toEqual({ a: 'x'.repeat(100), b: 'y'.repeat(100) });
  });

  it('keeps values after many long strings (regression: usage lost after 16 MiB)', () => {
    const text = `{"pad":[${Array.from({ length: 50 }, () => `"${'x'.repeat(1000)}"`).join(',')}],"usage":{"output_tokens":5}}`;
    const result = read(text, { maxStringBytes: 1000, maxLongStringBytes: 2000, maxRetainedBytes: 16_000 });

    expect(result.overflow).toBe(false);
    expect(result.complete).toBe(true);
    const value = result.value as { pad: string[]; usage: unknown };
    expect(value.usage).toEqual({ output_tokens: 5 });
    // Two strings fit the long-string budget whole, a third in part; the others keep a short prefix.
    expect(value.pad.map((item) => item.length).slice(0, 4)).toEqual([1000, 1000, 384, 128]);
    const keptBytes = value.pad.reduce((sum, item) => sum + item.length, 0);
    expect(keptBytes).toBeLessThanOrEqual(2000 + 50 * 128);
  });

  it('builds only what the keep filter selects', () => {
    const keep = (path: readonly (string | number)[], isContainer: boolean) =>
      path.length === 0 || (path.length === 1 && (!isContainer || path[0] === 'metadata')) || (path.length === 2 && !isContainer);
    const text = '{"model":"m","messages":[{"content":"big"}],"metadata":{"user_id":"u","deep":{"x":1}},"stream":true}';
    expect(read(text, { keep }).value).toEqual({ model: 'm', metadata: { user_id: 'u' }, stream: true });
  });

  it('releases root array elements as they complete', () => {
    const elements: unknown[] = [];
    const text = '[{"a":1}\n,\r\n{"b":[2]}\n]';
    const result = read(text, { onRootElement: (value) => elements.push(value) }, [5, 12]);
    expect(elements).toEqual([{ a: 1 }, { b: [2] }]);
    expect(result).toMatchObject({ value: undefined, complete: true, error: null });
  });

  it('ignores a __proto__ key', () => {
    const value = read('{"__proto__":{"polluted":true},"a":1}').value as Record<string, unknown>;
    expect(value).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
  });

  it('rejects nesting deeper than its limit', () => {
    expect(read(`${'['.repeat(600)}${']'.repeat(600)}`).error).toBe('nesting deeper than 512 at offset 512');
  });
});
