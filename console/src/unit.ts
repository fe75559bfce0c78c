// The field-unit page (unit.html), for a phone in a patrol car, fire engine or on an e-bike:
// the current offer with Accept / Decline (with a reason), the job in hand with status
// buttons (en route, on scene, cleared), the incident's place and the line to it on a small
// map, and the position sent from navigator.geolocation where the browser allows it.
// A unit token sees only the unit's own work (the server enforces it).

import type { IncidentType, LonLat } from '../../src/core/types.ts';
import type { IncidentDetailView } from '../../src/engine/api.ts';
import {
  type AssignmentView,
  type Envelope,
  type IncidentView,
  mergeAssignment,
  type OfferView,
  type StatusInput,
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
  STATUS_LABEL,
  Stream,
  type TokenClaims,
  toast,
  typeLabel,
} from './common.ts';
import { createMap, drawAreas, fitView, incidentIcon, L, toLatLng, unitIcon } from './map.ts';

const TOKEN_KEY = 'dispatch.unit.token';
const ACTIVE = new Set<AssignmentView['status']>(['offered', 'accepted', 'en_route', 'on_scene']);
/** Send a fix at most this often, unless the unit moved farther than LOCATION_MIN_MOVE_M. */
const LOCATION_EVERY_MS = 5000;
const LOCATION_MIN_MOVE_M = 25;

const DECLINE_REASONS = [
  'Already committed to another job',
  'Vehicle or equipment fault',
  'Crew not available',
  'Too far / outside our area',
];

const roleCheck = (c: TokenClaims | undefined): string | undefined =>
  c?.role === 'unit' && c.unitId
    ? undefined
    : 'This page needs a unit token (dispatch token --role unit --unit ID).';

function distanceM(a: LonLat, b: LonLat): number {
  const R = 6_371_008.8;
  const rad = Math.PI / 180;
  const dLat = (b[1] - a[1]) * rad;
  const dLon = (b[0] - a[0]) * rad;
  const s = Math.sin(dLat / 2) ** 2 + Math.cos(a[1] * rad) * Math.cos(b[1] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(s)));
}

class UnitApp {
  private catalog = new Map<string, IncidentType>();
  private readonly assignments = new Map<string, AssignmentView>();
  private readonly incidents = new Map<string, IncidentView>();
  private unit: UnitView | undefined;
  private position: LonLat | undefined;
  private stream!: Stream;
  private readonly map: L.Map;
  private readonly layers = L.layerGroup();
  private lastSent: { at: number; pos: LonLat } | undefined;
  private busy = false;
  private shownOfferId: string | undefined;
  private mapKey = '';

  constructor(
    private readonly api: Api,
    private readonly unitId: string,
  ) {
    this.map = createMap($('#unit-map'), { zoomControl: false });
    this.layers.addTo(this.map);
    $('#unit-id').textContent = unitId;
    for (const b of document.querySelectorAll<HTMLButtonElement>('.btn-status')) {
      b.addEventListener('click', () => void this.reportStatus(b.dataset.status as StatusInput['status']));
    }
  }

  async start(token: string): Promise<void> {
    const head = await this.api.streamHead();
    const [district, asgs] = await Promise.all([
      this.api.district(),
      this.api.get<{ assignments: AssignmentView[] }>('/v1/assignments?active=true'),
    ]);
    this.catalog = catalogMap(district.catalog);
    const { bounds } = drawAreas(this.map, district.areas);
    fitView(this.map, bounds);
    for (const a of asgs.assignments) this.assignments.set(a.id, a);
    await Promise.all(
      [...new Set(asgs.assignments.map((a) => a.incidentId))].map(async (id) => {
        try {
          this.incidents.set(
            id,
            await this.api.get<IncidentDetailView>(`/v1/incidents/${encodeURIComponent(id)}`),
          );
        } catch {
          // Not readable any more (released meanwhile): the stream will say so.
        }
      }),
    );

    this.stream = new Stream({
      token,
      lastSeq: head,
      onState: (s, detail) => this.showConnection(s, detail),
      onUnauthorized: (code) => logout(`The server refused the token (${code}). Log in again.`),
    });
    const s = this.stream;
    s.socket.on('assignment:offer', (env: Envelope<OfferView>, received) => {
      // Confirm receipt at once (also for a repeat), or the server re-sends it.
      if (typeof received === 'function') received(true);
      if (env.seq <= s.lastSeq) return;
      s.lastSeq = env.seq;
      this.incidents.set(env.data.incident.id, env.data.incident);
      this.assignments.set(env.data.assignment.id, env.data.assignment);
      if (env.data.assignment.status === 'offered') navigator.vibrate?.([200, 100, 200]);
      this.render();
    });
    s.socket.on(
      'assignment:updated',
      s.fresh((a) => this.onAssignment(a)),
    );
    s.socket.on(
      'unit:updated',
      s.fresh((u) => {
        if (u.id !== this.unitId) return;
        this.unit = u;
        if (!this.position) this.position = u.position;
        this.render();
      }),
    );
    s.socket.on(
      'incident:updated',
      s.fresh((i) => {
        this.incidents.set(i.id, i);
        this.render();
      }),
    );
    s.socket.on('error', (e) => {
      if (e.code !== 'TOKEN_EXPIRED') toast(`${e.code}: ${e.message}`, 'error');
    });
    this.render();
    this.watchPosition();
    window.setInterval(() => this.tick(), 1000);
  }

