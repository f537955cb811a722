// Asserts that a parser refuses its input with an InvalidInputError, and returns the error for further checks.
import { expect } from 'vitest';
import { InvalidInputError } from '../../shared/errors.js';

export function thrown(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return err as InvalidInputError;
  }
  throw new Error('expected an InvalidInputError');
}
