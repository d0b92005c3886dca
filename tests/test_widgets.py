"""Kernel-free widgets: figures become PNG views, and a slider is linked to their Stack in the browser."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from posebook.widgets import figure_png, linked_views  # noqa: E402


def test_figure_png_is_a_png_and_closes_the_figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    data = figure_png(fig)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(fig.number)


def test_linked_views_links_the_slider_to_the_stack_in_the_browser(monkeypatch):
    import ipywidgets

    linked = []
    real_jslink = ipywidgets.jslink
    monkeypatch.setattr(ipywidgets, "jslink", lambda a, b: linked.append((a, b)) or real_jslink(a, b))

    def draw(value):
        fig, ax = plt.subplots()
        ax.set_title(str(value))
        return fig

    box = linked_views(draw, [1, 2, 3], "value", "a label")
    label, slider, stack = box.children
    assert label.value == "a label" and slider.max == 2 and len(stack.children) == 3
    # a jslink (browser-side), not an observe callback, so the static page responds without a kernel
    assert linked == [((slider, "value"), (stack, "selected_index"))]


def test_linked_views_needs_values():
    with pytest.raises(ValueError, match="at least one value"):
        linked_views(lambda v: None, [], "value")
