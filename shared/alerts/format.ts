// Renders alerts as Google Chat cardsV2 and Slack blocks messages that stay inside each product's size limits.
import { type Alert, type AlertFinding, alertSubject } from './alert.js';
import type { ChannelKind } from './routing.js';

/** Slack: at most 50 blocks, 3000 chars of section text, 150 of header, 10 fields of 2000. */
export const SLACK_LIMITS = {
  blocks: 50,
  sectionText: 3000,
  header: 150,
  fields: 10,
  fieldText: 2000,
  buttonText: 75,
  text: 4000,
} as const;
/** Google Chat: a message is at most 32,000 bytes; keep a margin for the envelope. */
export const GOOGLE_CHAT_LIMITS = { messageBytes: 32_000, budgetBytes: 30_000 } as const;
/** Items shown before "and N more", whatever the byte budget allows. */
export const MAX_LIST_ITEMS = 15;

export interface AlertView {
  title: string;
  subtitle: string;
  /** One line saying what happened and what to do. */
  summary: string;
  facts: { label: string; value: string }[];
  list: { label: string; items: { head: string; body: string }[]; total: number } | null;
  buttons: { text: string; url: string }[];
  footer: string;
}

export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 1))}…`;
}

export function andMore(n: number): string {
  return `…and ${n} more`;
}

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

export function imageName(alert: Alert): string {
  return alert.image ? `${alert.image.registry}/${alert.image.repository}` : alertSubject(alert);
}

function imageRef(alert: Alert): string {
  if (!alert.image) return alertSubject(alert);
  const tag = alert.image.tags[0];
  return `${imageName(alert)}${tag ? `:${tag}` : ''}@sha256:${shortDigest(alert.image.digest)}`;
}

function findingLine(f: AlertFinding): { head: string; body: string } {
  const fix =
    f.fixedVersion && f.fixState === 'fixed'
      ? `fixed in ${f.fixedVersion}`
      : f.fixState === 'wont-fix'
        ? "won't be fixed"
        : 'no fix yet';
  return {
    head: `${f.id} (${f.severity})`,
    body: `${f.package} ${f.installedVersion} → ${f.fixedVersion ?? '—'} (${fix})`,
  };
}

function daysBetween(from: string, to: string): number {
  return Math.max(0, Math.ceil((Date.parse(to) - Date.parse(from)) / 86_400_000));
}

/** The facts of an alert, independent of where they are shown. */
export function alertView(alert: Alert): AlertView {
  const buttons: AlertView['buttons'] = [];
  if (alert.links.console) buttons.push({ text: 'Open image', url: alert.links.console });
  if (alert.links.check) buttons.push({ text: 'Check verdict', url: alert.links.check });
  const base = {
    subtitle: imageRef(alert),
    buttons,
    footer: alert.image
      ? `Detected ${alert.detectedAt} · digest ${alert.image.digest}`
      : `Detected ${alert.detectedAt}`,
  };
  const tags = alert.image?.tags.length ? alert.image.tags.join(', ') : '(untagged)';
  switch (alert.type) {
    case 'image-denied': {
      const total = alert.totalFindings ?? alert.findings.length;
      const fixable = alert.findings.filter((f) => f.fixState === 'fixed' && f.fixedVersion);
      return {
        ...base,
        title: `Image denied for ${alert.environment}`,
        summary:
          `${imageRef(alert)} is denied for ${alert.environment} by ${alert.ruleIds.join(', ')}.` +
          (fixable.length
            ? ` Rebuild with the fixed versions: ${fixable
                .slice(0, 3)
                .map((f) => `${f.package} ${f.fixedVersion} (${f.id})`)
                .join(', ')}${fixable.length > 3 ? ', …' : ''}.`
            : ''),
        facts: [
          { label: 'Environment', value: alert.environment },
          { label: 'Rules', value: alert.ruleIds.join(', ') },
          { label: 'Tags', value: tags },
          ...(alert.reasons.length ? [{ label: 'Why', value: alert.reasons.join('\n') }] : []),
        ],
        list: total
          ? { label: 'Top findings', items: alert.findings.map(findingLine), total }
          : null,
      };
    }
    case 'rebuild-needed':
      return {
        ...base,
        title: 'Rebuild needed: base image patched',
        summary: `The base ${alert.base.name} of ${imageRef(alert)} was patched on ${alert.base.since}: rebuild on sha256:${shortDigest(alert.base.newDigest)}.`,
        facts: [
          { label: 'Base', value: alert.base.name },
          { label: 'Built on', value: alert.base.oldDigest },
          { label: 'Current base', value: alert.base.newDigest },
          { label: 'Stale since', value: alert.base.since },
          { label: 'Tags', value: tags },
        ],
        list: null,
      };
    case 'attestation-revoked':
      return {
        ...base,
        title: 'Attestation revoked',
        summary: `The attestation of ${imageRef(alert)}${alert.environment ? ` for ${alert.environment}` : ''} was revoked: ${alert.reason}. New deployments will be refused.`,
        facts: [
          ...(alert.environment ? [{ label: 'Environment', value: alert.environment }] : []),
          { label: 'Why', value: alert.reason },
          ...(alert.ruleIds.length ? [{ label: 'Rules', value: alert.ruleIds.join(', ') }] : []),
          ...(alert.keyId ? [{ label: 'Key', value: alert.keyId }] : []),
          { label: 'Tags', value: tags },
        ],
        list: null,
      };
    case 'breakglass-used': {
      const w = alert.workload;
      const workload = [w.cluster, w.namespace, w.kind ? `${w.kind}/${w.name}` : w.name]
        .filter(Boolean)
        .join(' / ');
      return {
        ...base,
        title: `Breakglass used in ${alert.environment}`,
        summary: `${alert.actor} used breakglass to deploy ${workload} in ${alert.environment} with ${alert.images.length} image(s) that policy would refuse.`,
        facts: [
          { label: 'Who', value: alert.actor },
          { label: 'Workload', value: workload },
          { label: 'Environment', value: alert.environment },
          ...(alert.justification ? [{ label: 'Justification', value: alert.justification }] : []),
        ],
        list: {
          label: 'Images',
          items: alert.images.map((i) => ({ head: '', body: i })),
          total: alert.images.length,
        },
      };
    }
    case 'exception-expiring': {
      const days = daysBetween(alert.detectedAt, alert.exception.expiresAt);
      const e = alert.exception;
      return {
        ...base,
        title: `Exception for ${e.vulnerability} expires in ${days} day${days === 1 ? '' : 's'}`,
        summary: `The exception allowing ${e.vulnerability} in ${imageName(alert)} expires on ${e.expiresAt}; after that the image is denied unless it is fixed or the exception renewed.`,
        facts: [
          { label: 'Vulnerability', value: e.vulnerability },
          { label: 'Expires', value: e.expiresAt },
          { label: 'Owner', value: e.owner },
          { label: 'Reason', value: e.reason },
          ...(e.scope ? [{ label: 'Scope', value: e.scope }] : []),
          ...(alert.environment ? [{ label: 'Environment', value: alert.environment }] : []),
        ],
        list: null,
      };
    }
    case 'scan-failed':
      return {
        ...base,
        title: 'Vulnerability scan failed',
        summary: `${alert.scanner} could not scan ${imageRef(alert)}: ${alert.reason}. Without a scan the image cannot pass policy.`,
        facts: [
          { label: 'Scanner', value: alert.scanner },
          ...(alert.status ? [{ label: 'Status', value: alert.status }] : []),
          { label: 'Reason', value: alert.reason },
          ...(alert.deniedIn?.length
            ? [{ label: 'Denied in', value: alert.deniedIn.join(', ') }]
            : []),
          { label: 'Tags', value: tags },
        ],
        list: null,
      };
    case 'fix-grace-ending': {
      const g = alert.grace;
      const days = daysBetween(alert.detectedAt, `${g.endsOn}T00:00:00Z`);
      return {
        ...base,
        title: `Fix grace for ${g.package} ends in ${days} day${days === 1 ? '' : 's'}`,
        summary: `${imageName(alert)} is allowed with ${g.package} ${g.installedVersion} until ${g.endsOn}: fix ${g.fixedVersion} available since ${g.availableSince}. Rebuild with ${g.package} ${g.fixedVersion} before then, or the image is denied${alert.environment ? ` in ${alert.environment}` : ''}.`,
        facts: [
          { label: 'Package', value: `${g.package} ${g.installedVersion} → ${g.fixedVersion}` },
          { label: 'Vulnerabilities', value: g.vulnerabilities },
          { label: 'Fix available since', value: g.availableSince },
          { label: 'Denied from', value: g.endsOn },
          ...(alert.environment ? [{ label: 'Environment', value: alert.environment }] : []),
          { label: 'Tags', value: tags },
        ],
        list: null,
      };
    }
    default: {
      const never: never = alert;
      throw new Error(`unknown alert type ${(never as { type: string }).type}`);
    }
  }
}

/** Plain-text rendering, used as the message's `text` fallback (notifications, old clients). */
export function plainText(alert: Alert, maxChars: number = SLACK_LIMITS.text): string {
  const v = alertView(alert);
  const lines = [v.title, v.summary, ...v.facts.map((f) => `${f.label}: ${f.value}`)];
  if (v.list) {
    lines.push(`${v.list.label}:`);
    lines.push(
      ...fitLines(
        v.list.items.map((i) => `- ${joinItem(i)}`),
        v.list.total,
        1500,
        10,
      ),
    );
  }
  for (const b of v.buttons) lines.push(`${b.text}: ${b.url}`);
  return truncate(lines.join('\n'), maxChars);
}

function joinItem(i: { head: string; body: string }): string {
  return i.head ? `${i.head}: ${i.body}` : i.body;
}

/**
 * The longest prefix of `lines` that fits `maxChars` (joined by newlines) and `maxItems`,
 * followed by "…and N more" for the rest of `total` when anything was cut.
 */
export function fitLines(
  lines: string[],
  total: number,
  maxChars: number,
  maxItems: number,
): string[] {
  const out: string[] = [];
  let used = 0;
  const reserve = andMore(total).length + 1;
  for (let i = 0; i < lines.length && out.length < maxItems; i++) {
    const remainingAfter = total - (i + 1);
    const room = maxChars - used - (remainingAfter > 0 ? reserve : 0);
    const line = truncate(lines[i], Math.min(lines[i].length, 500));
    if (line.length + 1 > room) break;
    out.push(line);
    used += line.length + 1;
  }
  if (total > out.length) out.push(andMore(total - out.length));
  return out;
}

// ---- Slack ----

export interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function slackButtons(buttons: AlertView['buttons']): Record<string, unknown> | null {
  if (!buttons.length) return null;
  return {
    type: 'actions',
    elements: buttons.slice(0, 25).map((b, i) => ({
      type: 'button',
      text: { type: 'plain_text', text: truncate(b.text, SLACK_LIMITS.buttonText), emoji: true },
      url: b.url,
      action_id: `clearance-link-${i}`,
    })),
  };
}

export function slackMessage(alert: Alert): SlackMessage {
  const v = alertView(alert);
  const blocks: Record<string, unknown>[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: truncate(v.title, SLACK_LIMITS.header), emoji: true },
    },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: truncate(
          `*${slackEscape(v.subtitle)}*\n${slackEscape(v.summary)}`,
          SLACK_LIMITS.sectionText,
        ),
      },
    },
  ];
  if (v.facts.length) {
    blocks.push({
      type: 'section',
      fields: v.facts.slice(0, SLACK_LIMITS.fields).map((f) => ({
        type: 'mrkdwn',
        text: truncate(
          `*${slackEscape(f.label)}*\n${slackEscape(f.value)}`,
          SLACK_LIMITS.fieldText,
        ),
      })),
    });
  }
  if (v.list) {
    const heading = `*${slackEscape(v.list.label)}* (${v.list.total})\n`;
    const lines = v.list.items.map((i) =>
      slackEscape(i.head ? `• ${i.head}: ${i.body}` : `• ${i.body}`),
    );
    const body = fitLines(
      lines,
      v.list.total,
      SLACK_LIMITS.sectionText - heading.length,
      MAX_LIST_ITEMS,
    ).join('\n');
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `${heading}${body}` } });
  }
  const actions = slackButtons(v.buttons);
  if (actions) blocks.push(actions);
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(v.footer) }] });
  return { text: plainText(alert), blocks };
}

// ---- Google Chat ----

export interface GoogleChatMessage {
  text: string;
  cardsV2: {
    cardId: string;
    card: {
      header: { title: string; subtitle: string };
      sections: { header?: string; widgets: Record<string, unknown>[] }[];
    };
  }[];
}

function chatEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function decorated(topLabel: string, text: string, max = 2000): Record<string, unknown> {
  return {
    decoratedText: {
      ...(topLabel ? { topLabel: truncate(topLabel, 200) } : {}),
      text: chatEscape(truncate(text, max)),
      wrapText: true,
    },
  };
}

function chatButtons(buttons: AlertView['buttons']): Record<string, unknown>[] {
  if (!buttons.length) return [];
  return [
    {
      buttonList: {
        buttons: buttons.map((b) => ({ text: b.text, onClick: { openLink: { url: b.url } } })),
      },
    },
  ];
}

export function byteLength(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}

/**
 * Builds with `n` list items, shrinking n until the whole message fits Google Chat's byte limit;
 * if the facts alone are too big (long multi-byte values), shortens every text as well.
 */
function fitChat(
  build: (n: number, textMax: number) => GoogleChatMessage,
  max: number,
  budget: number,
): GoogleChatMessage {
  let n = max;
  let textMax = 2000;
  let msg = build(n, textMax);
  while (byteLength(msg) > budget && (n > 0 || textMax > 50)) {
    if (n > 0) n = Math.max(0, Math.min(n - 1, Math.floor((n * budget) / byteLength(msg))));
    else textMax = Math.floor(textMax / 2);
    msg = build(n, textMax);
  }
  return msg;
}

export function googleChatMessage(alert: Alert): GoogleChatMessage {
  const v = alertView(alert);
  const build = (n: number, textMax: number): GoogleChatMessage => {
    const widgets: Record<string, unknown>[] = [
      { textParagraph: { text: chatEscape(truncate(v.summary, textMax * 2)) } },
      ...v.facts.map((f) => decorated(f.label, f.value, textMax)),
    ];
    if (v.list) {
      const shown = v.list.items.slice(0, n);
      widgets.push(
        ...shown.map((i, k) =>
          decorated(k === 0 ? (v.list?.label ?? '') : '', joinItem(i), textMax),
        ),
      );
      if (v.list.total > shown.length)
        widgets.push(decorated('', andMore(v.list.total - shown.length)));
    }
    widgets.push(decorated('', v.footer, textMax));
    widgets.push(...chatButtons(v.buttons));
    return {
      text: truncate(`${v.title}: ${v.summary}`, textMax * 2),
      cardsV2: [
        {
          cardId: `clearance-${alert.type}`,
          card: {
            header: { title: truncate(v.title, 200), subtitle: truncate(v.subtitle, 400) },
            sections: [{ widgets }],
          },
        },
      ],
    };
  };
  return fitChat(build, MAX_LIST_ITEMS, GOOGLE_CHAT_LIMITS.budgetBytes);
}

// ---- Digests ----

function digestLine(alert: Alert): string {
  const v = alertView(alert);
  return `${v.title}: ${v.subtitle}`;
}

export function slackDigest(alerts: Alert[]): SlackMessage {
  const title = `${alerts.length} Clearance alert${alerts.length === 1 ? '' : 's'}`;
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: title, emoji: true } },
  ];
  // One section per alert while blocks last; keep the last block for "and N more".
  const room = SLACK_LIMITS.blocks - blocks.length - 1;
  const shown = alerts.slice(0, room);
  for (const a of shown) {
    const v = alertView(a);
    const link = v.buttons[0] ? `\n<${v.buttons[0].url}|${slackEscape(v.buttons[0].text)}>` : '';
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: truncate(
          `*${slackEscape(v.title)}*\n${slackEscape(v.summary)}${link}`,
          SLACK_LIMITS.sectionText,
        ),
      },
    });
  }
  if (alerts.length > shown.length) {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: andMore(alerts.length - shown.length) }],
    });
  }
  const text = truncate(
    [title, ...fitLines(alerts.map(digestLine), alerts.length, SLACK_LIMITS.text - 200, 1000)].join(
      '\n',
    ),
    SLACK_LIMITS.text,
  );
  return { text, blocks };
}

export function googleChatDigest(alerts: Alert[]): GoogleChatMessage {
  const title = `${alerts.length} Clearance alert${alerts.length === 1 ? '' : 's'}`;
  const build = (n: number, textMax: number): GoogleChatMessage => {
    const shown = alerts.slice(0, n);
    const widgets = shown.map((a) => {
      const v = alertView(a);
      return decorated(v.title, `${v.subtitle}\n${v.summary}`, textMax);
    });
    if (alerts.length > shown.length)
      widgets.push(decorated('', andMore(alerts.length - shown.length)));
    return {
      text: title,
      cardsV2: [
        {
          cardId: 'clearance-digest',
          card: { header: { title, subtitle: 'Digest' }, sections: [{ widgets }] },
        },
      ],
    };
  };
  return fitChat(build, 100, GOOGLE_CHAT_LIMITS.budgetBytes);
}

export function formatAlert(kind: ChannelKind, alert: Alert): GoogleChatMessage | SlackMessage {
  switch (kind) {
    case 'google-chat':
      return googleChatMessage(alert);
    case 'slack':
      return slackMessage(alert);
    default: {
      const never: never = kind;
      throw new Error(`unknown channel kind ${String(never)}`);
    }
  }
}

export function formatDigest(kind: ChannelKind, alerts: Alert[]): GoogleChatMessage | SlackMessage {
  switch (kind) {
    case 'google-chat':
      return googleChatDigest(alerts);
    case 'slack':
      return slackDigest(alerts);
    default: {
      const never: never = kind;
      throw new Error(`unknown channel kind ${String(never)}`);
    }
  }
}
