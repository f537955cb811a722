import { describe, expect, it } from 'vitest';
import { compareVersions, suggestedFix } from '../../../shared/policy/version.js';

describe('compareVersions', () => {
  it.each([
    ['3.0.11', '3.0.13', -1],
    ['3.0.13', '3.0.9', 1],
    ['1.1.1d-0+deb10u4', '1.1.1d-0+deb10u5', -1],
    ['1.1.1d-0+deb10u3', '1.1.1d-0+deb10u3', 0],
    ['1:1.0', '2.0', 1],
    ['1.0~rc1', '1.0', -1],
    ['1.0', '1.0.1', -1],
    ['v1.2.3', '1.2.4', -1],
    ['3.27.2-3', '3.27.2-3+deb10u1', -1],
  ])('%s vs %s → %i', (a, b, expected) => {
    expect(Math.sign(compareVersions(a, b))).toBe(expected);
    expect(Math.sign(compareVersions(b, a))).toBe(-expected || 0);
  });
});

describe('suggestedFix', () => {
  it('picks the lowest listed fix above the installed version', () => {
    expect(suggestedFix('1.2.0', '1.3.1, 1.2.3')).toBe('1.2.3');
    expect(suggestedFix('1.2.5', '1.3.1, 1.2.3')).toBe('1.3.1');
    expect(suggestedFix('3.0.11', '3.0.13')).toBe('3.0.13');
    expect(suggestedFix('1.0', '')).toBeNull();
  });
});
