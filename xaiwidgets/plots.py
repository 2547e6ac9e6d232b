"""SHAP's plot family as widgets that work in every host (``shap.plots.*`` names, our drawing):

>>> a = xw.attribute(tab, rows, "kernel_shap")          # or a shap.Explanation
>>> xw.plots.waterfall(a, row=3)
>>> xw.plots.beeswarm(a)
>>> xw.plots.bar(a, cohorts="mean radius")             # a feature, a boolean mask or labels per row
>>> xw.plots.heatmap(a, order="output")
>>> xw.plots.scatter(a, "worst area")                  # coloured by the strongest interaction
>>> xw.plots.decision(a)
>>> xw.plots.tabular(a)                                # all of them, linked by a shared selection
"""

from .widgets.shapplots import TabularPlots, bar, beeswarm, decision, heatmap, scatter, tabular, waterfall

__all__ = ["TabularPlots", "bar", "beeswarm", "decision", "heatmap", "scatter", "tabular", "waterfall"]
