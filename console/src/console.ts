// The dispatcher console (index.html): the district map with live units and incidents, the
// queue of open incidents with countdowns to their targets, the engine's explanation of each
// assignment, alerts with acknowledgement, the KPI strip, and the dispatcher's actions
// (report an incident by clicking the map, assign / reassign, cancel, close) — all through
// the same /v1 API and socket stream as any other client.
//
// Start-up: read the stream head (GET /v1/messages), load the snapshot (config, open
// incidents, units, active assignments, alerts), then connect with `auth.lastSeq` = that
// head, so nothing published in between is lost; every reconnection resumes from the last
// seq applied.

import type { IncidentType, LonLat } from '../../src/core/types.ts';
import type { IncidentDetailView } from '../../src/engine/api.ts';
import {
  type AlertView,
  type AssignmentView,
  type IncidentView,
  mergeAssignment,
  type UnitView,
} from '../../src/shared/events.ts';
import {
  $,
  Api,
  ApiError,
  type ConnectionState,
  catalogMap,
  decodeToken,
  errorText,
  fmtClock,
  fmtDuration,
  fmtLonLat,
  h,
  login,
  logout as logoutFrom,
  randomKey,
  STATUS_LABEL,
  Stream,
  type TokenClaims,
  toast,
  typeLabel,
} from './common.ts';
import { mountFollowUpPanel } from './followup-panel.ts';
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

const TOKEN_KEY = 'dispatch.console.token';
const CONSOLE_ROLES = ['dispatcher', 'admin', 'planner'];
const ACTIVE_ASSIGNMENT = new Set<AssignmentView['status']>(['offered', 'accepted', 'en_route', 'on_scene']);
const OPEN_INCIDENT = new Set<IncidentView['status']>([
  'queued',
  'assigned',
  'en_route',
  'on_scene',
  'resolved',
]);
const BUSY_UNIT = new Set<UnitView['status']>(['offered', 'en_route', 'on_scene']);
const KPI_REFRESH_MS = 15_000;

const roleCheck = (c: TokenClaims | undefined): string | undefined =>
  c?.role && CONSOLE_ROLES.includes(c.role)
    ? undefined
    : 'This console needs a dispatcher token (planner and admin tokens can watch).';

function distanceM(a: LonLat, b: LonLat): number {
  const R = 6_371_008.8;
  const rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad;
  const dLon = (b[0] - a[0]) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(s)));
}

