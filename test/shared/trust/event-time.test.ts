import { describe, expect, it } from 'vitest';
import { eventTime } from '../../../shared/trust/event-time.js';

const ARRIVAL = new Date('2026-12-01T12:00:00.000Z');

describe('eventTime', () => {
  it('takes the arrival as the event time and keeps a plausible claim as given', () => {
    expect(eventTime(ARRIVAL, '2026-12-01T11:59:30Z')).toEqual({
      at: '2026-12-01T12:00:00.000Z',
      claimedAt: '2026-12-01T11:59:30.000Z',
      clamped: false,
    });
  });

  it('clamps a claim from the future to five minutes after the arrival (a forged 2099)', () => {
    expect(eventTime(ARRIVAL, '2099-01-01T00:00:00Z')).toEqual({
      at: '2026-12-01T12:00:00.000Z',
      claimedAt: '2026-12-01T12:05:00.000Z',
      clamped: true,
    });
  });

  it('clamps an old claim to an hour before the arrival', () => {
    expect(eventTime(ARRIVAL, '2006-01-02T15:04:05Z').claimedAt).toBe('2026-12-01T11:00:00.000Z');
    expect(eventTime(ARRIVAL, '2026-12-01T11:00:00Z').clamped).toBe(false);
  });

  it('keeps no claim when the payload gives none or one that does not parse', () => {
    for (const c of [undefined, null, '', 'yesterday'])
      expect(eventTime(ARRIVAL, c)).toEqual({
        at: '2026-12-01T12:00:00.000Z',
        claimedAt: null,
        clamped: false,
      });
  });

  it('reads an arrival given as a Pub/Sub publishTime string', () => {
    expect(eventTime('2026-12-01T12:00:00.123456Z', null).at).toBe('2026-12-01T12:00:00.123Z');
  });
});