  private onAssignment(a: AssignmentView): void {
    const before = this.assignments.get(a.id);
    this.assignments.set(a.id, mergeAssignment(before, a));
    if (
      before?.status === 'offered' &&
      (a.status === 'timed_out' || a.status === 'cancelled' || a.status === 'preempted')
    ) {
      toast(`Offer for ${a.incidentId} withdrawn (${a.status.replace('_', ' ')})`, 'error');
    } else if (
      before &&
      ACTIVE.has(before.status) &&
      !ACTIVE.has(a.status) &&
      a.status !== 'declined' &&
      a.status !== 'cleared'
    ) {
      toast(`${a.incidentId}: ${a.status.replace('_', ' ')}${a.reason ? ` — ${a.reason}` : ''}`, 'error');
    }
    this.render();
  }

  private offer(): AssignmentView | undefined {
    return [...this.assignments.values()]
      .filter((a) => a.status === 'offered')
      .sort((a, b) => Date.parse(b.offeredAt) - Date.parse(a.offeredAt))[0];
  }

  private job(): AssignmentView | undefined {
    return [...this.assignments.values()]
      .filter((a) => a.status === 'accepted' || a.status === 'en_route' || a.status === 'on_scene')
      .sort((a, b) => Date.parse(b.offeredAt) - Date.parse(a.offeredAt))[0];
  }

  /** The unit's status: the server's word when heard, else what its active assignment implies. */
  private status(): string {
    const job = this.job();
    if (job) return job.status;
    if (this.offer()) return 'offered';
    return this.unit?.status ?? 'unknown';
  }

  // ------------------------------------------------------------ rendering

  private render(): void {
    const offer = this.offer();
    const job = this.job();
    const status = this.status();
    const el = $('#unit-status');
    el.dataset.status = status;
    el.textContent = status === 'unknown' ? 'ready' : (STATUS_LABEL[status as UnitView['status']] ?? status);

    const offerBox = $('#offer');
    if (offer) {
      if (this.shownOfferId !== offer.id) {
        this.shownOfferId = offer.id;
        this.renderOffer(offer);
      }
      offerBox.hidden = false;
    } else {
      this.shownOfferId = undefined;
      offerBox.hidden = true;
      offerBox.replaceChildren();
    }

    const jobBox = $('#job');
    if (job) {
      const inc = this.incidents.get(job.incidentId);
      jobBox.hidden = false;
      jobBox.dataset.status = job.status;
      jobBox.dataset.incident = job.incidentId;
      jobBox.replaceChildren(
        h('h2', {}, 'Current job'),
        h(
          'div',
          { class: 'job-type' },
          inc ? h('span', { class: `prio prio-${inc.priority}` }, `P${inc.priority}`) : null,
          ` ${inc ? typeLabel(this.catalog, inc.type) : job.incidentId}`,
        ),
        h(
          'div',
          { class: 'job-meta' },
          `${job.incidentId} · ${job.capability} · `,
          h('b', { class: 'job-status' }, job.status.replace('_', ' ')),
        ),
        inc ? h('div', { class: 'job-place' }, this.placeText(inc)) : '',
      );
    } else {
      jobBox.hidden = true;
    }
    $('#idle').hidden = !!(offer || job);

    for (const b of document.querySelectorAll<HTMLButtonElement>('.btn-status')) {
      const s = b.dataset.status;
      const enabled =
        !this.busy &&
        (s === 'en_route'
          ? job?.status === 'accepted'
          : s === 'on_scene'
            ? job?.status === 'accepted' || job?.status === 'en_route'
            : s === 'available'
              ? !offer && (job?.status === 'on_scene' || !job)
              : false);
      b.disabled = !enabled;
      b.classList.toggle('current', s === status || (s === 'available' && status === 'available'));
    }
    this.renderMap(offer ?? job);
  }

  private placeText(inc: IncidentView): string {
    const place = [inc.area, inc.cell].filter(Boolean).join(' / ');
    const d = this.position ? ` · ${(distanceM(this.position, inc.location) / 1000).toFixed(1)} km away` : '';
    return `${place ? `${place} · ` : ''}${fmtLonLat(inc.location)}${d}`;
  }

