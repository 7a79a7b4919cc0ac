/*
 * library.js: selecting photos in the grid to make a post.
 * Without JavaScript the checkboxes and the "Make a post" button still work; this script
 * counts the selection, shows the bar only while something is selected, adds
 * shift-click range selection and Escape to clear. Text is set with textContent only.
 */
(function () {
  "use strict";

  function init() {
    var form = document.getElementById("selection");
    if (!form) return;
    var bar = form.querySelector("[data-selection-bar]");
    var count = form.querySelector("[data-selection-count]");
    var submit = form.querySelector("[data-selection-submit]");
    var clear = form.querySelector("[data-selection-clear]");
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="photo"]'));
    var last = null;

    function update() {
      var n = boxes.filter(function (box) { return box.checked; }).length;
      boxes.forEach(function (box) {
        var tile = box.closest(".tile");
        if (tile) tile.classList.toggle("selected", box.checked);
      });
      document.body.classList.toggle("selecting", n > 0);
      bar.classList.toggle("active", n > 0);
      count.textContent = n === 0 ? "Select photos to make a post" : n + (n === 1 ? " photo selected" : " photos selected");
      submit.disabled = n === 0;
      clear.hidden = n === 0;
    }

    boxes.forEach(function (box, index) {
      box.addEventListener("click", function (event) {
        if (event.shiftKey && last !== null && last !== index) {
          var from = Math.min(last, index);
          var to = Math.max(last, index);
          for (var i = from; i <= to; i++) boxes[i].checked = box.checked;
        }
        last = index;
        update();
      });
    });

    // While selecting, a click on a photo toggles it instead of opening it.
    form.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest(".tile-link");
      if (!link || !document.body.classList.contains("selecting")) return;
      event.preventDefault();
      var box = link.parentNode.querySelector('input[name="photo"]');
      if (box) box.click();
    });

    clear.addEventListener("click", function () {
      boxes.forEach(function (box) { box.checked = false; });
      last = null;
      update();
    });

    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && document.body.classList.contains("selecting")) clear.click();
    });

    form.addEventListener("submit", function (event) {
      if (!boxes.some(function (box) { return box.checked; })) event.preventDefault();
    });

    bar.classList.add("enhanced");
    update();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
