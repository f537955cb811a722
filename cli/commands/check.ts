// `clearance check IMAGE`: asks checkImage whether an image may be deployed; exit 0 allow, 1 deny, 3 the check unavailable.
import { z } from 'zod';
import {
  ConfigError,
  EXIT,
  type Io,
  parseCommand,
  processIo,
  report,
  seconds,
  UnavailableError,
  UsageError,
} from '../lib/command.js';

export const CHECK_USAGE = `usage: clearance check IMAGE [--env ENV] [--url URL] [--token TOKEN | --id-token] [--json] [--timeout S]

Asks the deploy-time check (checkImage) whether IMAGE (REGISTRY/REPO:TAG or @sha256:…) may be
deployed, and prints the decision with each reason and its fix.

  --env ENV     environment to judge for (default: the service's default, usually prod)
  --url URL     checkImage base URL (default: $CLEARANCE_URL)
  --token T     bearer token (default: $CLEARANCE_TOKEN)
  --id-token    send a Google ID token for the URL (application-default credentials)
  --json        print the answer as JSON
  --timeout S   seconds to wait for the answer (default 30)

exit codes: 0 allow, 1 denied by policy, 2 usage or configuration error (bad arguments, no URL,
no or refused credentials), 3 the check itself unavailable (unreachable, timed out, HTTP 5xx, or a
fail-closed deny caused by an outage: reason check.unavailable)`;

const Reason = z.object({
  ruleId: z.string(),
  level: z.enum(['deny', 'warn']),
  message: z.string(),
  remediation: z.string().nullable().optional(),
});

/** The answer as the CLI reads it: the fields it prints, parsed at the boundary. */
export const CheckAnswerView = z.object({
  image: z.string(),
  digest: z.string().nullable(),
  environment: z.string(),
  decision: z.enum(['allow', 'deny']),
  verdict: z.string(),
  mode: z.string(),
  reasons: z.array(Reason),
  attestation: z
    .object({ format: z.string(), keyId: z.string(), occurrence: z.string().nullable() })
    .nullable(),
  decidedAt: z.string().nullable(),
  policyHash: z.string().nullable(),
});
export type CheckAnswerView = z.infer<typeof CheckAnswerView>;

const ErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), requestId: z.string().optional() }),
});

export interface CheckIo extends Io {
  fetch: typeof fetch;
  /** Mints an ID token for the audience (google-auth-library by default). */
  idToken: (audience: string) => Promise<string>;
}

async function googleIdToken(audience: string): Promise<string> {
  const { GoogleAuth } = await import('google-auth-library');
  const client = await new GoogleAuth().getIdTokenClient(audience);
  return client.idTokenProvider.fetchIdToken(audience);
}

const defaultIo = (): CheckIo => ({
  ...processIo(),
  fetch: globalThis.fetch,
  idToken: googleIdToken,
});

/** The human-readable form: decision first, then what was judged, then each reason with its fix. */
export function formatAnswer(a: CheckAnswerView): string {
  const lines = [
    `${a.decision === 'allow' ? 'ALLOW' : 'DENY'}  ${a.image}`,
    `  digest:      ${a.digest ?? '(not resolved)'}`,
    `  environment: ${a.environment} (${a.mode})`,
    `  verdict:     ${a.verdict}${a.decidedAt ? `, decided ${a.decidedAt}` : ''}`,
  ];
  if (a.policyHash) lines.push(`  policy:      ${a.policyHash}`);
  lines.push(
    `  attestation: ${
      a.attestation
        ? `${a.attestation.format} ${a.attestation.occurrence ?? ''} (${a.attestation.keyId})`.replace(
            '  ',
            ' ',
          )
        : 'none'
    }`,
  );
  if (a.reasons.length > 0) {
    lines.push('  reasons:');
    for (const r of a.reasons) {
      lines.push(`    ${r.level === 'deny' ? 'x' : '!'} ${r.ruleId}: ${r.message}`);
      if (r.remediation) lines.push(`      fix: ${r.remediation}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** A deny the check made because it could not read the ledger or the policy: an outage, not a finding. */
export function deniedByOutage(a: CheckAnswerView): boolean {
  return (
    a.decision === 'deny' &&
    a.reasons.some((r) => r.level === 'deny' && r.ruleId === 'check.unavailable')
  );
}

async function check(args: string[], io: CheckIo): Promise<number> {
  const parsed = parseCommand(io, args, CHECK_USAGE, {
    env: { type: 'string' },
    url: { type: 'string' },
    token: { type: 'string' },
    'id-token': { type: 'boolean' },
    json: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (!parsed) return EXIT.ok;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('expected one IMAGE', CHECK_USAGE);
  const image = positionals[0] as string;
  const base = (values.url ?? io.env.CLEARANCE_URL ?? '').replace(/\/+$/, '');
  if (!base) throw new UsageError('no service URL: pass --url or set CLEARANCE_URL', CHECK_USAGE);
  let url: URL;
  try {
    url = new URL(`${base}/v1/check`);
  } catch {
    throw new UsageError(`invalid URL ${JSON.stringify(base)}`, CHECK_USAGE);
  }
  const timeoutMs = seconds(values.timeout, 30, 'timeout', CHECK_USAGE);
  url.searchParams.set('image', image);
  if (values.env) url.searchParams.set('env', values.env);

  let token = values.token ?? io.env.CLEARANCE_TOKEN;
  if (values['id-token']) {
    try {
      token = await io.idToken(base);
    } catch (err) {
      throw new ConfigError(
        `could not get an ID token (run \`gcloud auth application-default login\`, or use a service account): ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      );
    }
  }
  if (!token) {
    throw new UsageError(
      'no credentials: pass --token, set CLEARANCE_TOKEN, or use --id-token',
      CHECK_USAGE,
    );
  }

  let res: Response;
  let text: string;
  try {
    res = await io.fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    const why =
      err instanceof Error && err.name === 'TimeoutError'
        ? `no answer within ${timeoutMs / 1000} s`
        : err instanceof Error
          ? ((err.cause as Error | undefined)?.message ?? err.message)
          : String(err);
    throw new UnavailableError(`could not reach ${base}: ${why}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const e = new Error(`${base} answered HTTP ${res.status} with a body that is not JSON`);
    throw res.status >= 500
      ? new UnavailableError(e.message)
      : new ConfigError(`${e.message} (is --url the checkImage URL?)`);
  }
  if (res.status !== 200) {
    const e = ErrorBody.safeParse(body);
    const message = e.success
      ? `HTTP ${res.status} ${e.data.error.code}: ${e.data.error.message}${
          e.data.error.requestId ? ` (request ${e.data.error.requestId})` : ''
        }`
      : `HTTP ${res.status}`;
    throw res.status >= 500 ? new UnavailableError(message) : new ConfigError(message);
  }
  const answer = CheckAnswerView.safeParse(body);
  if (!answer.success) {
    throw new ConfigError('the answer is not a check answer (is --url the checkImage URL?)');
  }
  io.out(values.json ? `${JSON.stringify(body, null, 2)}\n` : formatAnswer(answer.data));
  if (answer.data.decision === 'allow') return EXIT.ok;
  if (deniedByOutage(answer.data)) {
    io.err(
      'clearance: the check could not read its store and denied (fail closed); retry, or see the service logs\n',
    );
    return EXIT.unavailable;
  }
  return EXIT.denied;
}

export async function run(args: string[], io: CheckIo = defaultIo()): Promise<number> {
  try {
    return await check(args, io);
  } catch (err) {
    return report(io, err, () => false);
  }
}
