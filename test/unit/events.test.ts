import { describe, expect, it } from 'vitest';
import { type AssignmentView, mergeAssignment } from '../../src/shared/events.ts';

const offered: AssignmentView = {
  id: 'asg_1',
  incidentId: 'inc_1',
  unitId: 'P1',
  capability: 'police',
  status: 'offered',
  etaS: 90,
  offeredAt: '2026-11-28T10:00:00.000Z',
  crossesJurisdiction: false,
  explanation: { summary: 'P1: nearest capable police', etaS: 90, targetS: 900, lateS: 0, alternatives: [] },
};

describe('mergeAssignment (an assignment:updated applied to what a client holds)', () => {
  it('keeps the explanation the offer carried', () => {
    const { explanation: _, ...update } = { ...offered, status: 'accepted' as const };
    expect(mergeAssignment(offered, update)).toEqual({ ...offered, status: 'accepted' });
  });
  it('takes an update as it is when it has an explanation or nothing is held', () => {
    const other = { ...offered, explanation: { ...offered.explanation!, summary: 'override' } };
    expect(mergeAssignment(offered, other)).toBe(other);
    const { explanation: _, ...bare } = offered;
    expect(mergeAssignment(undefined, bare)).toBe(bare);
  });
});