const fmtKm = (m: number): string => (m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`);

class ConsoleApp {
  private readonly map: L.Map;
  private catalog = new Map<string, IncidentType>();
  private readonly incidents = new Map<string, IncidentView>();
  private readonly units = new Map<string, UnitView>();
  private readonly assignments = new Map<string, AssignmentView>();
  private readonly alerts = new Map<string, AlertView>();
  private readonly unitMarkers = new Map<string, { marker: L.Marker; status: string }>();
  private readonly incidentMarkers = new Map<string, { marker: L.Marker; key: string }>();
  private selectedId: string | undefined;
  private detail: IncidentDetailView | undefined;
  private readonly lines = L.layerGroup();
  private stream!: Stream;
  private renderQueued = false;
  private detailTimer: number | undefined;
  private kpiTimer: number | undefined;
  private confirmCancel = false;
  private readonly queueRows = new Map<
    string,
    {
      li: HTMLLIElement;
      prio: HTMLElement;
      type: HTMLElement;
      sub: HTMLElement;
      cd: HTMLElement;
      sig: string;
    }
  >();
  /** Signature of what the detail panel shows (re-rendered only when it changes). */
  private detailSig = '';
  private readonly alertRows = new Map<string, HTMLLIElement>();
  private optionsSig = '';
  /** Assignments whose alternatives the dispatcher opened (kept open across updates). */
  private readonly openAlternatives = new Set<string>();

  constructor(
    private readonly api: Api,
    private readonly claims: TokenClaims | undefined,
  ) {
    this.map = createMap($('#map'));
    this.lines.addTo(this.map);
    addLegend(this.map, ['available', 'offered', 'en_route', 'on_scene', 'off_duty', 'out_of_service']);
    this.map.on('click', (e: L.LeafletMouseEvent) => this.openReportForm(e.latlng));
    const labels = () => $('#map').classList.toggle('labels-on', this.map.getZoom() >= 14.5);
    this.map.on('zoomend', labels);
    labels();
  }

  async start(token: string): Promise<void> {
    $('#who').textContent = this.claims?.sub ? `${this.claims.sub} (${this.claims.role})` : '';
    const head = await this.api.streamHead();
    const [district, incs, units, asgs, alerts] = await Promise.all([
      this.api.district(),
      this.api.get<{ incidents: IncidentView[] }>('/v1/incidents?open=true&limit=1000'),
      this.api.get<{ units: UnitView[] }>('/v1/units'),
      this.api.get<{ assignments: AssignmentView[] }>('/v1/assignments?active=true'),
      this.api.get<{ alerts: AlertView[] }>('/v1/alerts'),
    ]);
    this.catalog = catalogMap(district.catalog);
    const { bounds } = drawAreas(this.map, district.areas);
    for (const u of units.units) this.upsertUnit(u);
    for (const a of asgs.assignments) this.assignments.set(a.id, a);
    for (const i of incs.incidents) this.upsertIncident(i);
    for (const a of alerts.alerts) this.alerts.set(a.id, a);
    fitView(
      this.map,
      bounds,
      [...this.units.values()].map((u) => u.position),
    );
    this.renderAlerts();
    this.scheduleRender();

    this.stream = new Stream({
      token,
      lastSeq: head,
      onState: (s, detail) => this.showConnection(s, detail),
      onUnauthorized: (code) => logout(`The server refused the token (${code}). Log in again.`),
    });
    const s = this.stream;
    s.socket.on(
      'incident:created',
      s.fresh((i) => this.onIncident(i)),
    );
    s.socket.on(
      'incident:updated',
      s.fresh((i) => this.onIncident(i)),
    );
    s.socket.on(
      'assignment:created',
      s.fresh((a) => this.onAssignment(a)),
    );
    s.socket.on(
      'assignment:updated',
      s.fresh((a) => this.onAssignment(a)),
    );
    s.socket.on(
      'unit:updated',
      s.fresh((u) => {
        this.upsertUnit(u);
        this.scheduleRender();
      }),
    );
    s.socket.on(
      'alert',
      s.fresh((a) => {
        this.alerts.set(a.id, a);
        this.renderAlerts();
      }),
    );
    // Acknowledged at another console: take it off this one too.
    s.socket.on(
      'alert:updated',
      s.fresh((a) => {
        if (a.acknowledgedAt) this.alerts.delete(a.id);
        else this.alerts.set(a.id, a);
        this.renderAlerts();
      }),
    );
    s.socket.on('error', (e) => {
      if (e.code !== 'TOKEN_EXPIRED') toast(`${e.code}: ${e.message}`, 'error');
    });

    window.setInterval(() => this.tick(), 1000);
    void this.refreshKpis();
    window.setInterval(() => void this.refreshKpis(), KPI_REFRESH_MS);
  }

  // ------------------------------------------------------------ state

  private onIncident(i: IncidentView): void {
    this.upsertIncident(i);
    if (i.id === this.selectedId) this.refreshDetailSoon();
    this.kpisSoon();
    this.scheduleRender();
  }

  private onAssignment(a: AssignmentView): void {
    this.assignments.set(a.id, mergeAssignment(this.assignments.get(a.id), a));
    if (a.incidentId === this.selectedId) this.refreshDetailSoon();
    this.scheduleRender();
  }

  private upsertIncident(i: IncidentView): void {
    this.incidents.set(i.id, i);
    const open = OPEN_INCIDENT.has(i.status);
    const cur = this.incidentMarkers.get(i.id);
    if (!open) {
      if (cur) {
        cur.marker.remove();
        this.incidentMarkers.delete(i.id);
      }
      if (i.id !== this.selectedId) this.incidents.delete(i.id);
      return;
    }
    const selected = i.id === this.selectedId;
    const key = `${i.priority}|${i.status}|${selected}`;
    if (!cur) {
      const marker = L.marker(toLatLng(i.location), {
        icon: incidentIcon(i.id, i.priority, i.status, selected),
        zIndexOffset: 1000 + (5 - i.priority) * 100,
        keyboard: false,
      })
        .bindTooltip(() => this.incidentTooltip(i.id), { direction: 'top', offset: [0, -10] })
        .on('click', () => this.select(i.id))
        .addTo(this.map);
      this.incidentMarkers.set(i.id, { marker, key });
    } else {
      cur.marker.setLatLng(toLatLng(i.location));
      if (cur.key !== key) {
        cur.marker.setIcon(incidentIcon(i.id, i.priority, i.status, selected));
        cur.key = key;
      }
    }
  }

  private upsertUnit(u: UnitView): void {
    this.units.set(u.id, u);
    const cur = this.unitMarkers.get(u.id);
    if (!cur) {
      const marker = L.marker(toLatLng(u.position), {
        icon: unitIcon(u.id, u.status),
        keyboard: false,
        zIndexOffset: unitZ(u.status),
      })
        .bindTooltip(() => this.unitTooltip(u.id), { direction: 'top', offset: [0, -8] })
        .on('click', () => this.onUnitClick(u.id))
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

  private activeFor(incidentId: string): AssignmentView[] {
    return [...this.assignments.values()].filter(
      (a) => a.incidentId === incidentId && ACTIVE_ASSIGNMENT.has(a.status),
    );
  }

  // ------------------------------------------------------------ rendering

  private scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderQueue();
      this.renderKpisLocal();
      this.renderDetail();
      this.renderLines();
    });
  }

  private openIncidents(): IncidentView[] {
    return [...this.incidents.values()].filter((i) => OPEN_INCIDENT.has(i.status));
  }

  /** Seconds to target; +∞ once a unit is on scene (no longer racing the clock). */
  private timeLeftS(i: IncidentView, now = Date.now()): number {
    if (i.status === 'on_scene' || i.status === 'resolved' || !i.targetAt) return Number.POSITIVE_INFINITY;
    return (Date.parse(i.targetAt) - now) / 1000;
  }

  private sortedQueue(): IncidentView[] {
    const now = Date.now();
    return this.openIncidents().sort(
      (a, b) =>
        a.priority - b.priority ||
        this.timeLeftS(a, now) - this.timeLeftS(b, now) ||
        Date.parse(a.reportedAt) - Date.parse(b.reportedAt) ||
        (a.id < b.id ? -1 : 1),
    );
  }

  private countdownText(i: IncidentView): { text: string; cls: string } {
    if (i.status === 'resolved') return { text: 'resolved', cls: 'done' };
    if (i.status === 'on_scene') return { text: 'on scene', cls: 'done' };
    const left = this.timeLeftS(i);
    if (!Number.isFinite(left)) return { text: '', cls: '' };
    if (left < 0) return { text: `${fmtDuration(left)} late`, cls: 'late' };
    return { text: fmtDuration(left), cls: left < 120 ? 'soon' : 'ok' };
  }

  /**
   * Keyed rendering: each incident keeps its row element (so a click is never lost to a
   * re-render); rows are updated in place and moved only when the order changes.
   */
  private renderQueue(): void {
    const list = $('#queue');
    const rows = this.sortedQueue();
    $('#queue-count').textContent = String(rows.length);
    const keep = new Set(rows.map((i) => i.id));
    for (const [id, row] of this.queueRows) {
      if (!keep.has(id)) {
        row.li.remove();
        this.queueRows.delete(id);
      }
    }
    rows.forEach((i, index) => {
      let row = this.queueRows.get(i.id);
      if (!row) {
        const prio = h('span', { class: 'prio' });
        const type = h('span', { class: 'q-type' });
        const sub = h('span', { class: 'q-sub' });
        const cd = h('span', { class: 'countdown', 'data-id': i.id });
        const button = h(
          'button',
          { type: 'button', class: 'q-select', title: `Show ${i.id}` },
          prio,
          h('span', { class: 'q-main' }, type, sub),
          cd,
        );
        const li = h('li', { 'data-id': i.id }, button);
        button.addEventListener('click', () => this.select(i.id));
        row = { li, prio, type, sub, cd, sig: '' };
        this.queueRows.set(i.id, row);
      }
      const units = this.activeFor(i.id);
      const subText =
        `${i.id} · ${i.status.replace('_', ' ')}` +
        (i.area ? ` · ${i.area}` : '') +
        (units.length > 0
          ? ` · ${units.map((a) => `${a.unitId} (${a.status.replace('_', ' ')})`).join(', ')}`
          : '') +
        (i.queuedReason && i.status === 'queued' ? ` · ${i.queuedReason}` : '');
      const cls = `q-row p${i.priority} status-${i.status}${i.id === this.selectedId ? ' selected' : ''}`;
      const sig = `${cls}|${subText}`;
      if (row.sig !== sig) {
        row.sig = sig;
        row.li.className = cls;
        row.li.dataset.status = i.status;
        row.prio.className = `prio prio-${i.priority}`;
        row.prio.textContent = `P${i.priority}`;
        row.type.textContent = typeLabel(this.catalog, i.type);
        row.sub.textContent = subText;
      }
      const cd = this.countdownText(i);
      row.cd.textContent = cd.text;
      row.cd.className = `countdown ${cd.cls}`;
      if (list.children[index] !== row.li) list.insertBefore(row.li, list.children[index] ?? null);
    });
  }

  /** Every second: countdowns only (the order is re-computed on the next data change). */
  private tick(): void {
    for (const el of document.querySelectorAll<HTMLElement>('.countdown[data-id]')) {
      const i = this.incidents.get(el.dataset.id ?? '');
      if (!i) continue;
      const cd = this.countdownText(i);
      el.textContent = cd.text;
      el.className = `countdown ${cd.cls}`;
    }
    const t = document.querySelector<HTMLElement>('#detail .target-left');
    const sel = this.selectedId ? this.incidents.get(this.selectedId) : undefined;
    if (t && sel) {
      const cd = this.countdownText(sel);
      t.textContent = cd.text;
      t.className = `target-left countdown ${cd.cls}`;
    }
    for (const el of document.querySelectorAll<HTMLElement>('.alert-age[data-at]')) {
      el.textContent = fmtClock(Date.parse(el.dataset.at ?? ''));
    }
  }

  private renderKpisLocal(): void {
    const open = this.openIncidents();
    setKpi('kpi-open', String(open.length));
    setKpi('kpi-queued', String(open.filter((i) => i.status === 'queued').length));
    const busy = [...this.units.values()].filter((u) => BUSY_UNIT.has(u.status)).length;
    setKpi('kpi-busy', `${busy}/${this.units.size}`);
  }

  private kpisSoon(): void {
    if (this.kpiTimer !== undefined) return;
    this.kpiTimer = window.setTimeout(() => {
      this.kpiTimer = undefined;
      void this.refreshKpis();
    }, 2000);
  }

  private async refreshKpis(): Promise<void> {
    try {
      const k = await this.api.get<{
        immediate?: { count: number; served: number; onTimePct: number | null };
      }>('/v1/kpis');
      const pct = k.immediate?.onTimePct;
      setKpi(
        'kpi-ontime',
        pct === null || pct === undefined ? '—' : `${pct.toFixed(pct % 1 === 0 ? 0 : 1)}%`,
      );
      $('#kpi-ontime').title =
        `Immediate-response incidents reached within target today` +
        (k.immediate ? ` (${k.immediate.served} served of ${k.immediate.count} reported)` : '');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) logout('Your session has expired.');
      // Other failures: keep the last figure; the next refresh tries again.
    }
  }

  private renderAlerts(): void {
    const list = $('#alerts');
    const alerts = [...this.alerts.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
    $('#alert-count').textContent = String(alerts.length);
    $('#alert-count').classList.toggle(
      'hot',
      alerts.some((a) => a.severity === 'critical'),
    );
    const kindText: Record<AlertView['kind'], string> = {
      no_ack: 'No acknowledgement',
      target_breached: 'Target breached',
      no_capable_unit: 'Nobody capable free',
      repeated_non_response: 'Repeated non-response',
      on_scene_far: 'On scene far from incident',
    };
    const keep = new Set(alerts.map((a) => a.id));
    for (const [id, li] of this.alertRows) {
      if (!keep.has(id)) {
        li.remove();
        this.alertRows.delete(id);
      }
    }
    // Keyed like the queue: an alert's row (and its button) survives other alerts arriving.
    const rowOf = (a: AlertView): HTMLLIElement => {
      const ack = h('button', { type: 'button', class: 'btn-small alert-ack' }, 'Acknowledge');
      ack.addEventListener('click', () => void this.ackAlert(a.id, ack));
      const link = a.incidentId
        ? h('button', { type: 'button', class: 'link alert-incident', title: a.incidentId }, 'Show incident')
        : null;
      link?.addEventListener('click', () => a.incidentId && this.select(a.incidentId));
      return h(
        'li',
        { class: `alert sev-${a.severity} kind-${a.kind}`, 'data-id': a.id, 'data-kind': a.kind },
        h(
          'div',
          { class: 'alert-head' },
          h('b', {}, kindText[a.kind] ?? a.kind),
          h('span', { class: 'alert-age', 'data-at': a.at }, fmtClock(Date.parse(a.at))),
        ),
        h('div', { class: 'alert-msg' }, a.message),
        h(
          'div',
          { class: 'alert-actions' },
          link,
          a.unitId ? h('span', { class: 'unit-ref' }, a.unitId) : null,
          ack,
        ),
      );
    };
    alerts.forEach((a, index) => {
      let li = this.alertRows.get(a.id);
      if (!li) {
        li = rowOf(a);
        this.alertRows.set(a.id, li);
      }
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] ?? null);
    });
  }

  private async ackAlert(id: string, btn: HTMLButtonElement): Promise<void> {
    btn.disabled = true;
    try {
      await this.api.post(`/v1/alerts/${encodeURIComponent(id)}/ack`, {});
      this.alerts.delete(id);
      this.renderAlerts();
    } catch (err) {
      btn.disabled = false;
      toast(`Could not acknowledge: ${errorText(err)}`, 'error');
    }
  }

  // ------------------------------------------------------------ selection and detail

  private select(id: string | undefined): void {
    const prev = this.selectedId;
    this.selectedId = id;
    this.detail = undefined;
    this.confirmCancel = false;
    this.detailSig = '';
    this.optionsSig = '';
    for (const iid of [prev, id]) {
      const inc = iid ? this.incidents.get(iid) : undefined;
      if (inc) this.upsertIncident(inc);
    }
    const panel = $('#detail');
    panel.hidden = id === undefined;
    panel.replaceChildren();
    if (id) {
      this.buildDetailShell(id);
      void this.loadDetail(id);
      const inc = this.incidents.get(id);
      if (inc && !this.map.getBounds().contains(toLatLng(inc.location)))
        this.map.panTo(toLatLng(inc.location));
    }
    this.scheduleRender();
  }

  private refreshDetailSoon(): void {
    if (this.detailTimer !== undefined) window.clearTimeout(this.detailTimer);
    this.detailTimer = window.setTimeout(() => {
      this.detailTimer = undefined;
      if (this.selectedId) void this.loadDetail(this.selectedId);
    }, 250);
  }

  private async loadDetail(id: string): Promise<void> {
    try {
      const d = await this.api.get<IncidentDetailView>(`/v1/incidents/${encodeURIComponent(id)}`);
      if (this.selectedId !== id) return;
      this.detail = d;
      for (const a of d.assignments) if (!this.assignments.has(a.id)) this.assignments.set(a.id, a);
      if (!this.incidents.has(id)) this.incidents.set(id, d);
      this.scheduleRender();
    } catch (err) {
      toast(`Could not load ${id}: ${errorText(err)}`, 'error');
    }
  }

  /** The parts of the detail panel that must survive re-renders (the action form). */
  private buildDetailShell(id: string): void {
    const panel = $('#detail');
    const close = h(
      'button',
      { type: 'button', class: 'btn-quiet detail-close', 'aria-label': 'Close' },
      '×',
    );
    close.addEventListener('click', () => this.select(undefined));
    const unitSelect = h('select', { name: 'unit', class: 'assign-unit', 'aria-label': 'Unit to assign' });
    const reason = h('input', {
      name: 'reason',
      class: 'action-reason',
      type: 'text',
      maxlength: 500,
      placeholder: 'Reason / note (optional)',
      'aria-label': 'Reason or note',
    });
    const assign = h('button', { type: 'button', class: 'btn-primary action-assign' }, 'Assign');
    const cancel = h('button', { type: 'button', class: 'btn-danger action-cancel' }, 'Cancel incident');
    const closeInc = h('button', { type: 'button', class: 'btn action-close' }, 'Close incident');
    assign.addEventListener('click', () => void this.doAssign(id, unitSelect.value, reason.value.trim()));
    cancel.addEventListener('click', () => {
      if (!this.confirmCancel) {
        this.confirmCancel = true;
        cancel.textContent = 'Confirm cancel';
        window.setTimeout(() => {
          this.confirmCancel = false;
          cancel.textContent = 'Cancel incident';
        }, 4000);
        return;
      }
      void this.doAction(id, 'cancel', reason.value.trim());
    });
    closeInc.addEventListener('click', () => void this.doAction(id, 'close', reason.value.trim()));
    panel.append(
      h('div', { class: 'detail-head' }, h('div', { class: 'detail-title' }), close),
      h('div', { class: 'detail-body' }),
      h(
        'div',
        { class: 'detail-actions' },
        h('div', { class: 'row' }, unitSelect, assign),
        h('div', { class: 'row' }, reason),
        h('div', { class: 'row' }, cancel, closeInc),
      ),
      h('div', { class: 'detail-timeline' }),
    );
  }

  private renderDetail(): void {
    const id = this.selectedId;
    if (!id) return;
    const panel = $('#detail');
    const inc = this.incidents.get(id) ?? this.detail;
    if (!inc) return;
    panel.dataset.id = id;
    panel.dataset.status = inc.status;
    const type = this.catalog.get(inc.type);
    const cd = this.countdownText(inc);
    const needs = type
      ? Object.entries(type.requires)
          .map(([c, n]) => `${n}× ${c}`)
          .join(', ')
      : '';
    const assignments = [...this.assignments.values()]
      .filter((a) => a.incidentId === id)
      .sort(
        (a, b) =>
          Number(ACTIVE_ASSIGNMENT.has(b.status)) - Number(ACTIVE_ASSIGNMENT.has(a.status)) ||
          Date.parse(b.offeredAt) - Date.parse(a.offeredAt),
      );
    this.renderUnitOptions(inc);
    const tl = this.detail?.id === id ? this.detail.timeline : [];
    const sig = JSON.stringify([inc, assignments, tl.length]);
    if (sig === this.detailSig) return;
    this.detailSig = sig;
    $('.detail-title', panel).replaceChildren(
      h('span', { class: `prio prio-${inc.priority}` }, `P${inc.priority}`),
      h('b', {}, typeLabel(this.catalog, inc.type)),
      h('span', { class: 'detail-id' }, ` ${inc.id}`),
      h('span', { class: `chip status-${inc.status}` }, inc.status.replace('_', ' ')),
    );
    $('.detail-body', panel).replaceChildren(
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Reported'),
        h('dd', {}, fmtClock(Date.parse(inc.reportedAt))),
        h('dt', {}, 'Target'),
        h(
          'dd',
          {},
          inc.targetAt ? `${fmtClock(Date.parse(inc.targetAt))} ` : '—',
          h('span', { class: `target-left countdown ${cd.cls}` }, cd.text),
        ),
        h('dt', {}, 'Needs'),
        h(
          'dd',
          {},
          needs || '—',
          inc.immediate ? h('span', { class: 'chip chip-immediate' }, 'immediate') : null,
        ),
        h('dt', {}, 'Place'),
        h('dd', {}, [inc.area, inc.cell].filter(Boolean).join(' / ') || '—', ` (${fmtLonLat(inc.location)})`),
        inc.queuedReason ? h('dt', {}, 'Waiting') : null,
        inc.queuedReason ? h('dd', {}, inc.queuedReason) : null,
      ),
      h('h3', {}, 'Assignments and why'),
      assignments.length === 0
        ? h('p', { class: 'muted' }, 'No unit assigned yet.')
        : h('div', { class: 'assignments' }, ...assignments.map((a) => this.assignmentCard(a))),
    );
    const resolved = inc.status === 'resolved';
    const final = !OPEN_INCIDENT.has(inc.status);
    $<HTMLButtonElement>('.action-assign', panel).disabled = resolved || final;
    $<HTMLButtonElement>('.action-assign', panel).textContent =
      this.activeFor(id).length > 0 ? 'Assign / reassign' : 'Assign';
    $<HTMLButtonElement>('.action-cancel', panel).disabled = resolved || final;
    $<HTMLButtonElement>('.action-close', panel).disabled = final;
    $('.detail-timeline', panel).replaceChildren(
      h('h3', {}, 'Timeline'),
      h(
        'ol',
        { class: 'timeline' },
        ...tl
          .slice(-40)
          .reverse()
          .map((e) =>
            h(
              'li',
              {},
              h('span', { class: 'tl-at' }, fmtClock(Date.parse(e.at))),
              h('span', { class: 'tl-kind' }, e.kind.replace(/_/g, ' ')),
              e.unitId ? h('span', { class: 'tl-unit' }, e.unitId) : null,
              h('span', { class: 'tl-actor' }, e.actor),
            ),
          ),
      ),
    );
  }

  private assignmentCard(a: AssignmentView): HTMLElement {
    const ex = a.explanation;
    const active = ACTIVE_ASSIGNMENT.has(a.status);
    const card = h(
      'div',
      {
        class: `asg status-${a.status}${active ? ' active' : ''}`,
        'data-unit': a.unitId,
        'data-status': a.status,
        'data-id': a.id,
      },
      h(
        'div',
        { class: 'asg-head' },
        h('b', {}, a.unitId),
        ` ${a.capability} · `,
        h('span', { class: `chip status-${a.status}` }, a.status.replace('_', ' ')),
        ` · ETA ${fmtDuration(a.etaS)}`,
        a.crossesJurisdiction ? h('span', { class: 'chip chip-cross' }, 'cross-jurisdiction') : null,
        a.preemptedFrom ? h('span', { class: 'chip' }, `taken from ${a.preemptedFrom}`) : null,
      ),
      h('div', { class: 'asg-why' }, ex?.summary ?? 'No explanation recorded.'),
      a.reason ? h('div', { class: 'asg-reason' }, `Reason: ${a.reason}`) : null,
      ex && ex.alternatives.length > 0
        ? h(
            'details',
            { class: 'alternatives', open: this.openAlternatives.has(a.id) },
            h('summary', {}, `Alternatives considered (${ex.alternatives.length})`),
            h(
              'table',
              {},
              h('thead', {}, h('tr', {}, h('th', {}, 'Unit'), h('th', {}, 'ETA'), h('th', {}, 'Why not'))),
              h(
                'tbody',
                {},
                ...ex.alternatives.map((alt) =>
                  h(
                    'tr',
                    {},
                    h('td', {}, alt.unitId),
                    h('td', {}, fmtDuration(alt.etaS)),
                    h('td', {}, alt.reason),
                  ),
                ),
              ),
            ),
          )
        : ex
          ? h('div', { class: 'muted' }, 'No alternatives were considered.')
          : null,
    );
    const details = card.querySelector('details');
    details?.addEventListener('toggle', () => {
      if (details.open) this.openAlternatives.add(a.id);
      else this.openAlternatives.delete(a.id);
    });
    return card;
  }

  /** Units for the assign picker: capable ones first (free, then nearest), then the rest. */
  private renderUnitOptions(inc: IncidentView): void {
    const select = document.querySelector<HTMLSelectElement>('#detail .assign-unit');
    if (!select) return;
    const keep = select.value;
    const needs = Object.keys(this.catalog.get(inc.type)?.requires ?? {});
    const all = [...this.units.values()].map((u) => ({
      u,
      capable: u.capabilities.some((c) => needs.includes(c)),
      d: distanceM(u.position, inc.location),
      free: u.status === 'available',
    }));
    all.sort((a, b) => Number(b.free) - Number(a.free) || a.d - b.d);
    // Rebuilt only when what it lists changes (a rebuild would close an open drop-down).
    const sig = JSON.stringify(all.map((x) => [x.u.id, x.u.status, Math.round(x.d / 100)]));
    if (sig === this.optionsSig) return;
    this.optionsSig = sig;
    const opt = (x: (typeof all)[number]) =>
      h(
        'option',
        {
          value: x.u.id,
          disabled: x.u.status === 'off_duty' || x.u.status === 'out_of_service',
        },
        `${x.u.id} · ${x.u.capabilities.join('+')} · ${STATUS_LABEL[x.u.status]} · ${fmtKm(x.d)}`,
      );
    const capable = all.filter((x) => x.capable);
    const others = all.filter((x) => !x.capable);
    select.replaceChildren(
      h('option', { value: '' }, 'Choose a unit…'),
      h('optgroup', { label: `Capable (${needs.join(', ')})` }, ...capable.map(opt)),
      h('optgroup', { label: 'Other units' }, ...others.map(opt)),
    );
    if (keep && this.units.has(keep)) select.value = keep;
  }

  private renderLines(): void {
    this.lines.clearLayers();
    const id = this.selectedId;
    const inc = id ? this.incidents.get(id) : undefined;
    if (!id || !inc) return;
    for (const a of this.activeFor(id)) {
      const u = this.units.get(a.unitId);
      if (!u) continue;
      L.polyline([toLatLng(u.position), toLatLng(inc.location)], {
        color: a.status === 'offered' ? '#e5a100' : '#1f6fd1',
        weight: 3,
        dashArray: a.status === 'offered' ? '6 6' : undefined,
        className: 'assign-line',
        interactive: false,
      }).addTo(this.lines);
    }
  }

  private incidentTooltip(id: string): string {
    const i = this.incidents.get(id);
    if (!i) return id;
    const units = this.activeFor(id).map((a) => a.unitId);
    return `<b>P${i.priority} ${escapeHtml(typeLabel(this.catalog, i.type))}</b><br>${escapeHtml(i.id)} · ${i.status.replace('_', ' ')}${units.length ? `<br>${escapeHtml(units.join(', '))}` : ''}`;
  }

  private unitTooltip(id: string): string {
    const u = this.units.get(id);
    if (!u) return id;
    return `<b>${escapeHtml(u.id)}</b> · ${escapeHtml(u.department)}<br>${escapeHtml(u.capabilities.join(', '))}<br>${STATUS_LABEL[u.status]}${u.incidentId ? ` → ${escapeHtml(u.incidentId)}` : ''}`;
  }

  private onUnitClick(unitId: string): void {
    const select = document.querySelector<HTMLSelectElement>('#detail .assign-unit');
    if (this.selectedId && select) {
      select.value = unitId;
      select.focus();
      return;
    }
    const u = this.units.get(unitId);
    if (u?.incidentId) this.select(u.incidentId);
  }

  // ------------------------------------------------------------ actions

  private async doAssign(incidentId: string, unitId: string, reason: string): Promise<void> {
    if (!unitId) {
      toast('Choose a unit first', 'error');
      return;
    }
    try {
      await this.api.post(`/v1/incidents/${encodeURIComponent(incidentId)}/assign`, {
        unitId,
        ...(reason ? { reason } : {}),
      });
      toast(`${unitId} assigned to ${incidentId}`);
    } catch (err) {
      toast(`Assign refused — ${errorText(err)}`, 'error');
    }
  }

  private async doAction(incidentId: string, action: 'cancel' | 'close', text: string): Promise<void> {
    const body = text ? (action === 'cancel' ? { reason: text } : { note: text }) : {};
    try {
      const inc = await this.api.post<IncidentView>(
        `/v1/incidents/${encodeURIComponent(incidentId)}/${action}`,
        body,
      );
      toast(`${incidentId} ${inc.status}`);
    } catch (err) {
      toast(`${action === 'cancel' ? 'Cancel' : 'Close'} refused — ${errorText(err)}`, 'error');
    }
  }

  private openReportForm(at: L.LatLng): void {
    const types = [...this.catalog.values()].sort(
      (a, b) =>
        a.priority - b.priority ||
        typeLabel(this.catalog, a.type).localeCompare(typeLabel(this.catalog, b.type)),
    );
    const select = h(
      'select',
      { name: 'type', required: true, 'aria-label': 'Incident type' },
      h('option', { value: '' }, 'Type…'),
      ...types.map((t) =>
        h(
          'option',
          { value: t.type },
          `P${t.priority} · ${typeLabel(this.catalog, t.type)}${t.immediate ? ' ⚡' : ''}`,
        ),
      ),
    );
    const desc = h('input', {
      name: 'description',
      type: 'text',
      maxlength: 2000,
      placeholder: 'Description (optional)',
    });
    const submit = h('button', { type: 'submit', class: 'btn-primary' }, 'Report incident');
    const location: LonLat = [Number(at.lng.toFixed(6)), Number(at.lat.toFixed(6))];
    const form = h(
      'form',
      { class: 'report-form' },
      h('h3', {}, 'New incident'),
      select,
      desc,
      h('div', { class: 'muted' }, fmtLonLat(location)),
      submit,
    );
    const popup = L.popup({ minWidth: 260, maxWidth: 320, className: 'report-popup' })
      .setLatLng(at)
      .setContent(form)
      .openOn(this.map);
    const key = randomKey();
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!select.value) {
        toast('Choose an incident type', 'error');
        return;
      }
      submit.disabled = true;
      void (async () => {
        try {
          const inc = await this.api.post<IncidentView>(
            '/v1/incidents',
            {
              type: select.value,
              location,
              source: 'console',
              ...(desc.value.trim() ? { description: desc.value.trim() } : {}),
            },
            { 'idempotency-key': key },
          );
          this.map.closePopup(popup);
          if (!this.incidents.has(inc.id)) this.upsertIncident(inc);
          this.select(inc.id);
          toast(`${inc.id} reported`);
        } catch (err) {
          submit.disabled = false;
          toast(`Report refused — ${errorText(err)}`, 'error');
        }
      })();
    });
    select.focus();
  }

  private showConnection(s: ConnectionState, detail?: string): void {
    const el = $('#conn');
    el.dataset.state = s;
    el.textContent = {
      connecting: 'connecting…',
      live: 'live',
      reconnecting: 'reconnecting…',
      refused: 'refused',
    }[s];
    el.title = detail ? `${s}: ${detail}` : s;
    if (s === 'live') this.kpisSoon();
  }
}

function setKpi(id: string, value: string): void {
  const el = document.getElementById(id)?.querySelector('.kpi-value');
  if (el) el.textContent = value;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const logout = (message?: string): void => logoutFrom(TOKEN_KEY, message);

async function main(): Promise<void> {
  $('#logout').addEventListener('click', () => logout());
  const token = await login(TOKEN_KEY, roleCheck);
  const api = new Api(token);
  const app = new ConsoleApp(api, decodeToken(token));
  try {
    await app.start(token);
    mountFollowUpPanel(api, $('#followup-panel'), decodeToken(token)?.role);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      logout(`The server refused the token: ${err.message}`);
      return;
    }
    toast(`Could not load the console: ${errorText(err)}`, 'error');
  }
}

void main();
