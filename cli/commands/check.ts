// `clearance check IMAGE`: asks checkImage whether an image may be deployed; exit 0 allow, 1 deny, 2 error.
import { parseArgs } from 'node:util';
import { z } from 'zod';

const USAGE = `usage: clearance check IMAGE [--env ENV] [--url URL] [--token TOKEN | --id-token] [--json]

  --env ENV     environment to judge for (default: the service's default, usually prod)
  --url URL     checkImage base URL (default: $CLEARANCE_URL)
  --token T     bearer token (default: $CLEARANCE_TOKEN)
  --id-token    send a Google ID token for the URL (Application Default Credentials)
  --json        print the answer as JSON
  --timeout S   seconds to wait for the answer (default 30)

exit codes: 0 allow, 1 deny, 2 error`;

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

export interface CheckIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
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
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
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

export async function run(args: string[], io: CheckIo = defaultIo()): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  const parse = (a: string[]) =>
    parseArgs({
      args: a,
      allowPositionals: true,
      options: {
        env: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        'id-token': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        timeout: { type: 'string', default: '30' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  try {
    parsed = parse(args);
  } catch (err) {
    io.err(`clearance check: ${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(`${USAGE}\n`);
    return 0;
  }
  const fail = (message: string) => {
    io.err(`clearance check: ${message}\n`);
    return 2;
  };
  if (positionals.length !== 1) return fail(`expected one IMAGE\n${USAGE}`);
  const image = positionals[0] as string;
  const base = (values.url ?? io.env.CLEARANCE_URL ?? '').replace(/\/+$/, '');
  if (!base) return fail('no service URL: pass --url or set CLEARANCE_URL');
  let url: URL;
  try {
    url = new URL(`${base}/v1/check`);
  } catch {
    return fail(`invalid URL ${JSON.stringify(base)}`);
  }
  const seconds = Number(values.timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) return fail('--timeout must be a positive number');
  url.searchParams.set('image', image);
  if (values.env) url.searchParams.set('env', values.env);

  let token = values.token ?? io.env.CLEARANCE_TOKEN;
  if (values['id-token']) {
    try {
      token = await io.idToken(base);
    } catch (err) {
      return fail(`could not get an ID token: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!token) return fail('no credentials: pass --token, set CLEARANCE_TOKEN, or use --id-token');

  let res: Response;
  try {
    res = await io.fetch(url, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(seconds * 1000),
    });
  } catch (err) {
    return fail(`could not reach ${base}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail(`${base} answered HTTP ${res.status} with a body that is not JSON`);
  }
  if (res.status !== 200) {
    const e = ErrorBody.safeParse(body);
    return fail(
      e.success
        ? `HTTP ${res.status} ${e.data.error.code}: ${e.data.error.message}${
            e.data.error.requestId ? ` (request ${e.data.error.requestId})` : ''
          }`
        : `HTTP ${res.status}`,
    );
  }
  const answer = CheckAnswerView.safeParse(body);
  if (!answer.success)
    return fail('the answer is not a check answer (is --url the checkImage URL?)');
  io.out(values.json ? `${JSON.stringify(body, null, 2)}\n` : formatAnswer(answer.data));
  return answer.data.decision === 'allow' ? 0 : 1;
}
