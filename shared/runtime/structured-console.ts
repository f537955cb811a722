// Turns console output (functions-framework's own crash and error reports included) into one-line JSON log entries.
import { format } from 'node:util';
import { createLogger, type Logger } from '../logging/logger.js';

let installed = false;

/**
 * functions-framework reports failures with `console.error(err.stack)`: a plain multi-line trace
 * that Cloud Logging splits into one entry per line beside our JSON lines. Routing the console
 * through the structured logger keeps every line one JSON entry, redacted like the rest.
 */
export function installStructuredConsole(
  logger: Logger = createLogger({ fields: { source: 'console' } }),
): void {
  if (installed) return;
  installed = true;
  const at =
    (severity: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) =>
      logger[severity](format(...args));
  console.log = at('info');
  console.info = at('info');
  console.debug = at('debug');
  console.warn = at('warn');
  console.error = at('error');
  console.trace = at('debug');
}
