/*
 * journal-map.js: offline basemap, clustered photo points and story-panel hooks for the
 * folium maps built by journal/mapview.py. No network: data comes from <script> data files
 * (basemap/*.js), an inline JSON block or a same-origin GeoJSON URL.
 *
 * Public hooks (window.journalMap):
 *   journalMap.flyToPhoto(id) -> Promise<boolean>  zoom to a photo's marker and open its popup
 *   journalMap.ready          -> Promise<number>   resolves with the number of points once added
 *   document event "journal:marker-click"           detail: {id}, when a person clicks a marker
 *   document event "journal:map-ready"              detail: {count}
 * Captions and other photo fields are untrusted: they only ever reach the page as textContent.
 */
(function () {
  "use strict";

  var BASEMAP_PANE = "journal-basemap";
  var LABEL_PANE = "journal-labels";
  var LABEL_MAX_ZOOM = 10;
  var FLY_ZOOM = 15;
  var FIT_MAX_ZOOM = 15;
  var FIRST_BATCH = 5000;
  var LAND = { stroke: true, color: "#8aa5b8", weight: 0.8, fill: true, fillColor: "#f4f1ea", fillOpacity: 1 };
  var BORDER = { stroke: true, color: "#a78ea7", weight: 0.8, opacity: 0.9, fill: false };
  var POINT = { radius: 6, weight: 1.5, color: "#ffffff", fillColor: "#d9480f", fillOpacity: 0.9 };
  var ATTRIBUTION = "Natural Earth | GeoNames (CC BY 4.0)";

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function makePane(map, name, zIndex) {
    var pane = map.getPane(name) || map.createPane(name);
    pane.style.zIndex = String(zIndex);
    pane.style.pointerEvents = "none";
    return pane;
  }

  function addWorld(map, world) {
    makePane(map, BASEMAP_PANE, 150); // below tilePane (200): offline tiles draw over it
    L.geoJSON(world, {
      pane: BASEMAP_PANE,
      renderer: L.canvas({ pane: BASEMAP_PANE, padding: 0.5 }),
      interactive: false,
      style: function (feature) {
        return feature.properties.kind === "border" ? BORDER : LAND;
      },
    }).addTo(map);
  }

  function placeMarker(feature) {
    var c = feature.geometry.coordinates;
    var label = element("span", "journal-place-name", feature.properties.name);
    var icon = L.divIcon({ className: "journal-place", html: label, iconSize: null });
    return L.marker([c[1], c[0]], { icon: icon, pane: LABEL_PANE, interactive: false, keyboard: false });
  }

  function addPlaces(map, places) {
    makePane(map, LABEL_PANE, 350); // above tiles, below routes and photos
    var tiers = {};
    places.features.forEach(function (feature) {
      var zoom = feature.properties.z;
      (tiers[zoom] = tiers[zoom] || L.layerGroup()).addLayer(placeMarker(feature));
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
    if (data.world) addWorld(map, data.world);
    else console.warn("journal-map: basemap/world.js did not load");
    if (data.places) addPlaces(map, data.places);
    map.attributionControl.addAttribution(ATTRIBUTION);
  }

  function sameOrigin(url) {
    try {
      var parsed = new URL(String(url), document.baseURI);
      return parsed.protocol === location.protocol && parsed.host === location.host;
    } catch (error) {
      return false;
    }
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
    return root;
  }

  function toMarkers(collection) {
    var markers = [];
    var features = (collection && collection.features) || [];
    for (var i = 0; i < features.length; i++) {
      var feature = features[i];
      var geometry = feature && feature.geometry;
      if (!geometry || geometry.type !== "Point") continue;
      var lat = Number(geometry.coordinates[1]);
      var lon = Number(geometry.coordinates[0]);
      if (!isFinite(lat) || !isFinite(lon)) continue;
      var marker = L.circleMarker([lat, lon], POINT);
      marker.journal = feature.properties || {};
      markers.push(marker);
    }
    return markers;
  }

  function fitTo(map, markers, also) {
    var bounds = L.latLngBounds(also || []);
    for (var i = 0; i < markers.length; i++) bounds.extend(markers[i].getLatLng());
    if (bounds.isValid()) map.fitBounds(bounds, { padding: [24, 24], maxZoom: FIT_MAX_ZOOM, animate: false });
  }

  function loadPoints(config) {
    if (config.pointsElement) {
      var block = document.getElementById(config.pointsElement);
      return Promise.resolve(block ? JSON.parse(block.textContent) : null);
    }
    if (config.pointsUrl) {
      var request = { credentials: "same-origin", headers: { Accept: "application/geo+json" } };
      return fetch(config.pointsUrl, request).then(function (response) {
        if (!response.ok) throw new Error("points: HTTP " + response.status);
        return response.json();
      });
    }
    return Promise.resolve(null);
  }

  function progressControl(map, total) {
    var control = L.control({ position: "bottomleft" });
    control.onAdd = function () {
      return element("div", "journal-progress leaflet-bar");
    };
    control.show = function (done) {
      control.getContainer().textContent = "Photos " + done.toLocaleString() + " / " + total.toLocaleString();
    };
    return control.addTo(map);
  }

  function addMarkers(state, markers) {
    // Two chunked addLayers calls: a small first slice, so clusters show early, then the rest in one go
    // (each call ends with a pass over the whole cluster tree, so more slices would cost more).
    // chunkedLoading yields to the browser every chunkInterval ms, so the page answers input throughout.
    var cluster = state.cluster;
    var slices = [markers.slice(0, FIRST_BATCH), markers.slice(FIRST_BATCH)];
    var progress = markers.length > FIRST_BATCH ? progressControl(state.map, markers.length) : null;
    return new Promise(function (resolve) {
      function next(done) {
        var slice = slices.shift();
        if (!slice || !slice.length) {
          if (progress) progress.remove();
          return resolve(markers.length);
        }
        cluster.options.chunkProgress = function (processed, total) {
          if (progress) progress.show(done + processed);
          if (processed >= total) setTimeout(next, 0, done + total); // after markercluster finishes
        };
        cluster.addLayers(slice, true); // true: no per-marker layeradd events
      }
      next(0);
    });
  }

  function openPopup(state, marker) {
    state.popup.setLatLng(marker.getLatLng()).setContent(popupContent(marker.journal)).openOn(state.map);
  }

  function onMarkerClick(state, event) {
    var marker = event.layer;
    if (!marker || !marker.journal) return;
    openPopup(state, marker);
    var detail = { id: marker.journal.id };
    document.dispatchEvent(new CustomEvent("journal:marker-click", { detail: detail }));
  }

  function showMarker(state, marker) {
    return new Promise(function (resolve) {
      state.cluster.zoomToShowLayer(marker, function () {
        openPopup(state, marker);
        resolve(true);
      });
    });
  }

  function flyToPhoto(state, id) {
    return state.ready.then(function () {
      var marker = state.byId.get(String(id));
      if (!marker) return false;
      var map = state.map;
      if (!map.hasLayer(state.cluster)) map.addLayer(state.cluster); // switched off in the layer control
      if (map.getZoom() >= FLY_ZOOM && map.getBounds().contains(marker.getLatLng())) {
        return showMarker(state, marker);
      }
      return new Promise(function (resolve) {
        map.once("moveend", function () {
          resolve(showMarker(state, marker));
        });
        map.flyTo(marker.getLatLng(), Math.max(map.getZoom(), FLY_ZOOM), { duration: 0.8 });
      });
    });
  }

  function indexById(markers) {
    var byId = new Map();
    markers.forEach(function (marker) {
      if (marker.journal.id !== undefined) byId.set(String(marker.journal.id), marker);
    });
    return byId;
  }

  function mark(name) {
    if (window.performance && performance.mark) performance.mark("journal-map:" + name);
  }

  function showPoints(state, collection, config) {
    mark("points-loaded");
    var markers = toMarkers(collection);
    mark("markers-created");
    state.byId = indexById(markers);
    if (config.fitPoints) fitTo(state.map, markers, config.fitAlso);
    return addMarkers(state, markers);
  }

  function announceReady(count) {
    mark("ready");
    document.documentElement.setAttribute("data-journal-map", "ready");
    document.dispatchEvent(new CustomEvent("journal:map-ready", { detail: { count: count } }));
    return count;
  }

  function attach(map, cluster, config) {
    addBasemap(map);
    if (config.attribution) map.attributionControl.addAttribution(config.attribution);
    var state = { map: map, cluster: cluster, byId: new Map(), popup: L.popup({ maxWidth: 280 }) };
    cluster.on("click", function (event) {
      onMarkerClick(state, event);
    });
    state.ready = loadPoints(config)
      .then(function (collection) {
        return showPoints(state, collection, config);
      })
      .catch(function (error) {
        console.error("journal-map: could not load points", error);
        return 0;
      })
      .then(announceReady);
    api.map = map;
    api.ready = state.ready;
    api.flyToPhoto = function (id) {
      return flyToPhoto(state, id);
    };
    return api;
  }

  var api = {
    attach: attach,
    ready: Promise.resolve(0),
    flyToPhoto: function () {
      return Promise.resolve(false);
    },
  };
  window.journalMap = api;
})();
