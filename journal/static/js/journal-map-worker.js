/*
 * journal-map-worker.js: fetches the compact photo points and builds the cluster index off the main
 * thread, so the page stays responsive (and the basemap draws) while 100,000 photos are indexed.
 * journal-map.js uses it when the page is served over http(s); see journal-cluster.js for the queries.
 *
 * In:  {op: "init", scripts: [supercluster url, journal-cluster url], pointsUrl, options}
 *      then {req, op, ...} queries
 * Out: {op: "loaded", count, bounds} or {op: "error", message}; {req, value} per query
 */
/* global journalCluster */
"use strict";

var engine = null;

function init(message) {
  importScripts.apply(self, message.scripts);
  return fetch(message.pointsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) throw new Error("points: HTTP " + response.status);
      return response.json();
    })
    .then(function (payload) {
      engine = journalCluster.create(payload.points || [], message.options);
      postMessage({ op: "loaded", count: engine.count, bounds: engine.bounds });
    });
}

self.onmessage = function (event) {
  var message = event.data;
  if (message.op === "init") {
    init(message).catch(function (error) {
      postMessage({ op: "error", message: String((error && error.message) || error) });
    });
    return;
  }
  postMessage({ req: message.req, value: engine ? engine.query(message) : null });
};
