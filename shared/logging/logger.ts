// Structured logger writing Cloud Logging JSON lines, with secrets scrubbed before anything is written.

export const LOG_SEVERITIES = ['DEBUG', 'INFO', 'NOTICE', 'WARNING', 'ERROR', 'CRITICAL'] as const;
export type LogSeverity = (typeof LOG_SEVERITIES)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger whose lines all carry these fields (e.g. the trace of one request). */
  child(fields: LogFields): Logger;
}

/** Where finished lines go; tests pass an array-backed sink to inspect them. */
export type LogSink = (line: string) => void;

const stdoutSink: LogSink = (line) => {
  process.stdout.write(`${line}\n`);
};

/**
 * Patterns of secrets that must never reach a log line even when nobody registered them:
 * chat webhook URLs carry their credential in the URL itself.
 */
const SECRET_PATTERNS: RegExp[] = [
  /https:\/\/hooks\.slack\.com\/[^\s"'\\]+/g,
  /https:\/\/chat\.googleapis\.com\/v1\/spaces\/[^\s"'\\]+/g,
  /(?<=(?:^|[?&\s"'])(?:key|token|access_token|sig|secret|password)=)[^&\s"'\\]+/g,
  // A token has a digit, punctuation or inner capital, or is long: "bearer credentials" in prose stays.
  /(?<=\b[Bb]earer\s)(?=[A-Za-z][a-z]*[A-Z0-9._~+/=-]|[A-Za-z]{16})[A-Za-z0-9._~+/=-]{8,}/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

/** Values registered at run time (secrets read from Secret Manager, bearer tokens from config). */
const registeredSecrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 6) registeredSecrets.add(value);
}

export function redact(text: string): string {
  let out = text;
  for (const s of registeredSecrets) out = out.split(s).join('[redacted]');
  for (const p of SECRET_PATTERNS) out = out.replace(p, '[redacted]');
  return out;
}

/** An error as log fields, with its cause chain (ENOTFOUND, ECONNREFUSED… live in the cause). */
function serialiseError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & {
    code?: unknown;
    details?: unknown;
    errno?: unknown;
    syscall?: unknown;
  };
  const out: Record<string, unknown> = { name: e.name, message: e.message, code: e.code };
  if (e.details !== undefined) out.details = e.details;
  if (e.syscall !== undefined) out.syscall = e.syscall;
  if (depth === 0) out.stack = e.stack;
  if (e.cause !== undefined && depth < 4) out.cause = serialiseError(e.cause, depth + 1);
  return out;
}

export function createLogger(
  options: { sink?: LogSink; fields?: LogFields; minSeverity?: LogSeverity } = {},
): Logger {
  const sink = options.sink ?? stdoutSink;
  const base = options.fields ?? {};
  const min = LOG_SEVERITIES.indexOf(options.minSeverity ?? 'DEBUG');
  const write = (severity: LogSeverity, message: string, fields?: LogFields) => {
    if (LOG_SEVERITIES.indexOf(severity) < min) return;
    const entry: Record<string, unknown> = { severity, message, ...base };
    for (const [k, v] of Object.entries(fields ?? {})) {
      entry[k] = k === 'err' || k === 'error' ? serialiseError(v) : v;
    }
    let line: string;
    try {
      line = JSON.stringify(entry);
    } catch {
      line = JSON.stringify({ severity, message, note: 'fields were not serialisable' });
    }
    sink(redact(line));
  };
  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARNING', m, f),
    error: (m, f) => write('ERROR', m, f),
    child: (fields) => createLogger({ ...options, sink, fields: { ...base, ...fields } }),
  };
}

/**
 * Fields that tie a log line to the request's trace in Cloud Logging, read from
 * `X-Cloud-Trace-Context` (TRACE/SPAN;o=1) or W3C `traceparent` (00-TRACE-SPAN-01).
 */
export function traceFields(
  headers: Record<string, string | string[] | undefined>,
  projectId: string,
): LogFields {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const cloud = first(headers['x-cloud-trace-context']);
  const parent = first(headers.traceparent);
  let trace: string | undefined;
  let span: string | undefined;
  const m = cloud?.match(/^([0-9a-fA-F]{32})(?:\/(\d+))?/);
  if (m) {
    trace = m[1];
    span = m[2];
  } else {
    const w = parent?.match(/^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/);
    if (w) {
      trace = w[1];
      span = w[2];
    }
  }
  if (!trace) return {};
  const fields: LogFields = {
    'logging.googleapis.com/trace': `projects/${projectId}/traces/${trace}`,
  };
  if (span) fields['logging.googleapis.com/spanId'] = span;
  return fields;
}
