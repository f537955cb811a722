import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Alert, parseAlert } from '../../../shared/alerts/alert.js';
import {
  byteLength,
  fitLines,
  GOOGLE_CHAT_LIMITS,
  googleChatDigest,
  googleChatMessage,
  SLACK_LIMITS,
  slackDigest,
  slackMessage,
} from '../../../shared/alerts/format.js';
import { fixturePath } from '../real-world-fixtures.js';
import { allAlerts, deniedAlert, digestFor } from './samples.js';

/** n findings; `pad` lengthens package and version strings (each at most 500 characters). */
function manyFindings(n: number, pad = 0): Alert {
  const findings = Array.from({ length: n }, (_, i) => ({
    id: `CVE-2024-${String(10000 + i)}`,
    package: `pkg-${i}${'x'.repeat(pad)}`,
    installedVersion: `1.0.0${'-r'.repeat(pad / 2)}`,
    fixedVersion: `1.0.${i + 1}${'-é'.repeat(pad / 2)}`,
    severity: 'HIGH' as const,
    fixState: 'fixed' as const,
  }));
  return parseAlert(deniedAlert({ findings, totalFindings: n } as never));
}

type SlackBlock = { type: string; text?: { text: string }; fields?: { text: string }[] };

function assertSlackLimits(msg: { text: string; blocks: Record<string, unknown>[] }) {
  const blocks = msg.blocks as SlackBlock[];
  expect(blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
  for (const b of blocks) {
    if (b.type === 'header') expect(b.text?.text.length).toBeLessThanOrEqual(SLACK_LIMITS.header);
    if (b.type === 'section') {
      if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(SLACK_LIMITS.sectionText);
      expect(b.fields?.length ?? 0).toBeLessThanOrEqual(SLACK_LIMITS.fields);
      for (const f of b.fields ?? []) {
        expect(f.text.length).toBeLessThanOrEqual(SLACK_LIMITS.fieldText);
      }
    }
  }
  expect(msg.text.length).toBeLessThanOrEqual(SLACK_LIMITS.text);
}

describe('Google Chat cardsV2', () => {
  it('shows a denied image with its rule, finding ids and fixed versions, and link buttons', () => {
    const msg = googleChatMessage(parseAlert(deniedAlert()));
    expect(msg.cardsV2).toHaveLength(1);
    const card = msg.cardsV2[0].card;
    expect(card.header.title).toBe('Image denied for prod');
    expect(card.header.subtitle).toBe(
      'us-docker.pkg.dev/acme-prod/payments/api:1.4.2@sha256:aaaaaaaaaaaa',
    );
    const widgets = card.sections[0].widgets;
    const texts = widgets
      .map((w) => (w.decoratedText as { text?: string } | undefined)?.text ?? '')
      .join('\n');
    expect(texts).toContain('vulnerabilities.maximumFixableSeverity');
    expect(texts).toContain('CVE-2023-5363 (HIGH): openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2');
    expect(texts).toContain('CVE-2023-4911 (HIGH): glibc 2.36-9+deb12u1 → 2.36-9+deb12u3');
    expect(texts).toContain("CVE-2005-2541 (LOW): tar 1.34+dfsg-1.2 → — (won't be fixed)");
    expect(widgets.at(-1)).toEqual({
      buttonList: {
        buttons: [
          {
            text: 'Open image',
            onClick: { openLink: { url: deniedAlert().links?.console } },
          },
          { text: 'Check verdict', onClick: { openLink: { url: deniedAlert().links?.check } } },
        ],
      },
    });
    expect(msg.text).toMatch(/^Image denied for prod: /);
  });

  it('cuts a long findings list with "and N more" and stays under 32,000 bytes', () => {
    const msg = googleChatMessage(manyFindings(400, 480));
    expect(byteLength(msg)).toBeLessThanOrEqual(GOOGLE_CHAT_LIMITS.messageBytes);
    const widgets = msg.cardsV2[0].card.sections[0].widgets;
    const shown = widgets.filter((w) =>
      String((w.decoratedText as { text?: string } | undefined)?.text ?? '').startsWith(
        'CVE-2024-',
      ),
    ).length;
    expect(shown).toBeGreaterThan(0);
    expect(shown).toBeLessThan(400);
    const more = widgets.find((w) =>
      String((w.decoratedText as { text?: string } | undefined)?.text ?? '').startsWith('…and'),
    );
    expect((more?.decoratedText as { text?: string } | undefined)?.text).toBe(
      `…and ${400 - shown} more`,
    );
  });

  it('stays under the limit even when every fact is long multi-byte text', () => {
    const reasons = Array.from({ length: 50 }, () => '€'.repeat(2000));
    const msg = googleChatMessage(
      parseAlert(deniedAlert({ reasons, environment: '€'.repeat(100) } as never)),
    );
    expect(byteLength(msg)).toBeLessThanOrEqual(GOOGLE_CHAT_LIMITS.messageBytes);
  });

  it('escapes markup in values', () => {
    const msg = googleChatMessage(
      parseAlert({ ...allAlerts()[5], reason: 'bad <b>tag</b> & more' } as never),
    );
    expect(JSON.stringify(msg)).toContain('bad &lt;b&gt;tag&lt;/b&gt; &amp; more');
  });

  it('renders every alert type with a header and the facts', () => {
    for (const a of allAlerts()) {
      const msg = googleChatMessage(parseAlert(a));
      expect(msg.cardsV2[0].card.header.title.length).toBeGreaterThan(0);
      expect(msg.cardsV2[0].cardId).toBe(`clearance-${a.type}`);
      expect(byteLength(msg)).toBeLessThanOrEqual(GOOGLE_CHAT_LIMITS.messageBytes);
    }
  });
});

describe('break-glass of an image unknown by digest', () => {
  it('names the workload as subject in both formats, with no digest footer', () => {
    const sample = allAlerts().find((a) => a.type === 'breakglass-used');
    const { image: _image, ...rest } = sample as Alert;
    const alert = parseAlert({ ...rest, images: ['us-docker.pkg.dev/acme-prod/payments/api:2.0'] });
    const chat = JSON.stringify(googleChatMessage(alert));
    const slack = JSON.stringify(slackMessage(alert));
    for (const text of [chat, slack]) {
      expect(text).toContain('workload prod-eu/payments/Deployment/api');
      expect(text).toContain('us-docker.pkg.dev/acme-prod/payments/api:2.0');
      expect(text).not.toContain('digest sha256');
    }
  });
});

describe('Slack blocks', () => {
  it('has the shape of real incoming-webhook messages (text + header/section mrkdwn blocks)', () => {
    const fixture = JSON.parse(
      readFileSync(fixturePath('chat/slack-blocks-connaisseur-alert.json'), 'utf8'),
    ) as { text: string; blocks: { type: string; text?: { type: string } }[] };
    const msg = slackMessage(parseAlert(deniedAlert()));
    expect(typeof msg.text).toBe(typeof fixture.text);
    const fixtureSection = fixture.blocks.find((b) => b.type === 'section');
    const ours = msg.blocks.find((b) => b.type === 'section' && 'text' in b) as {
      text: { type: string };
    };
    expect(ours.text.type).toBe(fixtureSection?.text?.type);
  });

  it('lists finding ids and fixed versions in a section', () => {
    const msg = slackMessage(parseAlert(deniedAlert()));
    const json = JSON.stringify(msg.blocks);
    expect(json).toContain('CVE-2023-5363 (HIGH): openssl 3.0.11-1~deb12u1 → 3.0.11-1~deb12u2');
    expect(json).toContain('*Rules*\\nvulnerabilities.maximumFixableSeverity');
    expect(msg.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: 'Image denied for prod', emoji: true },
    });
    expect(msg.text).toContain('CVE-2023-5363');
    assertSlackLimits(msg);
  });

  it('cuts 500 findings to fit 3000 characters and says how many more', () => {
    const msg = slackMessage(manyFindings(500, 100));
    assertSlackLimits(msg);
    const list = (msg.blocks as SlackBlock[]).find((b) =>
      b.text?.text.startsWith('*Top findings*'),
    );
    const lines = list?.text?.text.split('\n') ?? [];
    const shown = lines.filter((l) => l.startsWith('• ')).length;
    expect(shown).toBeGreaterThan(0);
    expect(lines.at(-1)).toBe(`…and ${500 - shown} more`);
    expect(lines[0]).toBe('*Top findings* (500)');
  });

  it('truncates an over-long header to 150 characters', () => {
    const expiring = allAlerts()[4] as { exception: Record<string, unknown> };
    const msg = slackMessage(
      parseAlert({
        ...expiring,
        exception: { ...expiring.exception, vulnerability: 'V'.repeat(200) },
      } as never),
    );
    const header = msg.blocks[0] as { text: { text: string } };
    expect(header.text.text.length).toBe(150);
    expect(header.text.text.endsWith('…')).toBe(true);
  });

  it('escapes &, < and > in mrkdwn', () => {
    const msg = slackMessage(parseAlert({ ...allAlerts()[5], reason: '<!channel> & co' } as never));
    const json = JSON.stringify(msg.blocks);
    expect(json).toContain('&lt;!channel&gt; &amp; co');
    expect(json).not.toContain('<!channel>');
  });

  it('renders every alert type within the limits', () => {
    for (const a of allAlerts()) assertSlackLimits(slackMessage(parseAlert(a)));
  });
});