  private renderOffer(a: AssignmentView): void {
    const box = $('#offer');
    const inc = this.incidents.get(a.incidentId);
    box.dataset.id = a.id;
    box.dataset.incident = a.incidentId;
    const accept = h('button', { type: 'button', class: 'btn-accept' }, 'Accept');
    const decline = h('button', { type: 'button', class: 'btn-decline' }, 'Decline');
    const reasons = h(
      'fieldset',
      { class: 'decline-reasons', hidden: true },
      h('legend', {}, 'Why decline?'),
      ...DECLINE_REASONS.map((r, i) =>
        h(
          'label',
          { class: 'reason' },
          h('input', { type: 'radio', name: 'reason', value: r, checked: i === 0 }),
          ` ${r}`,
        ),
      ),
      h(
        'label',
        { class: 'reason' },
        h('input', { type: 'radio', name: 'reason', value: '__other' }),
        ' Other: ',
        h('input', {
          type: 'text',
          name: 'other',
          maxlength: 200,
          placeholder: 'reason',
          'aria-label': 'Other reason',
        }),
      ),
      h(
        'div',
        { class: 'offer-buttons' },
        h('button', { type: 'button', class: 'btn-send-decline' }, 'Send decline'),
        h('button', { type: 'button', class: 'btn-back' }, 'Back'),
      ),
    );
    const buttons = h('div', { class: 'offer-buttons main' }, accept, decline);
    box.replaceChildren(
      h('h2', {}, 'New assignment'),
      h(
        'div',
        { class: 'offer-type' },
        inc ? h('span', { class: `prio prio-${inc.priority}` }, `P${inc.priority}`) : null,
        ` ${inc ? typeLabel(this.catalog, inc.type) : a.incidentId}`,
      ),
      h('div', { class: 'offer-meta' }, `${a.incidentId} · ${a.capability} · ETA ${fmtDuration(a.etaS)}`),
      inc ? h('div', { class: 'offer-place' }, this.placeText(inc)) : '',
      a.ackDeadline
        ? h(
            'div',
            { class: 'offer-deadline' },
            'Answer within ',
            h('b', { class: 'ack-left', 'data-deadline': a.ackDeadline }, this.leftText(a.ackDeadline)),
          )
        : '',
      a.explanation ? h('p', { class: 'offer-why muted' }, a.explanation.summary) : '',
      buttons,
      reasons,
    );
    accept.addEventListener('click', () => void this.acknowledge(a, true));
    decline.addEventListener('click', () => {
      buttons.hidden = true;
      reasons.hidden = false;
    });
    $('.btn-back', reasons).addEventListener('click', () => {
      buttons.hidden = false;
      reasons.hidden = true;
    });
    $('.btn-send-decline', reasons).addEventListener('click', () => {
      const picked = reasons.querySelector<HTMLInputElement>('input[name=reason]:checked')?.value;
      const other = $<HTMLInputElement>('input[name=other]', reasons).value.trim();
      const reason = picked === '__other' ? other : picked;
      if (!reason) {
        toast('Give a reason', 'error');
        return;
      }
      void this.acknowledge(a, false, reason);
    });
  }

  private leftText(deadline: string): string {
    const left = (Date.parse(deadline) - Date.now()) / 1000;
    return left <= 0 ? 'now' : fmtDuration(left);
  }

  private tick(): void {
    for (const el of document.querySelectorAll<HTMLElement>('.ack-left[data-deadline]')) {
      el.textContent = this.leftText(el.dataset.deadline ?? '');
    }
  }

  private renderMap(a: AssignmentView | undefined): void {
    const inc = a ? this.incidents.get(a.incidentId) : undefined;
    const me = this.position ?? this.unit?.position;
    const key = `${inc?.id}|${inc?.status}|${me?.join(',')}|${this.status()}`;
    if (key === this.mapKey) return;
    this.mapKey = key;
    this.layers.clearLayers();
    const st = this.status();
    const iconStatus = st === 'unknown' ? 'available' : st === 'accepted' ? 'offered' : st;
    if (me) L.marker(toLatLng(me), { icon: unitIcon(this.unitId, iconStatus) }).addTo(this.layers);
    if (inc) {
      L.marker(toLatLng(inc.location), { icon: incidentIcon(inc.id, inc.priority, inc.status) }).addTo(
        this.layers,
      );
      if (me) {
        L.polyline([toLatLng(me), toLatLng(inc.location)], {
          color: '#1f6fd1',
          weight: 4,
          dashArray: '8 6',
          className: 'route-line',
          interactive: false,
        }).addTo(this.layers);
      }
      fitView(this.map, undefined, me ? [me, inc.location] : [inc.location]);
      if (!me) this.map.setZoom(15);
    } else if (me) {
      this.map.setView(toLatLng(me), Math.max(this.map.getZoom(), 14));
    }
  }

