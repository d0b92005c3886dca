"""Architecture diagrams drawn by code from built models, so the book's figures stay true to the blocks.

One module per architecture: ``hourglass`` (chapter 03), ``simple_baseline`` (chapter 04), ``cpn`` (chapter
05), ``mspn`` (chapter 06), ``hrnet`` (chapter 07), ``openpose`` (chapter 08). Each has ``*_layout(model)``, the
:class:`Diagram` read from the model (its boxes can be counted), and ``*_diagram(model, ax=None)``, which draws it
and returns the axis; :mod:`posebook.diagrams.base` holds the boxes and arrows they share. Chapters 03 to 08.
"""
from posebook.diagrams.base import COLORS, Box, Diagram
from posebook.diagrams.cpn import cpn_diagram, cpn_layout
from posebook.diagrams.hourglass import hourglass_diagram, hourglass_layout, stacked_diagram, stacked_layout
from posebook.diagrams.mspn import mspn_diagram, mspn_layout
from posebook.diagrams.hrnet import exchange_unit_diagram, exchange_unit_layout, hrnet_diagram, hrnet_layout
from posebook.diagrams.openpose import openpose_diagram, openpose_layout
from posebook.diagrams.simple_baseline import simple_baseline_diagram, simple_baseline_layout

__all__ = ["COLORS", "Box", "Diagram", "cpn_diagram", "cpn_layout", "exchange_unit_diagram", "exchange_unit_layout", "hourglass_diagram",
           "hourglass_layout", "hrnet_diagram", "hrnet_layout", "mspn_diagram", "mspn_layout", "openpose_diagram", "openpose_layout", "simple_baseline_diagram", "simple_baseline_layout",
           "stacked_diagram", "stacked_layout"]