describe('digests', () => {
  const alerts = Array.from({ length: 120 }, (_, i) =>
    parseAlert(deniedAlert({ image: { ...deniedAlert().image, digest: digestFor(i) } } as never)),
  );

  it('folds 120 alerts into one Slack message of at most 50 blocks ending with "and N more"', () => {
    const msg = slackDigest(alerts);
    assertSlackLimits(msg);
    expect(msg.blocks).toHaveLength(50);
    const shown = msg.blocks.filter((b) => b.type === 'section').length;
    expect(JSON.stringify(msg.blocks.at(-1))).toContain(`…and ${120 - shown} more`);
    expect(msg.text.startsWith('120 Clearance alerts')).toBe(true);
  });

  it('folds them into one Google Chat card under the byte limit', () => {
    const msg = googleChatDigest(alerts);
    expect(byteLength(msg)).toBeLessThanOrEqual(GOOGLE_CHAT_LIMITS.messageBytes);
    const widgets = msg.cardsV2[0].card.sections[0].widgets;
    const last = widgets.at(-1)?.decoratedText as { text: string };
    expect(last.text).toBe(`…and ${120 - (widgets.length - 1)} more`);
  });
});

describe('fitLines', () => {
  it('keeps everything when it fits', () => {
    expect(fitLines(['a', 'b'], 2, 100, 10)).toEqual(['a', 'b']);
  });
  it('counts items that were never listed in "and N more"', () => {
    expect(fitLines(['a', 'b'], 7, 100, 10)).toEqual(['a', 'b', '…and 5 more']);
  });
  it('stops at maxItems and at maxChars, leaving room for the tail', () => {
    expect(fitLines(['a', 'b', 'c'], 3, 100, 1)).toEqual(['a', '…and 2 more']);
    const out = fitLines(['x'.repeat(10), 'y'.repeat(10), 'z'.repeat(10)], 3, 30, 10);
    expect(out.join('\n').length).toBeLessThanOrEqual(30);
    expect(out.at(-1)).toMatch(/^…and \d more$/);
  });
});
