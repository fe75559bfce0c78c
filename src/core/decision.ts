// Turns a solved row → column mapping into a Decision: assignments with explanations a
// dispatcher can read, pre-emptions, unserved slots with their reasons, and the objective.

import { type Column, crossesJurisdiction, type Row } from './model.ts';
import { addServed, emptyObjective, unservedLateS } from './objective.ts';
import type {
  AssignmentAlternative,
  AssignmentDecision,
  Decision,
  SolverStats,
  UnservedCode,
  UnservedSlot,
} from './types.ts';

/** A unit considered for a row, with its ETA and cost. */
export interface Candidate {
  col: Column;
  etaS: number;
  cost: number;
}

export function fmtS(s: number): string {
  const t = Math.round(Math.abs(s));
  if (t < FMT_CACHED) {
    // Explanations format thousands of durations per decision: each distinct one is built once.
    let f = FMT[t];
    if (f === undefined) {
      f = formatMS(t);
      FMT[t] = f;
    }
    return s < 0 ? `-${f}` : f;
  }
  return `${s < 0 ? '-' : ''}${formatMS(t)}`;
}

/** Durations below this many seconds have their text kept once built (a pure memo). */
const FMT_CACHED = 14_400;
const FMT: (string | undefined)[] = new Array(FMT_CACHED).fill(undefined);

function formatMS(t: number): string {
  const m = Math.floor(t / 60);
  const r = t % 60;
  return `${m}m${String(r).padStart(2, '0')}s`;
}

export interface Solved {
  rows: Row[];
  /** Column chosen per row, null = unserved. */
  chosen: (Candidate | null)[];
  /** Candidates examined per row, for explanations (any order). */
  candidates: Candidate[][];
  /** Capable units that exist at all per capability (free or not), for unserved reasons. */
  capableTotal: (cap: string) => number;
  stats: SolverStats;
}

/** The row each chosen column serves, by column index. */
type TakenBy = (Row | undefined)[];

function altReason(alt: Candidate, chosen: Candidate, takenBy: TakenBy, self: Row): string {
  const other = takenBy[alt.col.index];
  if (other && other !== self) {
    const tag = other.incident.id === self.incident.id ? 'another slot of this incident' : other.incident.id;
    return `reserved for ${tag} (priority ${other.priority}, ETA ${fmtS(alt.etaS)} there)`;
  }
  let reason = `ETA ${fmtS(alt.etaS)}`;
  if (alt.etaS > chosen.etaS) reason += `, ${fmtS(alt.etaS - chosen.etaS)} slower`;
  if (crossesJurisdiction(self, alt.col)) reason += '; outside its home sub-district';
  if (alt.col.boundFor) reason += `; would pre-empt ${alt.col.boundFor.id}`;
  if (alt.etaS <= chosen.etaS) reason += '; costlier overall for the open incidents together';
  return reason;
}

type Why = { code: UnservedCode; reason: string };

function unservedReason(r: Row, cands: Candidate[], takenBy: TakenBy, total: number): Why {
  if (total === 0)
    return { code: 'no_capable_unit', reason: `no unit with capability ${r.capability} exists` };
  if (cands.length === 0)
    return {
      code: 'none_in_reach',
      reason: `no free ${r.capability} unit within reach (${total} capable, all busy or too far)`,
    };
  const holders = new Set<string>();
  for (const c of cands) {
    const o = takenBy[c.col.index];
    if (o) holders.add(`${o.incident.id} (P${o.priority})`);
  }
  if (r.group >= 0)
    return {
      code: 'joint_incomplete',
      reason: `joint force not complete: all ${Object.keys(r.type.requires).join('+')} units or none`,
    };
  return holders.size > 0
    ? { code: 'reserved', reason: `capable units reserved for ${[...holders].slice(0, 3).join(', ')}` }
    : { code: 'none_in_reach', reason: `no free ${r.capability} unit within reach` };
}

const earlier = (a: Candidate, b: Candidate): boolean =>
  a.etaS < b.etaS || (a.etaS === b.etaS && a.col.unit.id < b.col.unit.id);

