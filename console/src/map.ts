// Leaflet helpers shared by the console, the unit page and the replay viewer. No tile server:
// the map is the district's own GeoJSON (sub-districts and grid cells) on a plain background,
// with units (circles coloured by status) and incidents (diamonds coloured by priority) as
// DOM markers that carry `data-id` / `data-status` for tests and styling.

import * as L from 'leaflet';
import type { LonLat } from '../../src/core/types.ts';

export const UNIT_COLOURS: Record<string, string> = {
  available: '#2e9d4f',
  offered: '#e5a100',
  en_route: '#1f6fd1',
  on_scene: '#7b3fbf',
  off_duty: '#8a8f98',
  out_of_service: '#4a4a4a',
};

export const PRIORITY_COLOURS: Record<number, string> = {
  1: '#d62728',
  2: '#f07c12',
  3: '#c9a400',
  4: '#3d8fc4',
};

const SUBDISTRICT_FILLS = ['#cfe3f5', '#d9efd3', '#f6e3c8', '#e6d9f2', '#f3d6d6', '#d6f0ee'];

export const toLatLng = (p: LonLat): L.LatLngExpression => [p[1], p[0]];

export interface AreaFeatureLike {
  type: 'Feature';
  properties?: { id?: string; name?: string; parent?: string; kind?: string } | null;
  geometry: { type: string; coordinates: unknown };
}

export function createMap(el: HTMLElement, opts: { zoomControl?: boolean } = {}): L.Map {
  const map = L.map(el, {
    zoomControl: opts.zoomControl ?? true,
    attributionControl: false,
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    minZoom: 8,
    maxZoom: 19,
  });
  // Area names sit above the areas but below the markers, so they never hide a unit.
  const labels = map.createPane('areaLabels');
  labels.style.zIndex = '450';
  labels.style.pointerEvents = 'none';
  // Somewhere sensible until the district or the first markers are known.
  map.setView([23.1, 113.46], 13);
  return map;
}

/**
 * Draws the areas: sub-districts filled and outlined (labelled), grid cells as thin lines.
 * Returns the layer (empty collection: an empty layer) and its bounds, if any.
 */
export function drawAreas(
  map: L.Map,
  areas: { type: 'FeatureCollection'; features: unknown[] },
): { layer: L.GeoJSON; bounds?: L.LatLngBounds } {
  const features = (areas.features as AreaFeatureLike[]).filter(
    (f) => f && (f.geometry?.type === 'Polygon' || f.geometry?.type === 'MultiPolygon'),
  );
  // Sub-districts first (below), then cells.
  const parents = features.filter((f) => !f.properties?.parent);
  const cells = features.filter((f) => !!f.properties?.parent);
  const fillOf = new Map<string, string>();
  parents.forEach((f, i) => {
    fillOf.set(String(f.properties?.id ?? i), SUBDISTRICT_FILLS[i % SUBDISTRICT_FILLS.length]);
  });
  const layer = L.geoJSON(undefined, {
    style: (f) => {
      const p = (f as AreaFeatureLike | undefined)?.properties;
      if (p?.parent) {
        return {
          color: '#7d8a99',
          weight: 0.6,
          opacity: 0.7,
          fill: false,
          dashArray: '2 3',
          interactive: false,
        };
      }
      return {
        color: '#3b4a5c',
        weight: 2,
        opacity: 0.9,
        fillColor: fillOf.get(String(p?.id)) ?? SUBDISTRICT_FILLS[0],
        fillOpacity: 0.55,
      };
    },
    onEachFeature: (f, l) => {
      const p = (f as AreaFeatureLike).properties;
      const el = l as L.Path;
      el.options.className = p?.parent ? 'area-cell' : 'area-subdistrict';
      if (!p?.parent && p?.name) {
        l.bindTooltip(p.name, {
          permanent: true,
          direction: 'center',
          className: 'area-label',
          opacity: 0.85,
          pane: 'areaLabels',
        });
      } else if (p?.name) {
        l.bindTooltip(p.name, { sticky: true, className: 'area-hover' });
      }
    },
  });
  for (const f of [...parents, ...cells]) layer.addData(f as unknown as GeoJSON.Feature);
  layer.addTo(map);
  layer.bringToBack();
  const bounds = layer.getBounds();
  return { layer, bounds: bounds.isValid() ? bounds : undefined };
}

/** Fits the view on bounds, or else on the given points (with a minimum extent). */
export function fitView(map: L.Map, bounds: L.LatLngBounds | undefined, points: LonLat[] = []): void {
  let b = bounds;
  if (!b && points.length > 0) b = L.latLngBounds(points.map((p) => L.latLng(p[1], p[0])));
  if (!b) return;
  if (b.getNorthEast().equals(b.getSouthWest())) b = b.pad(0.01);
  map.fitBounds(b, { padding: [24, 24], maxZoom: 16 });
}

/** Units are drawn above incidents; a unit on scene sits at the top right of its incident. */
export const UNIT_Z = 10_000;

/** z-offset of a unit marker: committed units above free ones standing at the same station. */
export const unitZ = (status: string): number => UNIT_Z + (status === 'available' ? 0 : 500);

export function unitIcon(id: string, status: string, label = true): L.DivIcon {
  const colour = UNIT_COLOURS[status] ?? '#555';
  return L.divIcon({
    className: 'unit-icon',
    iconSize: [16, 16],
    iconAnchor: status === 'on_scene' ? [-2, 18] : [8, 8],
    html:
      `<div class="unit-marker status-${esc(status)}" data-id="${esc(id)}" data-status="${esc(status)}" style="background:${colour}"></div>` +
      (label ? `<span class="unit-label">${esc(id)}</span>` : ''),
  });
}

export function incidentIcon(id: string, priority: number, status: string, selected = false): L.DivIcon {
  const colour = PRIORITY_COLOURS[priority] ?? '#555';
  return L.divIcon({
    className: 'incident-icon',
    iconSize: [22, 22],
    iconAnchor: [11, 11],
    html: `<div class="incident-marker p${priority} status-${esc(status)}${selected ? ' selected' : ''}" data-id="${esc(id)}" data-status="${esc(status)}" data-priority="${priority}" style="--pcolour:${colour}"><span>${priority}</span></div>`,
  });
}

export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

/** A map legend (bottom left): unit statuses and incident priorities. */
export function addLegend(map: L.Map, statuses: string[] = Object.keys(UNIT_COLOURS)): void {
  const Legend = L.Control.extend({
    onAdd() {
      const div = L.DomUtil.create('div', 'map-legend');
      const units = statuses
        .map(
          (s) =>
            `<span><i class="dot" style="background:${UNIT_COLOURS[s]}"></i>${s.replace(/_/g, ' ')}</span>`,
        )
        .join('');
      const prios = [1, 2, 3, 4]
        .map((p) => `<span><i class="diamond" style="background:${PRIORITY_COLOURS[p]}"></i>P${p}</span>`)
        .join('');
      div.innerHTML = `<div><b>Units</b> ${units}</div><div><b>Incidents</b> ${prios}</div>`;
      L.DomEvent.disableClickPropagation(div);
      return div;
    },
  });
  new Legend({ position: 'bottomleft' }).addTo(map);
}

export { L };
