// Loaded between require.js and embed-amd.js (see nb_ipywidgets_js in _config.yml).
// The widget manager's modules find their font files (font-awesome, for icons) relative to their require.js module
// ids ("@jupyter-widgets/html-manager/dist/...", "@jupyter-widgets/controls", ...), which by default resolve beside
// the page. Map those ids to the folder holding this file and embed-amd.js, so the fonts load from the book itself.
(function () {
  var here = document.currentScript.src.replace(/\/[^\/]*$/, "");
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": here, "@jupyter-widgets": here } });
})();
