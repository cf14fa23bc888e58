// Alt text for figures that the Jupyter widgets embedder draws from a notebook's saved widget state: it
// renders them without alt text. _ext/offline_book.py puts the text, from chapters/figure_alt.yml, in a
// hidden span of the widget's cell; this copies it onto the cell's images as they appear.
(function () {
  function apply() {
    document.querySelectorAll(".widget-image-alt").forEach(function (note) {
      var cell = note.closest(".cell") || note.parentElement;
      cell.querySelectorAll("img:not([alt])").forEach(function (img) {
        img.alt = note.textContent;
      });
    });
  }
  new MutationObserver(apply).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", apply);
})();
