// xaiwidgets' JupyterLab extension, written by hand as a module-federation container (no webpack build): it
// exposes one plugin, "./extension". When a notebook is reopened without its kernel's widget models, the
// widget renderer of @jupyter-widgets/jupyterlab-manager writes "Error displaying widget: model not found" and
// gives up, although the output also carries an image/png (JupyterLab shows the highest-ranked mime type,
// the widget view, whenever the notebook is trusted). The plugin wraps that renderer: when the model is not
// found and the output was made by xaiwidgets (output metadata "xaiwidgets"), it shows the PNG instead.
(function () {
  const NAME = "xaiwidgets";
  const MANAGER = "@jupyter-widgets/jupyterlab-manager";
  const NOT_FOUND = "Error displaying widget: model not found";
  let shareScope = null;

  async function sharedModule(name) {
    const versions = shareScope && shareScope[name];
    if (!versions) return null;
    const newest = Object.keys(versions).sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).pop();
    const factory = await versions[newest].get();
    return factory();
  }

  function showFallback(renderer, model) {
    const png = model && model.data && model.data["image/png"];
    const ours = model && model.metadata && model.metadata[NAME];
    if (!png || !ours || renderer.node.textContent !== NOT_FOUND) return;
    const img = document.createElement("img");
    img.src = "data:image/png;base64," + String(png).replace(/\s+/g, "");
    img.alt = "static image of the widget (its live view needs the kernel that made it: run the cell again)";
    img.className = "xw-fallback-png";
    img.title = img.alt;
    img.style.maxWidth = "100%";
    renderer.node.textContent = "";
    renderer.removeClass && renderer.removeClass("jupyter-widgets");
    renderer.node.appendChild(img);
  }

  const plugin = {
    id: "xaiwidgets:png-fallback",
    description: "Shows an xaiwidgets output's PNG when its widget model is gone.",
    autoStart: true,
    activate: async function () {
      const manager = await sharedModule(MANAGER);
      const Renderer = manager && manager.WidgetRenderer;
      if (!Renderer || Renderer.prototype.__xwFallback) return;
      const renderModel = Renderer.prototype.renderModel;
      Renderer.prototype.renderModel = async function (model) {
        const out = await renderModel.call(this, model);
        showFallback(this, model);
        return out;
      };
      Renderer.prototype.__xwFallback = true;
    },
  };

  const container = {
    init: function (scope) {
      shareScope = scope;
    },
    get: function (module) {
      if (module !== "./extension") return Promise.reject(new Error(NAME + ": no module " + module));
      return Promise.resolve(function () {
        return { __esModule: true, default: [plugin] };
      });
    },
  };
  const registry = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  registry[NAME] = container;
})();
