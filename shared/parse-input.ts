// Turns a zod failure at a trust boundary into an InvalidInputError that lists each issue's path and message.
import type { z } from 'zod';
import { InvalidInputError } from './errors.js';

export interface InputIssue {
  path: string;
  message: string;
}

/** At most this many issues are kept: a hostile document could otherwise yield an error megabytes long. */
const MAX_ISSUES = 20;

export function issuesOf(error: z.ZodError): InputIssue[] {
  return error.issues.slice(0, MAX_ISSUES).map((i) => ({
    path: i.path.map((p) => String(p)).join('.') || '(root)',
    message: i.message,
  }));
}

export function describeIssues(issues: readonly InputIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

/** Parses `input` with `schema`, or throws InvalidInputError naming `what` and every issue (path + message). */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = issuesOf(result.error);
  throw new InvalidInputError(`invalid ${what}: ${describeIssues(issues)}`, {
    details: { issues },
  });
}
