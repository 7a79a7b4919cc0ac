/*
 * journal-map-boot.js: starts the photo index worker (journal-map-worker.js) as early as possible,
 * so the points are fetched and clustered while the page's other scripts and the basemap load.
 * Load it (not deferred, it is tiny) right after the page's <script type="application/json"
 * id="journal-map-config"> block; journal-map.js then takes the running index over.
 *
 *   journalMapIndex.start(config) -> {loaded: Promise<{count, bounds}>, query(message) -> Promise}
 *   journalMapIndex.take(config)  -> the index started for this page's config, else a new one
 */
(function () {
  "use strict";

  function absolute(url) {
    return new URL(String(url), document.baseURI).href;
  }

  function start(config) {
    var worker = new Worker(config.workerUrl);
    var pending = new Map();
    var next = 0;
    var loaded = new Promise(function (resolve, reject) {
      worker.onmessage = function (event) {
        var m = event.data;
        if (m.op === "loaded") return resolve(m);
        if (m.op === "error") return reject(new Error(m.message));
        var done = pending.get(m.req);
        pending.delete(m.req);
        if (done) done(m.value);
      };
      worker.onerror = function (event) {
        reject(new Error(event.message || "the map worker failed"));
      };
    });
    worker.postMessage({
      op: "init",
      scripts: [absolute(config.scripts.supercluster), absolute(config.scripts.cluster)],
      pointsUrl: absolute(config.pointsUrl),
      options: config.cluster,
    });
    return {
      pointsUrl: config.pointsUrl,
      loaded: loaded,
      query: function (message) {
        return loaded.then(function () {
          return new Promise(function (resolve) {
            message.req = ++next;
            pending.set(message.req, resolve);
            worker.postMessage(message);
          });
        });
      },
    };
  }

  var early = null;

  function take(config) {
    if (early && early.pointsUrl === config.pointsUrl) {
      var index = early;
      early = null;
      return index;
    }
    return start(config);
  }

  function usable(config) {
    return !!(config && config.workerUrl && config.pointsUrl && config.scripts && config.cluster);
  }

  window.journalMapIndex = { start: start, take: take, usable: usable };

  var block = document.getElementById("journal-map-config");
  if (!block || !window.Worker || !/^https?:$/.test(location.protocol)) return;
  // Loaded async: if the map was built first (it then indexed the points itself), start nothing.
  if (document.documentElement.hasAttribute("data-journal-map")) return;
  try {
    var config = JSON.parse(block.textContent);
    if (usable(config)) early = start(config);
  } catch (error) {
    console.warn("journal-map-boot: no early start", error);
  }
})();
