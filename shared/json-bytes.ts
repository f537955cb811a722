// JSON from outside as bytes: strict UTF-8 (RFC 8259), so bytes that are not UTF-8 are refused, never read with U+FFFD in their place.
import { InvalidInputError } from './errors.js';

/** Keeps a byte-order mark: the text is exactly the bytes. */
const exactUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Drops a leading byte-order mark, which RFC 8259 lets a parser ignore. */
const jsonUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as exactly the same text, or null when they are not UTF-8. */
export function utf8OrNull(bytes: Uint8Array): string | null {
  try {
    return exactUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * Parses JSON bytes, or throws InvalidInputError naming `what`. A lenient decode would accept
 * two different inputs as the same document and keep neither's real bytes in a dead letter.
 */
export function parseJsonBytes(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = jsonUtf8.decode(bytes);
  } catch (err) {
    throw new InvalidInputError(`${what} is not valid UTF-8`, { cause: err });
  }
  if (text.trim() === '') throw new InvalidInputError(`${what} is empty`);
  try {
    return JSON.parse(text);
  } catch (err) {
    // The parser's message quotes the input: it stays out of the error text.
    throw new InvalidInputError(`${what} is not JSON`, { cause: err });
  }
}