export function assemble(solved: Solved, now: number, altCount: number, horizonS: number): Decision {
  const { rows, chosen, candidates } = solved;
  // Packed and sized to every column named, so lookups stay in bounds.
  let nCols = 0;
  for (const l of candidates) for (const a of l) if (a.col.index >= nCols) nCols = a.col.index + 1;
  for (const c of chosen) if (c && c.col.index >= nCols) nCols = c.col.index + 1;
  const takenBy: TakenBy = new Array(nCols).fill(undefined);
  rows.forEach((r, i) => {
    const c = chosen[i];
    if (c) takenBy[c.col.index] = r;
  });
  const objective = emptyObjective();
  const assignments: AssignmentDecision[] = [];
  const unserved: UnservedSlot[] = [];
  const preemptions: Decision['preemptions'] = [];
  const noCandidateReason = new Map<string, Why>();
  rows.forEach((r, i) => {
    const c = chosen[i];
    const cands = candidates[i] ?? [];
    if (!c) {
      objective.unservedWeight += r.weight;
      objective.weightedLateS += r.weight * unservedLateS(r.slackS, horizonS);
      // Slots with no candidate at all share one reason per capability (backlogs have thousands).
      let why: Why | undefined;
      if (cands.length === 0 && r.group < 0) {
        why = noCandidateReason.get(r.capability);
        if (!why) {
          why = unservedReason(r, cands, takenBy, solved.capableTotal(r.capability));
          noCandidateReason.set(r.capability, why);
        }
      } else why = unservedReason(r, cands, takenBy, solved.capableTotal(r.capability));
      unserved.push({
        incidentId: r.incident.id,
        capability: r.capability,
        code: why.code,
        reason: why.reason,
      });
      return;
    }
    addServed(objective, r.weight, c.etaS, r.slackS);
    // The best few alternatives by ETA (then unit id), picked without sorting every candidate.
    const top: Candidate[] = [];
    let nearer = 0;
    for (const a of cands) {
      if (a.col === c.col) continue;
      if (a.etaS < c.etaS) nearer++;
      if (altCount <= 0 || (top.length === altCount && !earlier(a, top[altCount - 1]))) continue;
      let p = top.length < altCount ? top.length : altCount - 1;
      if (top.length < altCount) top.push(a);
      while (p > 0 && earlier(a, top[p - 1])) {
        top[p] = top[p - 1];
        p--;
      }
      top[p] = a;
    }
    const alternatives: AssignmentAlternative[] = top.map((a) => ({
      unitId: a.col.unit.id,
      etaS: a.etaS,
      reason: altReason(a, c, takenBy, r),
    }));
    const lateS = Math.max(0, c.etaS - r.slackS);
    const rank =
      nearer === 0
        ? `nearest capable ${r.capability}`
        : `${r.capability} (${nearer} nearer, see alternatives)`;
    const timing = lateS > 0 ? `late by ${fmtS(lateS)}` : `${fmtS(r.slackS - c.etaS)} inside target`;
    const pre = c.col.boundFor ? `; pre-empted from ${c.col.boundFor.id} (P${c.col.boundPriority})` : '';
    const explanation = {
      summary: `${c.col.unit.id}: ${rank}, ETA ${fmtS(c.etaS)}, ${timing}${pre}`,
      etaS: c.etaS,
      targetS: r.type.targetS,
      lateS,
      alternatives,
    };
    // Two literals rather than a spread: the same key order, without a copy per assignment.
    assignments.push(
      c.col.boundFor
        ? {
            incidentId: r.incident.id,
            unitId: c.col.unit.id,
            capability: r.capability,
            etaS: c.etaS,
            preemptedFrom: c.col.boundFor.id,
            crossesJurisdiction: crossesJurisdiction(r, c.col),
            explanation,
          }
        : {
            incidentId: r.incident.id,
            unitId: c.col.unit.id,
            capability: r.capability,
            etaS: c.etaS,
            crossesJurisdiction: crossesJurisdiction(r, c.col),
            explanation,
          },
    );
    if (c.col.boundFor) {
      preemptions.push({
        unitId: c.col.unit.id,
        fromIncidentId: c.col.boundFor.id,
        toIncidentId: r.incident.id,
      });
    }
  });
  return { now, assignments, preemptions, unserved, objective, stats: solved.stats };
}
