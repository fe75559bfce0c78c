// The scenario file (../shared/PRODUCT.md "Scenario file"): areas, catalogue, units and
// incidents of a day, replayed on a virtual clock or loaded by `dispatch serve --config`.

import type { IncidentType, LonLat, Priority } from '../core/types.ts';

export interface AreaProperties {
  id: string;
  name: string;
  /** Sub-district id of a grid cell; absent on sub-districts/towns themselves. */
  parent?: string;
  /** Incident types this sub-district or town owns (its "list of duties"). */
  duties?: string[];
  [k: string]: unknown;
}

export interface AreaFeature {
  type: 'Feature';
  properties: AreaProperties;
  geometry:
    | { type: 'Polygon'; coordinates: LonLat[][] }
    | { type: 'MultiPolygon'; coordinates: LonLat[][][] };
}

export interface AreaCollection {
  type: 'FeatureCollection';
  features: AreaFeature[];
}

export interface RoadFeature {
  type: 'Feature';
  properties: { speedKmh: number; [k: string]: unknown };
  geometry: { type: 'LineString'; coordinates: LonLat[] };
}

export interface TravelConfig {
  /** Great-circle detour factor, default 1.3. */
  detourFactor?: number;
  /** Optional road network; when given, shortest paths on it replace the great-circle model. */
  roads?: { type: 'FeatureCollection'; features: RoadFeature[] };
}

export interface ScenarioUnit {
  id: string;
  department: string;
  capabilities: string[];
  home: LonLat;
  homeArea?: string;
  speedKmh: number;
  turnoutS: number;
}

export interface ScenarioIncident {
  id: string;
  /** Seconds from the scenario start. */
  atS: number;
  type: string;
  location: LonLat;
  /** Actual on-scene time of this incident; defaults to the catalogue's typical time. */
  onSceneS?: number;
  /** Dispatcher override of the catalogue priority. */
  priority?: Priority;
  /** Caller hangs up / duplicate found: the incident is cancelled at this time if not yet served. */
  cancelAtS?: number;
  /** Where the call came from (hotline, sensor, department feed, dispatcher). */
  source?: string;
}

/** Behaviour of simulated units during a replay or a live demo. */
export interface SimulationConfig {
  /** Modelled acknowledgement delay of an offer, seconds (default 0). */
  ackDelayS?: number;
  /** Probability that a unit declines an offer (default 0). */
  declineProb?: number;
  /** Seconds before an unanswered offer times out (default 30). */
  ackTimeoutS?: number;
  /** After clearing: return to home (true, default) or stay available at the scene. */
  returnHome?: boolean;
  /** Decide on every event (0, default) or in batches every N seconds. */
  cadenceS?: number;
}

export interface Scenario {
  name: string;
  /** ISO 8601 with offset: the wall-clock time of scenario second 0. */
  start: string;
  durationS: number;
  seed: number;
  travel?: TravelConfig;
  areas: AreaCollection;
  catalog: IncidentType[];
  units: ScenarioUnit[];
  incidents: ScenarioIncident[];
  sim?: SimulationConfig;
  description?: string;
}
