/** A pino destination that keeps every line in memory, for tests that read what the server logged. */
export interface LogCapture {
  stream: { write(line: string): void };
  text(): string;
  /** The log lines, parsed. */
  lines(): Record<string, unknown>[];
}

export function createLogCapture(): LogCapture {
  const chunks: string[] = [];
  const text = () => chunks.join('');
  return {
    stream: { write: (line) => chunks.push(line) },
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
