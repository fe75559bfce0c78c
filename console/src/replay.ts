// The replay viewer (replay.html): open a replay's events.ndjson and its scenario JSON, then
// play the run on the map at a chosen speed, or scrub it with the time slider — units moving
// and changing colour with their status, incidents appearing and resolving. Runs entirely in
// the browser; no server API is needed (the page is static).

import type { SimEvent } from '../../src/sim/events.ts';
import { $, fmtDuration, h } from './common.ts';
import {
  addLegend,
  createMap,
  drawAreas,
  fitView,
  incidentIcon,
  L,
  toLatLng,
  unitIcon,
  unitZ,
} from './map.ts';
import { checkScenario, parseEventLog, ReplayModel } from './replay-model.ts';

const FEED_LENGTH = 14;

/** Offset minutes of an ISO 8601 time (`+08:00`, `Z`); undefined without one. */
function offsetMinutes(iso: string): number | undefined {
  if (/Z$/i.test(iso)) return 0;
  const m = /([+-])(\d{2}):?(\d{2})$/.exec(iso);
  if (!m) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

function describe(e: SimEvent): string {
  const who = 'unitId' in e && e.unitId ? `${e.unitId} ` : '';
  const inc = 'incidentId' in e && e.incidentId ? e.incidentId : '';
  switch (e.kind) {
    case 'reported':
      return `${inc} reported: ${e.type} (P${e.priority})`;
    case 'assigned':
      return `${who}→ ${inc}, ETA ${fmtDuration(e.etaS)}`;
    case 'declined':
      return `${who}declined ${inc}: ${e.reason}`;
    case 'ack_timeout':
      return `${who}did not answer for ${inc}`;
    case 'preempted':
      return `${who}taken from ${inc} for ${e.toIncidentId}`;
    case 'en_route':
      return `${who}en route to ${inc}`;
    case 'on_scene':
      return `${who}on scene at ${inc}`;
    case 'cleared':
      return `${who}cleared ${inc}`;
    case 'released':
      return `${who}released from ${inc} (${e.reason})`;
    case 'returned':
      return `${who}back home`;
    case 'queued':
      return `${inc} waiting: ${e.open.map((o) => o.capability).join(', ')}`;
    default:
      return `${inc} ${e.kind.replace(/_/g, ' ')}`;
  }
}

class ReplayViewer {
  private readonly map: L.Map;
  private model: ReplayModel | undefined;
  private areas: L.GeoJSON | undefined;
  private t = 0;
  private playing = false;
  private lastFrame = 0;
  private lastPanel = 0;
  private startMs = 0;
  private offsetMin: number | undefined;
  private readonly unitMarkers = new Map<string, { marker: L.Marker; status: string }>();
  private readonly incidentMarkers = new Map<string, { marker: L.Marker; key: string }>();
  private eventsText: string | undefined;
  private scenarioText: string | undefined;

  constructor() {
    this.map = createMap($('#map'));
    addLegend(this.map, ['available', 'offered', 'en_route', 'on_scene']);
    $<HTMLInputElement>('#events-file').addEventListener('change', (ev) => void this.readFile(ev, 'events'));
    $<HTMLInputElement>('#scenario-file').addEventListener(
      'change',
      (ev) => void this.readFile(ev, 'scenario'),
    );
    $('#play').addEventListener('click', () => this.setPlaying(!this.playing));
    $<HTMLInputElement>('#slider').addEventListener('input', (ev) => {
      this.seek(Number((ev.target as HTMLInputElement).value));
    });
  }

  private async readFile(ev: Event, which: 'events' | 'scenario'): Promise<void> {
    const file = (ev.target as HTMLInputElement).files?.[0];
    if (!file) return;
    const text = await file.text();
    if (which === 'events') this.eventsText = text;
    else this.scenarioText = text;
    if (this.eventsText !== undefined && this.scenarioText !== undefined) this.load();
  }

  private load(): void {
    const err = $('#replay-error');
    err.textContent = '';
    this.setPlaying(false);
    let scenario: ReturnType<typeof checkScenario>;
    let events: SimEvent[];
    try {
      scenario = checkScenario(JSON.parse(this.scenarioText ?? ''));
    } catch (e) {
      err.textContent = `Scenario: ${(e as Error).message}`;
      return;
    }
    try {
      events = parseEventLog(this.eventsText ?? '');
    } catch (e) {
      err.textContent = `Events: ${(e as Error).message}`;
      return;
    }
    this.model = new ReplayModel(scenario, events);
    this.startMs = Date.parse(scenario.start);
    this.offsetMin = offsetMinutes(scenario.start);
    for (const m of this.unitMarkers.values()) m.marker.remove();
    for (const m of this.incidentMarkers.values()) m.marker.remove();
    this.unitMarkers.clear();
    this.incidentMarkers.clear();
    this.areas?.remove();
    const { layer, bounds } = drawAreas(this.map, scenario.areas);
    this.areas = layer;
    fitView(
      this.map,
      bounds,
      scenario.units.map((u) => u.home),
    );
    const slider = $<HTMLInputElement>('#slider');
    slider.max = String(Math.ceil(this.model.endT));
    slider.disabled = false;
    $<HTMLButtonElement>('#play').disabled = false;
    $('#replay-info').textContent =
      `${scenario.name}: ${this.model.incidentCount} incidents, ${this.model.unitCount} units, ${events.length} records, ${fmtDuration(this.model.endT)}`;
    document.body.dataset.loaded = 'true';
    this.seek(0);
  }

  private setPlaying(on: boolean): void {
    if (on && !this.model) return;
    if (on && this.model && this.t >= this.model.endT) this.seek(0);
    this.playing = on;
    $('#play').textContent = on ? 'Pause' : 'Play';
    document.body.dataset.playing = String(on);
    if (on) {
      this.lastFrame = performance.now();
      requestAnimationFrame((ts) => this.frame(ts));
    } else this.drawPanel(this.t);
  }

  private frame(ts: number): void {
    if (!this.playing || !this.model) return;
    const speed = Number($<HTMLSelectElement>('#speed').value) || 1;
    const dt = Math.max(0, Math.min(1000, ts - this.lastFrame)) / 1000;
    this.lastFrame = ts;
    const next = Math.min(this.model.endT, this.t + dt * speed);
    this.seek(next, true);
    if (next >= this.model.endT) {
      this.setPlaying(false);
      return;
    }
    requestAnimationFrame((t2) => this.frame(t2));
  }

  private seek(t: number, fromPlayback = false): void {
    const model = this.model;
    if (!model) return;
    this.t = Math.max(0, Math.min(model.endT, t));
    const slider = $<HTMLInputElement>('#slider');
    if (fromPlayback) slider.value = String(Math.floor(this.t));
    this.drawAt(this.t);
    const now = performance.now();
    if (!fromPlayback || now - this.lastPanel > 250) {
      this.lastPanel = now;
      this.drawPanel(this.t);
    }
  }

  private clockText(t: number): string {
    if (!Number.isFinite(this.startMs)) return `+${fmtDuration(t)}`;
    const ms = this.startMs + t * 1000 + (this.offsetMin ?? -new Date().getTimezoneOffset()) * 60_000;
    return new Date(ms).toISOString().slice(11, 19);
  }

  private drawAt(t: number): void {
    const model = this.model;
    if (!model) return;
    const time = $('#replay-time');
    time.dataset.t = String(Math.floor(t));
    time.textContent = `${this.clockText(t)}  (+${fmtDuration(t)})`;

    for (const u of model.unitsAt(t)) {
      const cur = this.unitMarkers.get(u.id);
      if (!cur) {
        const marker = L.marker(toLatLng(u.position), {
          icon: unitIcon(u.id, u.status),
          keyboard: false,
          zIndexOffset: unitZ(u.status),
        })
          .bindTooltip(() => {
            const now = model.unitsAt(this.t).find((x) => x.id === u.id);
            return `${u.id}${u.department ? ` · ${u.department}` : ''}<br>${now?.status.replace('_', ' ') ?? ''}${now?.incidentId ? ` → ${now.incidentId}` : ''}`;
          })
          .addTo(this.map);
        this.unitMarkers.set(u.id, { marker, status: u.status });
      } else {
        cur.marker.setLatLng(toLatLng(u.position));
        if (cur.status !== u.status) {
          cur.marker.setIcon(unitIcon(u.id, u.status));
          cur.marker.setZIndexOffset(unitZ(u.status));
          cur.status = u.status;
        }
      }
    }

    const seen = new Set<string>();
    for (const i of model.incidentsAt(t)) {
      seen.add(i.id);
      const key = `${i.status}`;
      const cur = this.incidentMarkers.get(i.id);
      if (!cur) {
        const marker = L.marker(toLatLng(i.location), {
          icon: incidentIcon(i.id, i.priority, i.status),
          zIndexOffset: 1000 + (5 - i.priority) * 100,
          keyboard: false,
        })
          .bindTooltip(`${i.id} · ${i.type} (P${i.priority})`)
          .addTo(this.map);
        this.incidentMarkers.set(i.id, { marker, key });
      } else if (cur.key !== key) {
        cur.marker.setIcon(incidentIcon(i.id, i.priority, i.status));
        cur.key = key;
      }
    }
    for (const [id, m] of this.incidentMarkers) {
      if (!seen.has(id)) {
        m.marker.remove();
        this.incidentMarkers.delete(id);
      }
    }
  }

  private drawPanel(t: number): void {
    const model = this.model;
    if (!model) return;
    const c = model.countsAt(t);
    $('#replay-counts').replaceChildren(
      h('dt', {}, 'Reported'),
      h('dd', { 'data-count': 'reported' }, String(c.reported)),
      h('dt', {}, 'Open'),
      h('dd', { 'data-count': 'open' }, String(c.open)),
      h('dt', {}, 'Waiting'),
      h('dd', { 'data-count': 'queued' }, String(c.queued)),
      h('dt', {}, 'Resolved'),
      h('dd', { 'data-count': 'resolved' }, String(c.resolved)),
      h('dt', {}, 'Busy units'),
      h('dd', { 'data-count': 'busy' }, `${c.busyUnits}/${model.unitCount}`),
    );
    $('#feed').replaceChildren(
      ...model
        .recentEvents(t, FEED_LENGTH)
        .map((e) =>
          h(
            'li',
            { class: `feed-${e.kind}` },
            h('span', { class: 'tl-at' }, this.clockText(e.t)),
            h('span', { class: 'tl-kind' }, e.kind.replace(/_/g, ' ')),
            h('span', {}, describe(e)),
          ),
        ),
    );
  }
}

new ReplayViewer();
