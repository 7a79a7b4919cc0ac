/*
 * story.js: the map journal page. Builds the map (journal-map.js) from the page's JSON config and links
 * it with the story beside it, both ways:
 *   - a click on a story photo flies the map to it (journalMap.flyToPhoto); a click on a day's title
 *     shows the whole day (journalMap.fitPhotos);
 *   - a click on a marker ("journal:marker-click") scrolls its story entry into view and highlights
 *     it, loading the part of the story around that photo when it is not on the page yet.
 * The story loads in chunks as it scrolls (HTML fragments from /map/story, rendered with
 * autoescaping on the server). Photos without a position can be placed by clicking the map.
 * Nothing here builds HTML from strings: fragments are parsed as documents and moved in as nodes.
 */
(function () {
  "use strict";

  var ACTIVE = "is-active";

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  function withParam(url, name, value) {
    var parsed = new URL(url, document.baseURI);
    parsed.searchParams.set(name, value);
    return parsed.pathname + parsed.search;
  }

  function fetchFragment(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text().then(function (text) {
        // Parsed as an inert document: scripts in it would not run, and nothing is assigned as HTML.
        return new DOMParser().parseFromString(text, "text/html").body;
      });
    });
  }

  function isStacked() {
    return window.matchMedia("(max-width: 900px)").matches;
  }

  function scroller(story) {
    return isStacked() ? document.scrollingElement : story;
  }

  // --- the story's chunks --------------------------------------------------------------------------

  function Story(root, panel) {
    this.root = root;
    this.panel = panel;
    this.url = root.getAttribute("data-url");
    this.loading = false;
    this.top = document.createElement("div");
    this.bottom = document.createElement("div");
    this.top.className = this.bottom.className = "story-sentinel";
    this.top.setAttribute("aria-hidden", "true");
    this.bottom.setAttribute("aria-hidden", "true");
    root.prepend(this.top);
    root.append(this.bottom);
    this.observe();
  }

  Story.prototype.chunks = function () {
    return $all(".story-chunk", this.root);
  };

  Story.prototype.cursor = function (which) {
    var chunks = this.chunks();
    if (!chunks.length) return "";
    var chunk = which === "before" ? chunks[0] : chunks[chunks.length - 1];
    return chunk.getAttribute("data-" + which) || "";
  };

  Story.prototype.observe = function () {
    var self = this;
    if (!window.IntersectionObserver) return;
    this.observer = new IntersectionObserver(
      function (entries) {
        entries.forEach(function (entry) {
          if (!entry.isIntersecting) return;
          self.load(entry.target === self.top ? "before" : "after");
        });
      },
      { rootMargin: "600px 0px" }
    );
    this.observer.observe(this.top);
    this.observer.observe(this.bottom);
  };

  Story.prototype.load = function (which) {
    var cursor = this.cursor(which);
    if (!cursor || this.loading) return Promise.resolve(false);
    var self = this;
    this.loading = true;
    return fetchFragment(withParam(this.url, which, cursor))
      .then(function (body) {
        var chunk = $(".story-chunk", body);
        if (chunk) self.insert(chunk, which);
        return true;
      })
      .catch(function (error) {
        console.warn("story: could not load more", error);
        return false;
      })
      .then(function (done) {
        self.loading = false;
        self.recheck();
        return done;
      });
  };

  Story.prototype.recheck = function () {
    // Sentinels still in view after a load (a short chunk): observe again so the next chunk comes.
    if (!this.observer) return;
    this.observer.unobserve(this.top);
    this.observer.unobserve(this.bottom);
    this.observer.observe(this.top);
    this.observer.observe(this.bottom);
  };

  Story.prototype.insert = function (chunk, which) {
    var scroll = scroller(this.panel);
    var before = scroll.scrollHeight;
    if (which === "after") {
      var last = this.chunks().pop();
      mergeDays(last, chunk, "after");
      last.setAttribute("data-after", chunk.getAttribute("data-after") || "");
      this.bottom.before(chunk);
    } else {
      var first = this.chunks()[0];
      mergeDays(first, chunk, "before");
      first.setAttribute("data-before", chunk.getAttribute("data-before") || "");
      this.top.after(chunk);
      scroll.scrollTop += scroll.scrollHeight - before; // keep what the reader was looking at in place
    }
  };

  Story.prototype.replace = function (chunk) {
    this.chunks().forEach(function (old) {
      old.remove();
    });
    this.top.after(chunk);
  };

  Story.prototype.around = function (id) {
    var self = this;
    return fetchFragment(withParam(this.url, "around", String(id))).then(function (body) {
      var chunk = $(".story-chunk", body);
      if (chunk) self.replace(chunk);
      self.recheck();
      return !!chunk;
    });
  };

  function mergeDays(existing, incoming, which) {
    // A day cut between two chunks is shown as one day: move the entries into the existing section.
    if (!existing) return;
    var days = $all(".story-day", existing);
    var edge = which === "after" ? days[days.length - 1] : days[0];
    var newDays = $all(".story-day", incoming);
    var joining = which === "after" ? newDays[0] : newDays[newDays.length - 1];
    if (!edge || !joining || edge.getAttribute("data-day") !== joining.getAttribute("data-day")) return;
    var blocks = $all(":scope > :not(.story-day-head)", joining); // entries and photo grids
    if (which === "after") {
      blocks.forEach(function (block) {
        edge.append(block);
      });
    } else {
      var head = $(".story-day-head", edge);
      blocks.reverse().forEach(function (block) {
        head.after(block);
      });
    }
    mergeDayPhotos(edge, joining);
    joining.remove();
  }

  function mergeDayPhotos(day, other) {
    var button = $("[data-fit-day]", day);
    var more = $("[data-fit-day]", other);
    if (!button || !more) return;
    var ids = (button.getAttribute("data-photos") + " " + more.getAttribute("data-photos")).trim();
    button.setAttribute("data-photos", ids);
    button.disabled = !ids;
  }

  // --- linking the story and the map -----------------------------------------------------------------

  function activate(entry, scrollTo) {
    $all(".story-entry." + ACTIVE).forEach(function (node) {
      node.classList.remove(ACTIVE);
    });
    if (!entry) return;
    entry.classList.add(ACTIVE);
    if (scrollTo) entry.scrollIntoView({ behavior: "smooth", block: isStacked() ? "start" : "center" });
  }

  function entryOf(id) {
    var button = $('.story-photo[data-photo="' + CSS.escape(String(id)) + '"]');
    return button ? button.closest(".story-entry") : null;
  }

  function showEntry(story, id) {
    var entry = entryOf(id);
    if (entry) {
      activate(entry, true);
      return Promise.resolve(true);
    }
    return story.around(id).then(function () {
      activate(entryOf(id), true);
      return true;
    });
  }

  function showOnMap(entry, id) {
    activate(entry, false);
    if (isStacked()) $("#journal-map").scrollIntoView({ behavior: "smooth", block: "nearest" });
    window.journalMap.flyToPhoto(id);
  }

  function fitDay(button) {
    var ids = (button.getAttribute("data-photos") || "").split(" ").filter(Boolean);
    if (!ids.length) return;
    if (isStacked()) $("#journal-map").scrollIntoView({ behavior: "smooth", block: "nearest" });
    window.journalMap.fitPhotos(ids);
  }

  // --- placing photos without a position ------------------------------------------------------------

  function csrfToken() {
    var meta = $('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function savePosition(url, at) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ lat: at.lat, lon: at.lon }),
    }).then(function (response) {
      return response.json().then(function (payload) {
        if (!response.ok) throw new Error(payload.error || "HTTP " + response.status);
        return payload;
      });
    });
  }

  function markPlaced(card) {
    var item = $('.unlocated-item[data-photo="' + CSS.escape(String(card.id)) + '"]');
    if (item) item.remove();
    var count = $("[data-unlocated-count]");
    if (count) {
      var left = Math.max(0, Number(count.textContent.replace(/\D/g, "")) - 1);
      count.textContent = left.toLocaleString();
      if (!left) $("[data-unlocated]").remove();
    }
    $all('.story-photo[data-photo="' + CSS.escape(String(card.id)) + '"]').forEach(function (button) {
      button.setAttribute("data-located", "1");
      button.classList.remove("is-unlocated");
      button.title = "Show on the map";
      var badge = $(".story-badge", button);
      if (badge) badge.remove();
    });
  }

  function place(config, id, trigger) {
    var url = config.placeUrl.replace("{id}", encodeURIComponent(String(id)));
    if (trigger) trigger.classList.add(ACTIVE);
    if (isStacked()) $("#journal-map").scrollIntoView({ behavior: "smooth", block: "nearest" });
    return window.journalMap
      .pickPosition("Click the map where this photo was taken")
      .then(function (at) {
        if (!at) return null;
        return savePosition(url, at).then(function (card) {
          markPlaced(card);
          window.journalMap.addPoint(card);
          window.journalMap.flyToPhoto(card.id);
          return card;
        });
      })
      .catch(function (error) {
        window.alert("The position could not be saved: " + error.message);
        return null;
      })
      .then(function (card) {
        if (trigger) trigger.classList.remove(ACTIVE);
        return card;
      });
  }

  function loadMoreUnlocated(button) {
    var item = button.closest("li");
    button.disabled = true;
    fetchFragment(button.getAttribute("data-url"))
      .then(function (body) {
        $all("li", body).forEach(function (li) {
          item.before(li);
        });
        item.remove();
      })
      .catch(function () {
        button.disabled = false;
      });
  }

  // --- wiring ---------------------------------------------------------------------------------------

  function wire(story, config) {
    document.addEventListener("click", function (event) {
      var target = event.target;
      if (!(target instanceof Element)) return;
      var photo = target.closest(".story-photo");
      if (photo) {
        var id = photo.getAttribute("data-photo");
        if (photo.getAttribute("data-located") === "1") showOnMap(photo.closest(".story-entry"), id);
        else place(config, id, photo);
        return;
      }
      var day = target.closest("[data-fit-day]");
      if (day) return fitDay(day);
      var placeButton = target.closest("[data-place]");
      if (placeButton) return place(config, placeButton.getAttribute("data-place"), placeButton.closest("li"));
      var more = target.closest("[data-more-unlocated]");
      if (more) loadMoreUnlocated(more);
    });
    document.addEventListener("journal:marker-click", function (event) {
      showEntry(story, event.detail.id);
    });
  }

  function start() {
    var holder = $("#journal-map");
    var block = $("#journal-map-config");
    if (!holder || !block || !window.journalMap || !window.L) return;
    var config = JSON.parse(block.textContent);
    window.journalMap.create(holder, config);
    var root = $("[data-story]");
    var story = root ? new Story(root, $("#story")) : null;
    if (story) wire(story, config);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
