/*
 * journal-cluster.js: the photo cluster index shared by journal-map.js (main thread, for exported
 * bundles opened from file://) and journal-map-worker.js (a worker, for the app's pages).
 * Wraps supercluster (vendor/supercluster, ISC); points are compact [photo id, lat, lon] arrays.
 *
 *   var engine = journalCluster.create(points, options);
 *   engine.count, engine.bounds                      number of points, [[s, w], [n, e]] or null
 *                                                    (e > 180 when the photos cross the antimeridian)
 *   engine.query({op: "clusters", bbox, zoom})       -> [[lat, lon, count, id, cover id], ...]
 *   engine.query({op: "expansionZoom", id})          -> zoom at which a cluster splits
 *   engine.query({op: "leaves", id, limit})          -> photo ids in a cluster
 *   engine.query({op: "locate", id, minZoom})        -> {lat, lon, zoom (first zoom it stands alone)}
 *   engine.query({op: "bounds", ids})                -> [[s, w], [n, e]] of those photos, or null
 */
/* global Supercluster */
(function (root) {
  "use strict";

  function features(points, byId) {
    var list = new Array(points.length);
    for (var i = 0; i < points.length; i++) {
      var p = points[i];
      byId.set(p[0], [p[1], p[2]]);
      list[i] = { type: "Feature", properties: { id: p[0] }, geometry: { type: "Point", coordinates: [p[2], p[1]] } };
    }
    return list;
  }

  function lonSpan(lons) {
    // West and east of the shortest arc holding the longitudes: the complement of the widest gap
    // between neighbours on the circle. East is past 180 when the arc crosses the antimeridian.
    var sorted = lons.slice().sort(function (a, b) {
      return a - b;
    });
    var n = sorted.length;
    var gap = sorted[0] + 360 - sorted[n - 1], start = 0;
    for (var i = 1; i < n; i++) {
      if (sorted[i] - sorted[i - 1] > gap) {
        gap = sorted[i] - sorted[i - 1];
        start = i;
      }
    }
    var west = sorted[start], east = sorted[(start + n - 1) % n];
    return [west, east < west ? east + 360 : east];
  }

  function boundsOf(points) {
    if (!points.length) return null;
    var s = 90, n = -90, lons = new Array(points.length);
    for (var i = 0; i < points.length; i++) {
      var lat = points[i][1];
      if (lat < s) s = lat;
      if (lat > n) n = lat;
      lons[i] = points[i][2];
    }
    var span = lonSpan(lons);
    return [[s, span[0]], [n, span[1]]];
  }

  function compact(feature) {
    var c = feature.geometry.coordinates, p = feature.properties;
    if (p.cluster) return [c[1], c[0], p.point_count, p.cluster_id, p.cover];
    return [c[1], c[0], 1, p.id, p.id];
  }

  function withCover(options) {
    // Each cluster remembers one photo to show: the first imported (lowest id).
    return Object.assign({}, options, {
      map: function (props) {
        return { cover: props.id };
      },
      reduce: function (acc, props) {
        if (props.cover < acc.cover) acc.cover = props.cover;
      },
    });
  }

  function create(points, options) {
    var byId = new Map();
    var index = new Supercluster(withCover(options)).load(features(points, byId));
    var maxZoom = index.options.maxZoom;

    function aloneAt(id, minZoom) {
      var at = byId.get(id);
      var eps = 1e-7;
      for (var z = Math.max(0, minZoom || 0); z <= maxZoom; z++) {
        var near = index.getClusters([at[1] - eps, at[0] - eps, at[1] + eps, at[0] + eps], z);
        for (var i = 0; i < near.length; i++) {
          if (!near[i].properties.cluster && near[i].properties.id === id) return z;
        }
      }
      return maxZoom + 1;
    }

    var ops = {
      clusters: function (m) {
        return index.getClusters(m.bbox, m.zoom).map(compact);
      },
      expansionZoom: function (m) {
        return index.getClusterExpansionZoom(m.id);
      },
      leaves: function (m) {
        return index.getLeaves(m.id, m.limit || 24).map(function (f) {
          return f.properties.id;
        });
      },
      locate: function (m) {
        var at = byId.get(m.id);
        return at ? { lat: at[0], lon: at[1], zoom: aloneAt(m.id, m.minZoom) } : null;
      },
      bounds: function (m) {
        var picked = [];
        (m.ids || []).forEach(function (id) {
          var at = byId.get(id);
          if (at) picked.push([id, at[0], at[1]]);
        });
        return boundsOf(picked);
      },
    };

    return {
      count: points.length,
      bounds: boundsOf(points),
      query: function (message) {
        var op = ops[message.op];
        return op ? op(message) : null;
      },
    };
  }

  root.journalCluster = { create: create };
})(typeof self !== "undefined" ? self : this);
