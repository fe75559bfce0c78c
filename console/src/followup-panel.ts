// A read-only follow-up panel on the dispatcher console: the duties lists (the immediate-
// response list, each sub-district's own list, the types routed to the district level), the
// open review flags and the reporter-webhook dead-letter list. Refreshed every 30 s and when
// opened; everything through the /v1 API with the console's token. A role that may not read a
// list (a planner: dead letters) or a server without the follow-up side (503) shows a note.

import { type Api, ApiError, errorText, h } from './common.ts';

interface DutyLists {
  immediate: string[];
  areas: { area: string; name: string; types: string[] }[];
  districtLevel: string[];
}

interface ReviewView {
  id: string;
  kind: string;
  at: string;
  incidentId?: string;
  unitId?: string;
  summary: string;
}

interface DeliveryView {
  id: number;
  incidentId: string;
  seq: number;
  status: string;
  url: string;
  attempts: number;
  lastError?: string;
  deadAt?: string;
}

const REFRESH_MS = 30_000;
const KIND_LABEL: Record<string, string> = {
  on_scene_far: 'on scene far away',
  too_fast: 'faster than travel allows',
  repeated_non_response: 'repeated non-response',
  declines_above_threshold: 'declines above threshold',
  closed_without_on_scene: 'closed without on-scene report',
};

const time = (isoText: string) => {
  const d = new Date(isoText);
  return Number.isNaN(d.getTime()) ? isoText : d.toLocaleString();
};

function note(err: unknown): HTMLElement {
  if (err instanceof ApiError && err.status === 403)
    return h('p', { class: 'muted' }, 'Not shown to this role.');
  if (err instanceof ApiError && err.status === 503)
    return h('p', { class: 'muted' }, 'Not running on this server.');
  return h('p', { class: 'muted' }, `Could not load: ${errorText(err)}`);
}

function section(
  title: string,
  id: string,
): { root: HTMLDetailsElement; count: HTMLElement; body: HTMLElement } {
  const count = h('span', { class: 'count' }, '—');
  const body = h('div', { class: 'followup-body' });
  const root = h('details', { class: 'followup-section', id }, h('summary', {}, title, ' ', count), body);
  return { root, count, body };
}

/** Mounts the panel into `root` and keeps it fresh; returns a stop function. */
export function mountFollowUpPanel(api: Api, root: HTMLElement, role: string | undefined): () => void {
  const duties = section('Duties lists', 'followup-duties');
  const reviews = section('Review flags', 'followup-reviews');
  const dead = section('Webhook dead letters', 'followup-dead');
  root.replaceChildren(h('h2', {}, 'Follow-up'), duties.root, reviews.root, dead.root);

  const loadDuties = async () => {
    try {
      const d = await api.get<DutyLists>('/v1/duties');
      duties.count.textContent = String(d.areas.length);
      const list = (types: string[]) =>
        h('p', { class: 'followup-types' }, types.length ? types.join(', ') : '—');
      duties.body.replaceChildren(
        h('h3', {}, 'Immediate-response list'),
        list(d.immediate),
        ...d.areas.flatMap((a) => [h('h3', {}, `${a.name} (${a.area})`), list(a.types)]),
        h('h3', {}, 'District level (on no list)'),
        list(d.districtLevel),
      );
    } catch (err) {
      duties.body.replaceChildren(note(err));
    }
  };

  let running: { reviews: boolean; webhooks: boolean } | undefined;
  const available = async () => {
    running ??= await api.get<{ reviews: boolean; webhooks: boolean }>('/v1/followup');
    return running;
  };
  const off = (s: { body: HTMLElement }, text: string) =>
    s.body.replaceChildren(h('p', { class: 'muted' }, text));

  const loadReviews = async () => {
    try {
      if (!(await available()).reviews) return off(reviews, 'Not running on this server.');
      const { reviews: list } = await api.get<{ reviews: ReviewView[] }>('/v1/reviews?status=open&limit=50');
      reviews.count.textContent = String(list.length);
      reviews.count.classList.toggle('hot', list.length > 0);
      reviews.body.replaceChildren(
        list.length === 0
          ? h('p', { class: 'muted' }, 'No open flags.')
          : h(
              'ul',
              { class: 'followup-list' },
              ...list.map((r) =>
                h(
                  'li',
                  { 'data-review': r.id },
                  h('strong', {}, KIND_LABEL[r.kind] ?? r.kind),
                  h('span', { class: 'muted' }, ` · ${time(r.at)}`),
                  h('div', {}, r.summary),
                ),
              ),
            ),
      );
    } catch (err) {
      reviews.count.textContent = '—';
      reviews.body.replaceChildren(note(err));
    }
  };

  const loadDead = async () => {
    try {
      if (role !== 'dispatcher' && role !== 'admin') return off(dead, 'Shown to dispatchers.');
      if (!(await available()).webhooks) return off(dead, 'Not running on this server.');
      const { deliveries } = await api.get<{ deliveries: DeliveryView[] }>(
        '/v1/webhooks/deliveries?state=dead&limit=50',
      );
      dead.count.textContent = String(deliveries.length);
      dead.count.classList.toggle('hot', deliveries.length > 0);
      dead.body.replaceChildren(
        deliveries.length === 0
          ? h('p', { class: 'muted' }, 'None: every reporter update was delivered or is on its way.')
          : h(
              'ul',
              { class: 'followup-list' },
              ...deliveries.map((d) =>
                h(
                  'li',
                  { 'data-delivery': String(d.id) },
                  h('strong', {}, `${d.incidentId} #${d.seq} ${d.status}`),
                  h(
                    'span',
                    { class: 'muted' },
                    ` · ${d.attempts} attempt(s)${d.deadAt ? ` · ${time(d.deadAt)}` : ''}`,
                  ),
                  h('div', { class: 'muted' }, `${d.url} — ${d.lastError ?? ''}`),
                ),
              ),
            ),
      );
    } catch (err) {
      dead.count.textContent = '—';
      dead.body.replaceChildren(note(err));
    }
  };

  const refresh = () => {
    void loadReviews();
    void loadDead();
  };
  void loadDuties();
  refresh();
  for (const s of [duties, reviews, dead]) s.root.addEventListener('toggle', () => s.root.open && refresh());
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}
