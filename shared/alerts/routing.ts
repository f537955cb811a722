// Owner routing: which team, and so which chat spaces, an alert goes to (label override, repository globs, fallback).
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ClearanceError } from '../errors.js';
import { parseImageRef } from '../image-ref/image-ref.js';
import { compileGlob, globProblems } from '../policy/glob.js';
import { type Alert, issueList } from './alert.js';

export const CHANNEL_KINDS = ['google-chat', 'slack'] as const;
export const ChannelKind = z.enum(CHANNEL_KINDS);
export type ChannelKind = z.infer<typeof ChannelKind>;

/**
 * Where a webhook URL lives: a Secret Manager version, an environment variable or a file (the
 * last two for the local stack). The URL itself never appears in the routing document.
 */
export const SecretRef = z
  .string()
  .regex(
    /^(projects\/[^/\s]+\/secrets\/[^/\s]+\/versions\/[^/\s]+|env:[A-Za-z_][A-Za-z0-9_]*|file:\/\S+)$/,
    'expected projects/P/secrets/S/versions/V, env:NAME or file:/absolute/path',
  );
export type SecretRef = z.infer<typeof SecretRef>;

export const Channel = z.strictObject({
  kind: ChannelKind,
  secret: SecretRef,
  /** Stable id of the space for rate limits and de-duplication; not the URL. */
  space: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'letters, digits, ".", "_" or "-" (at most 100)'),
  /** Fold this space's alerts into one message per interval instead of sending each. */
  digest: z.strictObject({ intervalMinutes: z.number().int().min(1).max(1440) }).optional(),
});
export type Channel = z.infer<typeof Channel>;

export const Team = z.strictObject({
  channels: z.array(Channel).min(1),
});
export type Team = z.infer<typeof Team>;

export const RoutingRule = z.strictObject({
  /** Glob over `registry/repository`, e.g. `us-docker.pkg.dev/acme/payments/**` (the policy's glob). */
  repositories: z
    .array(
      z.string().superRefine((pattern, ctx) => {
        for (const message of globProblems(pattern)) ctx.addIssue({ code: 'custom', message });
      }),
    )
    .min(1),
  team: z.string().min(1),
});
export type RoutingRule = z.infer<typeof RoutingRule>;

export const RoutingDocument = z
  .strictObject({
    version: z.literal(1).default(1),
    /** Image labels that may name the owning team, first present wins (over the rules). */
    labelKeys: z.array(z.string().min(1)).default(['owner']),
    teams: z.record(z.string().regex(/^[A-Za-z0-9._-]{1,100}$/), Team),
    /** First matching rule wins. */
    rules: z.array(RoutingRule).default([]),
    /** Channels for alerts no rule or label claims. */
    fallback: z.strictObject({ channels: z.array(Channel).min(1) }).optional(),
    /**
     * The security team's channels: every break-glass use is sent here, besides its owners
     * (without it, break-glass alerts go to the owners or the fallback).
     */
    security: z.strictObject({ channels: z.array(Channel).min(1) }).optional(),
  })
  .superRefine((doc, ctx) => {
    doc.rules.forEach((rule, i) => {
      if (!(rule.team in doc.teams)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'team'],
          message: `unknown team "${rule.team}"`,
        });
      }
    });
    const kinds = new Map<string, string>();
    const all = [
      ...Object.values(doc.teams).flatMap((t) => t.channels),
      ...(doc.fallback?.channels ?? []),
      ...(doc.security?.channels ?? []),
    ];
    for (const c of all) {
      const seen = kinds.get(c.space);
      if (seen && seen !== `${c.kind} ${c.secret}`) {
        ctx.addIssue({
          code: 'custom',
          path: ['teams'],
          message: `space "${c.space}" is declared with different kinds or secrets`,
        });
      }
      kinds.set(c.space, `${c.kind} ${c.secret}`);
    }
  });
export type RoutingDocument = z.infer<typeof RoutingDocument>;
export type RoutingDocumentInput = z.input<typeof RoutingDocument>;

/** Parses a routing document written in YAML or JSON (e.g. the CLEARANCE_ROUTING variable). */
export function parseRoutingDocument(input: string | unknown): RoutingDocument {
  let raw: unknown = input;
  if (typeof input === 'string') {
    try {
      raw = parseYaml(input);
    } catch (err) {
      throw new ClearanceError('invalid-config', 'routing document is not valid YAML or JSON', {
        cause: err,
      });
    }
  }
  const parsed = RoutingDocument.safeParse(raw);
  if (!parsed.success) {
    const issues = issueList(parsed.error);
    throw new ClearanceError('invalid-config', `invalid routing document: ${issues.join('; ')}`, {
      details: { issues },
    });
  }
  return parsed.data;
}

export interface Route {
  team: string | null;
  /** `security`: a break-glass use whose owners are unknown, sent to the security channel only. */
  via: 'label' | 'rule' | 'fallback' | 'security' | 'none';
  channels: Channel[];
}

function ruleMatches(rule: RoutingRule, name: string): boolean {
  return rule.repositories.some((p) => compileGlob(p).test(name));
}

/**
 * The repositories an alert is about: its image's, or for a break-glass of images unknown by
 * digest, those of the references it names (a tag still names its repository).
 */
function repositoriesOf(alert: Alert): string[] {
  if (alert.image) return [`${alert.image.registry}/${alert.image.repository}`];
  if (alert.type !== 'breakglass-used') return [];
  const names: string[] = [];
  for (const image of alert.images) {
    try {
      const ref = parseImageRef(image);
      names.push(`${ref.registry}/${ref.repository}`);
    } catch {
      // a reference that does not parse names no owner; the security channel still hears of it
    }
  }
  return names;
}

/**
 * The channels an alert goes to; a label naming an unknown team is ignored, not an error. A
 * break-glass use goes to the security channel as well as to its owners when they are known.
 */
export function routeAlert(doc: RoutingDocument, alert: Alert): Route {
  const owners = ownerRoute(doc, alert);
  const security = doc.security?.channels ?? [];
  if (alert.type !== 'breakglass-used' || security.length === 0) return owners;
  const known = owners.via === 'label' || owners.via === 'rule';
  return {
    team: owners.team,
    via: known ? owners.via : 'security',
    channels: uniqueSpaces([...security, ...(known ? owners.channels : [])]),
  };
}

function ownerRoute(doc: RoutingDocument, alert: Alert): Route {
  for (const key of doc.labelKeys) {
    const team = alert.labels[key]?.trim();
    if (team && Object.hasOwn(doc.teams, team)) {
      return { team, via: 'label', channels: uniqueSpaces(doc.teams[team].channels) };
    }
  }
  const names = repositoriesOf(alert);
  const rule = doc.rules.find((r) => names.some((name) => ruleMatches(r, name)));
  if (rule) {
    return { team: rule.team, via: 'rule', channels: uniqueSpaces(doc.teams[rule.team].channels) };
  }
  if (doc.fallback) {
    return { team: null, via: 'fallback', channels: uniqueSpaces(doc.fallback.channels) };
  }
  return { team: null, via: 'none', channels: [] };
}

function uniqueSpaces(channels: Channel[]): Channel[] {
  const seen = new Set<string>();
  return channels.filter((c) => !seen.has(c.space) && seen.add(c.space));
}