  // ------------------------------------------------------------ actions

  private async acknowledge(a: AssignmentView, accept: boolean, reason?: string): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    for (const b of document.querySelectorAll<HTMLButtonElement>('#offer button')) b.disabled = true;
    try {
      const res = await this.api.post<AssignmentView>(`/v1/assignments/${encodeURIComponent(a.id)}/ack`, {
        accept,
        ...(reason ? { reason } : {}),
      });
      if (this.assignments.get(a.id)?.status === 'offered') this.assignments.set(a.id, res);
      toast(accept ? `Accepted ${a.incidentId}` : `Declined ${a.incidentId}`);
    } catch (err) {
      toast(`${accept ? 'Accept' : 'Decline'} refused — ${errorText(err)}`, 'error');
      for (const b of document.querySelectorAll<HTMLButtonElement>('#offer button')) b.disabled = false;
    } finally {
      this.busy = false;
      this.render();
    }
  }

  private async reportStatus(status: StatusInput['status']): Promise<void> {
    if (this.busy) return;
    const job = this.job();
    this.busy = true;
    this.render();
    try {
      const u = await this.api.post<UnitView>(`/v1/units/${encodeURIComponent(this.unitId)}/status`, {
        status,
        ...(job && status !== 'available' ? { incidentId: job.incidentId } : {}),
      });
      this.unit = u;
      if (this.position) void this.sendPosition(this.position, Date.now(), undefined, true);
    } catch (err) {
      toast(`Status refused — ${errorText(err)}`, 'error');
    } finally {
      this.busy = false;
      this.render();
    }
  }

  // ------------------------------------------------------------ position

  private watchPosition(): void {
    const gps = $('#gps');
    if (!('geolocation' in navigator)) {
      gps.textContent = 'Position: this browser has no location service.';
      return;
    }
    navigator.geolocation.watchPosition(
      (p) => {
        const pos: LonLat = [p.coords.longitude, p.coords.latitude];
        this.position = pos;
        void this.sendPosition(pos, p.timestamp || Date.now(), p.coords.accuracy);
        this.render();
      },
      (err) => {
        gps.textContent =
          err.code === err.PERMISSION_DENIED
            ? 'Position: location not allowed — the dispatcher sees your last reported position.'
            : `Position: no fix (${err.message || 'unavailable'})`;
        gps.dataset.state = 'error';
      },
      { enableHighAccuracy: true, maximumAge: 5000, timeout: 30_000 },
    );
  }

  private async sendPosition(pos: LonLat, at: number, accuracyM?: number, force = false): Promise<void> {
    const now = Date.now();
    const last = this.lastSent;
    if (!force && last && now - last.at < LOCATION_EVERY_MS && distanceM(last.pos, pos) < LOCATION_MIN_MOVE_M)
      return;
    this.lastSent = { at: now, pos };
    const gps = $('#gps');
    const body = {
      position: pos,
      at: Math.round(at),
      ...(accuracyM !== undefined ? { accuracyM: Math.min(accuracyM, 100_000) } : {}),
    };
    try {
      const sock = this.stream.socket;
      if (sock.connected) {
        const r = await new Promise<{ ok: boolean; code?: string; message?: string }>((resolve) => {
          const timer = window.setTimeout(() => resolve({ ok: false, message: 'no answer' }), 5000);
          sock.emit('location', body, (reply) => {
            window.clearTimeout(timer);
            resolve(reply);
          });
        });
        if (!r.ok) throw new Error(`${r.code ?? 'error'}: ${r.message ?? ''}`);
      } else {
        await this.api.post(`/v1/units/${encodeURIComponent(this.unitId)}/location`, body);
      }
      gps.dataset.state = 'ok';
      gps.textContent = `Position sent ${fmtClock(now)}${accuracyM !== undefined ? ` (±${Math.round(accuracyM)} m)` : ''}`;
    } catch (err) {
      gps.dataset.state = 'error';
      gps.textContent = `Position not sent: ${errorText(err)}`;
    }
  }

  private showConnection(s: ConnectionState, detail?: string): void {
    const el = $('#conn');
    el.dataset.state = s;
    el.textContent = { connecting: '…', live: 'live', reconnecting: 'offline', refused: 'refused' }[s];
    el.title = detail ? `${s}: ${detail}` : s;
  }
}

const logout = (message?: string): void => logoutFrom(TOKEN_KEY, message);

async function main(): Promise<void> {
  $('#logout').addEventListener('click', () => logout());
  const token = await login(TOKEN_KEY, roleCheck);
  const claims = decodeToken(token);
  const app = new UnitApp(new Api(token), claims?.unitId ?? '');
  try {
    await app.start(token);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      logout(`The server refused the token: ${err.message}`);
      return;
    }
    toast(`Could not load: ${errorText(err)}`, 'error');
  }
}

void main();
