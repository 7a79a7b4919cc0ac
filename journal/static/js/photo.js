/*
 * photo.js: the photo page. Arrow keys go to the newer/older photo; a small offline map
 * (vendored Leaflet + the bundled basemap, no tiles from the network) shows the position,
 * and a click on it fills the latitude/longitude fields for "Save position".
 * Data never reaches the page as HTML: coordinates come from data-* attributes.
 */
(function () {
  "use strict";

  var LAND = { stroke: true, color: "#8aa5b8", weight: 0.8, fill: true, fillColor: "#f4f1ea", fillOpacity: 1 };
  var BORDER = { stroke: true, color: "#a78ea7", weight: 0.8, opacity: 0.9, fill: false };
  var PIN = { radius: 8, weight: 2, color: "#ffffff", fillColor: "#d9480f", fillOpacity: 0.95 };
  var DRAFT = { radius: 8, weight: 2, color: "#d9480f", dashArray: "3 3", fillColor: "#ffffff", fillOpacity: 0.9 };

  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function keyboardNavigation() {
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      if (isTyping(event.target)) return;
      var which = event.key === "ArrowLeft" ? "prev" : event.key === "ArrowRight" ? "next" : null;
      if (!which) return;
      if (document.activeElement && document.activeElement.closest && document.activeElement.closest(".leaflet-container")) return;
      var link = document.querySelector('a[data-nav="' + which + '"]');
      if (link) {
        event.preventDefault();
        window.location.assign(link.href);
      }
    });
  }

  function number(value) {
    if (value === undefined || value === null || String(value).trim() === "") return null;
    var n = Number(value);
    return isFinite(n) ? n : null;
  }

  function addBasemap(map) {
    var data = window.journalBasemap || {};
    if (data.world) {
      L.geoJSON(data.world, {
        interactive: false,
        style: function (feature) {
          return feature.properties && feature.properties.kind === "border" ? BORDER : LAND;
        },
      }).addTo(map);
    }
    if (data.places) {
      var labels = L.layerGroup();
      data.places.features.forEach(function (feature) {
        var c = feature.geometry.coordinates;
        var label = document.createElement("span");
        label.className = "journal-place-name";
        label.textContent = String(feature.properties.name);
        var icon = L.divIcon({ className: "journal-place", html: label, iconSize: null });
        labels.addLayer(L.marker([c[1], c[0]], { icon: icon, interactive: false, keyboard: false }));
      });
      var update = function () {
        var show = map.getZoom() >= 3 && map.getZoom() <= 10;
        if (show && !map.hasLayer(labels)) map.addLayer(labels);
        if (!show && map.hasLayer(labels)) map.removeLayer(labels);
      };
      map.on("zoomend", update);
      update();
    }
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution("Natural Earth | GeoNames (CC BY 4.0)");
  }

  function miniMap() {
    var box = document.getElementById("photo-map");
    if (!box || !window.L) return;
    var lat = number(box.dataset.lat);
    var lon = number(box.dataset.lon);
    var located = lat !== null && lon !== null;
    var map = L.map(box, { worldCopyJump: true, minZoom: 1, maxZoom: 14, zoomSnap: 0.5 });
    addBasemap(map);
    if (located) {
      map.setView([lat, lon], 6);
      L.circleMarker([lat, lon], PIN).addTo(map);
    } else {
      map.setView([20, 0], 1);
    }
    var form = document.getElementById("position-form");
    if (!form) return;
    var draft = null;
    map.on("click", function (event) {
      var p = event.latlng.wrap();
      var newLat = Math.round(p.lat * 1e6) / 1e6;
      var newLon = Math.round(p.lng * 1e6) / 1e6;
      form.elements.lat.value = String(newLat);
      form.elements.lon.value = String(newLon);
      if (draft) draft.setLatLng([newLat, newLon]);
      else draft = L.circleMarker([newLat, newLon], DRAFT).addTo(map);
      form.classList.add("changed");
    });
    box.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", function () {
    keyboardNavigation();
    miniMap();
  });
})();
