/*
 * journal-map.js: offline basemap, clustered photo markers, routes and story hooks for the journal's
 * maps: the app's map pages (journalMap.create) and the folium pages of exported bundles
 * (journal/mapview.py calls journalMap.attach). No network: data comes from <script> data files
 * (basemap/*.js), an inline JSON block, or same-origin URLs.
 *
 * Clustering is supercluster's (vendor/supercluster) through journal-cluster.js, in a worker
 * (journal-map-worker.js, started early by journal-map-boot.js) on the app's pages, else on the
 * main thread. Only the
 * clusters in view are drawn, as photo thumbnails with a count, so 100,000 photos cost what the
 * few hundred markers on screen cost.
 *
 * Public hooks (window.journalMap):
 *   journalMap.ready              -> Promise<number>  photos indexed and the first clusters drawn
 *   journalMap.flyToPhoto(id)     -> Promise<boolean> fly to a photo (zoomed until it stands alone), open its popup
 *   journalMap.fitPhotos(ids)     -> Promise<boolean> show a set of photos (a day of the story)
 *   journalMap.pickPosition(text) -> Promise<{lat, lon} | null>  the next click on the map (Esc cancels)
 *   journalMap.addPoint(point)    -> add a photo placed after loading ({id, lat, lon})
 *   document event "journal:marker-click"  detail: {id}, when a person picks a photo on the map
 *   document event "journal:map-ready"     detail: {count}
 * Captions and other photo fields are untrusted: they only ever reach the page as textContent.
 */
