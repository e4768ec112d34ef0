/**
 * Characters a terminal acts on instead of printing. C0 controls: ESC starts colour, cursor and title
 * sequences, and CR and LF move the cursor. DEL and the C1 controls: U+009B is a one-byte CSI. The line
 * and paragraph separators, and the Unicode bidirectional controls, which reorder the text shown around
 * them (the "Trojan Source" trick, CVE-2021-42574).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this pattern's purpose.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Escape text that came from recorded data (a model name, a tool id, a token name, a server's error
 * message) before it reaches a terminal, so it cannot inject escape sequences or forge table rows. Each
 * such character becomes a visible escape: `\n`, `\r`, `\t`, else `\xHH` or `\uHHHH`.
 */
export function escapeForTerminal(text: string): string {
  return text.replace(UNPRINTABLE, (character) => {
    const named = NAMED_ESCAPES[character];
    if (named) return named;
    const code = character.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