/* global L, journalCluster */
(function () {
  "use strict";

  var BASEMAP_PANE = "journal-basemap";
  var LABEL_PANE = "journal-labels";
  var ROUTE_PANE = "journal-routes";
  var LABEL_MAX_ZOOM = 10;
  var FLY_MIN_ZOOM = 12;
  var FIT_MAX_ZOOM = 15;
  var CLUSTER = { radius: 80, minZoom: 0, maxZoom: 17 };
  var LAND = { stroke: true, color: "#8aa5b8", weight: 0.8, fill: true, fillColor: "#f4f1ea", fillOpacity: 1 };
  var BORDER = { stroke: true, color: "#a78ea7", weight: 0.8, opacity: 0.9, fill: false };
  var TRACK = { color: "#1c7ed6", weight: 3.5, opacity: 0.9, pane: ROUTE_PANE, interactive: true };
  var WALK = { color: "#1c7ed6", weight: 2.5, opacity: 0.75, dashArray: "6 6", pane: ROUTE_PANE, interactive: true };
  var START = { radius: 6, color: "#ffffff", weight: 2, fillColor: "#2f9e44", fillOpacity: 1, pane: ROUTE_PANE };
  var END = { radius: 6, color: "#ffffff", weight: 2, fillColor: "#c92a2a", fillOpacity: 1, pane: ROUTE_PANE };
  var ATTRIBUTION = "Natural Earth | GeoNames (CC BY 4.0)";

  // --- small helpers --------------------------------------------------------------------------

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function escapeHtml(text) {
    // Leaflet's attribution control inserts HTML; our attributions are plain text.
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function sameOrigin(url) {
    try {
      var parsed = new URL(String(url), document.baseURI);
      return parsed.protocol === location.protocol && parsed.host === location.host;
    } catch (error) {
      return false;
    }
  }

  function near(lon, centre) {
    // The same meridian as lon, moved by whole turns to be nearest centre (the short way across 180).
    return lon + 360 * Math.round((centre - lon) / 360);
  }

  function reachesEast(map) {
    // Content across the antimeridian is drawn east of 180, and the map then reaches round once more.
    var max = map.options.maxBounds;
    return !!max && L.latLngBounds(max).getEast() > 180;
  }

  function mark(name) {
    if (window.performance && performance.mark) performance.mark("journal-map:" + name);
  }

  function makePane(map, name, zIndex, interactive) {
    var pane = map.getPane(name) || map.createPane(name);
    pane.style.zIndex = String(zIndex);
    if (!interactive) pane.style.pointerEvents = "none";
    return pane;
  }

  // --- basemap -------------------------------------------------------------------------------

  function addWorld(map, world, shift) {
    makePane(map, BASEMAP_PANE, 150); // below tilePane (200): offline tiles draw over it
    L.geoJSON(world, {
      coordsToLatLng: function (c) {
        return L.latLng(c[1], c[0] + shift);
      },
      pane: BASEMAP_PANE,
      renderer: L.canvas({ pane: BASEMAP_PANE, padding: 0.5 }),
      interactive: false,
      style: function (feature) {
        return feature.properties.kind === "border" ? BORDER : LAND;
      },
    }).addTo(map);
  }

  function placeMarker(feature, shift) {
    var c = feature.geometry.coordinates;
    var label = element("span", "journal-place-name", feature.properties.name);
    var icon = L.divIcon({ className: "journal-place", html: label, iconSize: null });
    return L.marker([c[1], c[0] + shift], { icon: icon, pane: LABEL_PANE, interactive: false, keyboard: false });
  }

  function addPlaces(map, places, shifts) {
    makePane(map, LABEL_PANE, 350); // above tiles, below routes and photos
    var tiers = {};
    places.features.forEach(function (feature) {
      var zoom = feature.properties.z;
      shifts.forEach(function (shift) {
        (tiers[zoom] = tiers[zoom] || L.layerGroup()).addLayer(placeMarker(feature, shift));
      });
    });
    function update() {
      var zoom = map.getZoom();
      Object.keys(tiers).forEach(function (minZoom) {
        var show = zoom >= Number(minZoom) && zoom <= LABEL_MAX_ZOOM;
        if (show !== map.hasLayer(tiers[minZoom])) {
          if (show) map.addLayer(tiers[minZoom]);
          else map.removeLayer(tiers[minZoom]);
        }
      });
    }
    map.on("zoomend", update);
    update();
  }

  function addBasemap(map) {
    var data = window.journalBasemap || {};
    // One world, and a second one east of it when the map reaches past 180 (a trip across it).
    var shifts = reachesEast(map) ? [0, 360] : [0];
    if (data.world) {
      shifts.forEach(function (shift) {
        addWorld(map, data.world, shift);
      });
    } else console.warn("journal-map: basemap/world.js did not load");
    if (data.places) addPlaces(map, data.places, shifts);
    map.attributionControl.addAttribution(ATTRIBUTION);
  }

  // --- the cluster index: in a worker, or here ------------------------------------------------

  function localIndex(state, pointsPromise) {
    var engine = null;
    var loaded = pointsPromise.then(function (points) {
      engine = journalCluster.create(points, state.config.cluster || CLUSTER);
      return { count: engine.count, bounds: engine.bounds };
    });
    return {
      loaded: loaded,
      query: function (message) {
        return loaded.then(function () {
          return engine.query(message);
        });
      },
    };
  }

  function canUseWorker(config) {
    // journal-map-boot.js (the app's pages) runs the index in a worker; a bundle opened from file://
    // cannot start workers and builds it here.
    var boot = window.journalMapIndex;
    return !!(boot && boot.usable(config) && window.Worker && /^https?:$/.test(location.protocol));
  }

  function geojsonPoints(state, collection) {
    var points = [];
    ((collection && collection.features) || []).forEach(function (feature, i) {
      var geometry = feature && feature.geometry;
      if (!geometry || geometry.type !== "Point") return;
      var lat = Number(geometry.coordinates[1]);
      var lon = Number(geometry.coordinates[0]);
      if (!isFinite(lat) || !isFinite(lon)) return;
      var props = feature.properties || {};
      var id = props.id !== undefined && props.id !== null ? props.id : "p" + i;
      state.details.set(String(id), props);
      points.push([id, lat, lon]);
    });
    return points;
  }

  function inlinePoints(state, config) {
    // An exported bundle: GeoJSON features with their popup fields, in a non-executed data block.
    var block = document.getElementById(config.pointsElement);
    return geojsonPoints(state, block ? JSON.parse(block.textContent) : null);
  }

  function fetchPoints(state, url) {
    // The compact {"points": [[id, lat, lon], ...]} of /api/photos.points, or a GeoJSON collection.
    var request = { credentials: "same-origin", headers: { Accept: "application/json, application/geo+json" } };
    return fetch(url, request).then(function (response) {
      if (!response.ok) throw new Error("points: HTTP " + response.status);
      return response.json().then(function (payload) {
        if (payload && payload.type === "FeatureCollection") return geojsonPoints(state, payload);
        return (payload && payload.points) || [];
      });
    });
  }

  function makeIndex(state, config) {
    if (config.pointsElement) return localIndex(state, Promise.resolve(inlinePoints(state, config)));
    if (!config.pointsUrl) return localIndex(state, Promise.resolve([]));
    if (canUseWorker(config)) return window.journalMapIndex.take(config);
    return localIndex(state, fetchPoints(state, config.pointsUrl));
  }

  // --- photo details (popups) -----------------------------------------------------------------

  function details(state, ids) {
    var missing = ids.filter(function (id) {
      return !state.details.has(String(id));
    });
    var ready = Promise.resolve();
    if (missing.length && state.config.detailsUrl) {
      var url = state.config.detailsUrl + (state.config.detailsUrl.indexOf("?") < 0 ? "?" : "&");
      ready = fetch(url + "ids=" + missing.slice(0, 200).join(","), { credentials: "same-origin" })
        .then(function (response) {
          return response.ok ? response.json() : { photos: {} };
        })
        .then(function (payload) {
          Object.keys(payload.photos || {}).forEach(function (id) {
            state.details.set(String(id), payload.photos[id]);
          });
        })
        .catch(function (error) {
          console.warn("journal-map: photo details", error);
        });
    }
    return ready.then(function () {
      return ids.map(function (id) {
        return state.details.get(String(id)) || { id: id };
      });
    });
  }

  function thumbUrl(state, id) {
    var known = state.details.get(String(id));
    if (known && known.thumb_url) return known.thumb_url;
    var template = state.config.thumbUrl;
    return template ? template.replace("{id}", encodeURIComponent(String(id))) : null;
  }

  function thumbImage(url, className) {
    var img = element("img", className);
    img.alt = "";
    img.decoding = "async";
    img.loading = "lazy";
    img.addEventListener("error", function () {
      img.classList.add("is-missing");
    });
    if (url && sameOrigin(url)) img.src = String(url);
    else img.classList.add("is-missing");
    return img;
  }

  function popupContent(props) {
    var root = element("div", "journal-popup");
    if (props.thumb_url && sameOrigin(props.thumb_url)) {
      var img = element("img", "journal-popup-thumb");
      img.alt = "";
      img.src = String(props.thumb_url);
      root.appendChild(img);
    }
    if (props.caption) root.appendChild(element("p", "journal-popup-caption", props.caption));
    var when = props.taken_at || props.taken_at_local || props.taken_at_utc;
    var meta = [props.place, when].filter(Boolean).join(" \u00b7 ");
    if (meta) root.appendChild(element("p", "journal-popup-meta", meta));
    var sourceWords = {
      "track": "Position from a GPS track",
      "track-nearest": "Position from a GPS track (nearest point)",
      "manual": "Position set by you",
      "camera": "Position from the camera's GPS"
    };
    if (sourceWords[props.position_source]) {
      root.appendChild(element("p", "journal-popup-badge", sourceWords[props.position_source]));
    }
    if (props.url && sameOrigin(props.url)) {
      var link = element("a", "journal-popup-link", "Open photo \u2192");
      link.href = String(props.url);
      root.appendChild(link);
    }
    return root;
  }

  function stackContent(state, ids) {
    var root = element("div", "journal-stack");
    root.appendChild(element("p", "journal-stack-title", ids.length + " photos here"));
    var grid = element("div", "journal-stack-grid");
    ids.forEach(function (id) {
      var button = element("button", "journal-stack-photo");
      button.type = "button";
      button.title = "Show this photo";
      button.appendChild(thumbImage(thumbUrl(state, id), "journal-stack-thumb"));
      button.addEventListener("click", function () {
        showPopup(state, id, state.popup.getLatLng());
        announce(id);
      });
      grid.appendChild(button);
    });
    root.appendChild(grid);
    return root;
  }

  function showPopup(state, id, latlng) {
    state.popup.setLatLng(latlng).setContent(element("div", "journal-popup is-loading", "Loading\u2026")).openOn(state.map);
    return details(state, [id]).then(function (found) {
      if (state.popup.isOpen()) state.popup.setContent(popupContent(found[0]));
      return true;
    });
  }

  function announce(id) {
    document.dispatchEvent(new CustomEvent("journal:marker-click", { detail: { id: id } }));
  }

  // --- markers for what is in view -------------------------------------------------------------

  function markerSize(count) {
    // Clusters grow a little with their count; radius 80 px keeps neighbours from overlapping much.
    if (count <= 1) return 38;
    return Math.min(56, Math.round(42 + 3.5 * Math.log10(count)));
  }

  function markerIcon(state, item) {
    var count = item[2];
    var size = markerSize(count);
    var box = element("div", count > 1 ? "jm-marker jm-cluster" : "jm-marker jm-photo");
    box.style.width = box.style.height = size + "px";
    box.setAttribute("data-count", String(count));
    box.setAttribute(count > 1 ? "data-cluster" : "data-photo", String(item[3]));
    box.appendChild(thumbImage(thumbUrl(state, item[4]), "jm-thumb"));
    if (count > 1) box.appendChild(element("span", "jm-count", count >= 1000 ? Math.round(count / 100) / 10 + "k" : count));
    return L.divIcon({ className: "jm-icon", html: box, iconSize: [size, size], iconAnchor: [size / 2, size / 2] });
  }

  function makeMarker(state, item) {
    var marker = L.marker([item[0], item[1]], {
      icon: markerIcon(state, item),
      keyboard: true,
      title: item[2] > 1 ? item[2] + " photos" : "Photo",
      riseOnHover: true,
    });
    marker.on("click", function () {
      if (item[2] > 1) openCluster(state, item);
      else {
        showPopup(state, item[3], marker.getLatLng());
        announce(item[3]);
      }
    });
    return marker;
  }

  function openCluster(state, item) {
    state.index.query({ op: "expansionZoom", id: item[3] }).then(function (zoom) {
      if (zoom <= state.map.getMaxZoom() && zoom > state.map.getZoom()) {
        state.map.flyTo([item[0], item[1]], zoom, { duration: 0.5 });
        return;
      }
      // Photos taken at the very same spot never split: list them instead.
      state.index.query({ op: "leaves", id: item[3], limit: 24 }).then(function (ids) {
        state.popup.setLatLng([item[0], item[1]]).setContent(stackContent(state, ids)).openOn(state.map);
      });
    });
  }

  function keyOf(item) {
    // The turn is part of the key: the same photo drawn one world further east is another marker.
    return (item[2] > 1 ? "c" : "p") + item[3] + "@" + Math.round(item[1] / 360);
  }

  function viewQuery(map) {
    // Longitudes as the view has them (past 180 east of the antimeridian): supercluster wraps them
    // and queries both sides of 180 when the box crosses it.
    var bounds = map.getBounds().pad(0.25);
    var west = bounds.getWest();
    var east = bounds.getEast();
    if (east - west >= 360) {
      west = -180;
      east = 180;
    }
    var south = Math.max(-85, bounds.getSouth());
    var north = Math.min(85, bounds.getNorth());
    return { op: "clusters", bbox: [west, south, east, north], zoom: Math.round(map.getZoom()) };
  }

  function render(state) {
    var ticket = ++state.renderTicket;
    return state.index.query(viewQuery(state.map)).then(function (items) {
      if (ticket !== state.renderTicket || !items) return state.shown.size;
      var centre = state.map.getCenter().lng;
      var wanted = new Map();
      items.forEach(function (item) {
        // Drawn on the copy of the world in view: 179.99 W is 180.01 on a map centred on 180.
        var drawn = [item[0], near(item[1], centre), item[2], item[3], item[4]];
        wanted.set(keyOf(drawn), drawn);
      });
      state.shown.forEach(function (marker, key) {
        if (!wanted.has(key)) {
          state.photos.removeLayer(marker);
          state.shown.delete(key);
        }
      });
      wanted.forEach(function (item, key) {
        if (!state.shown.has(key)) {
          var marker = makeMarker(state, item);
          state.shown.set(key, marker);
          state.photos.addLayer(marker);
        }
      });
      highlight(state, state.activeId);
      return state.shown.size;
    });
  }

  function highlight(state, id) {
    state.activeId = id;
    var container = state.map.getContainer();
    container.querySelectorAll(".jm-marker.is-active").forEach(function (node) {
      node.classList.remove("is-active");
    });
    if (id === null || id === undefined) return;
    var node = container.querySelector('.jm-photo[data-photo="' + CSS.escape(String(id)) + '"]');
    if (node) node.classList.add("is-active");
  }

  // --- routes, tiles, controls (app pages; folium draws its own) --------------------------------

  function addRoutes(map, routes) {
    if (!routes || !routes.length) return null;
    makePane(map, ROUTE_PANE, 390, true); // above labels, below markers (600)
    // Lines come in time order: the journey's start is the first line's first point, its end the
    // last line's last point (one pair of markers, however often the route is cut).
    var group = L.featureGroup();
    var drawn = routes.filter(function (route) {
      return route.coords && route.coords.length >= 2;
    });
    drawn.forEach(function (route) {
      var line = L.polyline(route.coords, route.kind === "track" ? TRACK : WALK).addTo(group);
      var label = route.name ? String(route.name) : route.kind === "track" ? "GPX track" : "Route between photos";
      line.bindTooltip(element("span", null, label), { sticky: true });
    });
    if (!drawn.length) return null;
    var last = drawn[drawn.length - 1].coords;
    L.circleMarker(drawn[0].coords[0], START).bindTooltip("Start").addTo(group);
    L.circleMarker(last[last.length - 1], END).bindTooltip("End").addTo(group);
    return group.addTo(map);
  }

  function addTiles(map, config, control) {
    if (config.tiles) {
      var t = config.tiles;
      var options = {
        minZoom: t.minZoom,
        maxNativeZoom: t.maxZoom,
        maxZoom: map.getMaxZoom(),
        attribution: escapeHtml(t.attribution || "Offline tiles"),
      };
      if (t.bounds) options.bounds = t.bounds;
      control.addOverlay(L.tileLayer(t.url, options).addTo(map), "Offline map");
    }
    if (config.onlineTiles) {
      var online = L.tileLayer(config.onlineTiles.url, {
        attribution: escapeHtml(config.onlineTiles.attribution || "Online map"),
        maxZoom: map.getMaxZoom(),
      });
      control.addOverlay(online, "Online map (needs internet)");
    }
  }

  function statusControl(map) {
    var control = L.control({ position: "bottomleft" });
    control.onAdd = function () {
      return element("div", "journal-progress leaflet-bar", "Loading photos\u2026");
    };
    return control.addTo(map);
  }

  function pickBanner(map, text, cancel) {
    var control = L.control({ position: "topright" });
    control.onAdd = function () {
      var box = element("div", "journal-pick leaflet-bar");
      box.appendChild(element("span", null, text || "Click the map where the photo was taken"));
      var button = element("button", "journal-pick-cancel", "Cancel");
      button.type = "button";
      L.DomEvent.disableClickPropagation(box);
      button.addEventListener("click", cancel);
      box.appendChild(button);
      return box;
    };
    return control.addTo(map);
  }

  // --- the public hooks -------------------------------------------------------------------------

  function fitTo(map, bounds, also) {
    var box = L.latLngBounds(also || []);
    if (bounds) box.extend(L.latLngBounds(bounds));
    if (box.isValid()) map.fitBounds(box, { padding: [32, 32], maxZoom: FIT_MAX_ZOOM, animate: false });
  }

  function flyToPhoto(state, id) {
    var extra = state.extras.get(String(id));
    var located = extra
      ? Promise.resolve({ lat: extra.getLatLng().lat, lon: extra.getLatLng().lng, zoom: FLY_MIN_ZOOM })
      : state.ready.then(function () {
          return state.index.query({ op: "locate", id: Number(id), minZoom: FLY_MIN_ZOOM });
        });
    return located.then(function (at) {
      if (!at) return false;
      var map = state.map;
      var zoom = Math.min(map.getMaxZoom(), Math.max(at.zoom, FLY_MIN_ZOOM, Math.round(map.getZoom())));
      var target = L.latLng(at.lat, near(at.lon, map.getCenter().lng));
      state.activeId = id;
      return new Promise(function (resolve) {
        var done = function () {
          render(state).then(function () {
            showPopup(state, id, target);
            resolve(true);
          });
        };
        if (map.getZoom() === zoom && map.getBounds().pad(-0.2).contains(target)) return done();
        map.once("moveend", done);
        map.flyTo(target, zoom, { duration: 0.8 });
      });
    });
  }

  function fitPhotos(state, ids) {
    return state.ready.then(function () {
      return state.index.query({ op: "bounds", ids: ids.map(Number) }).then(function (bounds) {
        if (!bounds) return false;
        var west = near(bounds[0][1], state.map.getCenter().lng);
        bounds = [[bounds[0][0], west], [bounds[1][0], west + bounds[1][1] - bounds[0][1]]];
        state.map.flyToBounds(bounds, { padding: [48, 48], maxZoom: FIT_MAX_ZOOM, duration: 0.8 });
        return true;
      });
    });
  }

  function pickPosition(state, text) {
    if (state.picking) state.picking(null);
    var map = state.map;
    return new Promise(function (resolve) {
      var banner = null;
      function finish(value) {
        state.picking = null;
        map.off("click", onClick);
        document.removeEventListener("keydown", onKey);
        map.getContainer().classList.remove("jm-picking");
        if (banner) banner.remove();
        resolve(value);
      }
      function onClick(event) {
        var p = event.latlng.wrap();
        finish({ lat: Math.round(p.lat * 1e6) / 1e6, lon: Math.round(p.lng * 1e6) / 1e6 });
      }
      function onKey(event) {
        if (event.key === "Escape") finish(null);
      }
      state.picking = finish;
      banner = pickBanner(map, text, function () {
        finish(null);
      });
      map.getContainer().classList.add("jm-picking");
      map.on("click", onClick);
      document.addEventListener("keydown", onKey);
    });
  }

  function addPoint(state, point) {
    var id = String(point.id);
    var old = state.extras.get(id);
    if (old) state.extrasLayer.removeLayer(old);
    if (point.thumb_url || point.caption || point.place) state.details.set(id, point);
    var marker = makeMarker(state, [point.lat, point.lon, 1, point.id, point.id]);
    state.extras.set(id, marker);
    state.extrasLayer.addLayer(marker);
    return marker;
  }

  function announceReady(count) {
    mark("ready");
    document.documentElement.setAttribute("data-journal-map", "ready");
    document.dispatchEvent(new CustomEvent("journal:map-ready", { detail: { count: count } }));
    return count;
  }

  function start(state, config) {
    document.documentElement.setAttribute("data-journal-map", "loading");
    var status = config.pointsUrl ? statusControl(state.map) : null;
    state.index = makeIndex(state, config);
    state.ready = state.index.loaded
      .then(function (info) {
        mark("indexed");
        if (config.fitPoints) fitTo(state.map, info.bounds, config.fitAlso);
        state.count = info.count;
        return render(state).then(function () {
          return info.count;
        });
      })
      .catch(function (error) {
        console.error("journal-map: could not load points", error);
        return 0;
      })
      .then(function (count) {
        if (status) status.remove();
        state.map.on("moveend", function () {
          render(state);
        });
        return announceReady(count);
      });
  }

  function attach(map, config) {
    config = config || {};
    addBasemap(map);
    if (config.attribution) map.attributionControl.addAttribution(config.attribution);
    var state = {
      map: map,
      config: config,
      details: new Map(),
      shown: new Map(),
      extras: new Map(),
      photos: L.layerGroup().addTo(map),
      extrasLayer: L.layerGroup().addTo(map),
      popup: L.popup({ maxWidth: 280, minWidth: 180, autoPanPadding: [24, 24] }),
      renderTicket: 0,
      activeId: null,
      picking: null,
      count: 0,
    };
    start(state, config);
    api.map = map;
    api.ready = state.ready;
    api.flyToPhoto = function (id) {
      return flyToPhoto(state, id);
    };
    api.fitPhotos = function (ids) {
      return fitPhotos(state, ids || []);
    };
    api.pickPosition = function (text) {
      return pickPosition(state, text);
    };
    api.addPoint = function (point) {
      return addPoint(state, point);
    };
    api.highlight = function (id) {
      highlight(state, id);
    };
    return api;
  }

  function crossesAntimeridian(config) {
    // The page's bounds and routes come unwrapped (journal/route.py, extent): east of 180 when they cross it.
    if (config.bounds && config.bounds[1][1] > 180) return true;
    return (config.routes || []).some(function (route) {
      return (route.coords || []).some(function (c) {
        return c[1] > 180;
      });
    });
  }

  function create(container, config) {
    config = config || {};
    var map = L.map(container, {
      center: [20, 0],
      zoom: 2,
      minZoom: 2,
      maxZoom: 18,
      preferCanvas: true,
      zoomSnap: 1,
      worldCopyJump: false,
      maxBounds: [[-85, -180], [85, crossesAntimeridian(config) ? 540 : 180]],
      maxBoundsViscosity: 0.8,
    });
    L.control.scale({ imperial: false }).addTo(map);
    var control = L.control.layers(null, null, { collapsed: true });
    addTiles(map, config, control);
    var routes = addRoutes(map, config.routes);
    if (routes) control.addOverlay(routes, "Route");
    if (config.tiles || config.onlineTiles || routes) control.addTo(map);
    if (config.bounds) fitTo(map, config.bounds, null);
    else if (routes) fitTo(map, null, [routes.getBounds().getSouthWest(), routes.getBounds().getNorthEast()]);
    return attach(map, config);
  }

  var api = {
    attach: attach,
    create: create,
    ready: Promise.resolve(0),
    flyToPhoto: function () {
      return Promise.resolve(false);
    },
    fitPhotos: function () {
      return Promise.resolve(false);
    },
    pickPosition: function () {
      return Promise.resolve(null);
    },
    addPoint: function () {
      return null;
    },
    highlight: function () {},
  };
  window.journalMap = api;
})();
