"""Kernel-free widgets: figures become PNG views, and sliders are linked to their Stacks in the browser."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from posebook.widgets import figure_png, linked_explorer, linked_grid, linked_views  # noqa: E402


def titled(*values):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.set_title(" ".join(map(str, values)))
    return fig


@pytest.fixture
def jslinks(monkeypatch):
    """Every jslink made, as ((source, trait), (target, trait)) pairs."""
    import ipywidgets

    linked = []
    real_jslink = ipywidgets.jslink
    monkeypatch.setattr(ipywidgets, "jslink", lambda a, b: linked.append((a, b)) or real_jslink(a, b))
    return linked


def sliders_of(box):
    import ipywidgets

    found = []
    for child in box.children:
        if isinstance(child, ipywidgets.SelectionSlider):
            found.append(child)
        elif isinstance(child, ipywidgets.HBox):
            found += [c for c in child.children if isinstance(c, ipywidgets.SelectionSlider)]
    return found


def test_figure_png_is_a_png_and_closes_the_figure():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    data = figure_png(fig)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(fig.number)


def test_linked_views_links_the_slider_to_the_stack_in_the_browser(jslinks):
    drawn = []
    box = linked_views(lambda v: drawn.append(v) or titled(v), [1, 2.5, 3], "value", "a label")
    label, slider, stack = box.children
    assert label.value == "a label" and len(stack.children) == 3 and drawn == [1, 2.5, 3]
    # the slider shows the values, and its index selects the view
    assert [o[0] for o in slider.options] == ["1", "2.5", "3"] and slider.index == 0
    # a jslink (browser-side), not an observe callback, so the static page responds without a kernel
    assert jslinks == [((slider, "index"), (stack, "selected_index"))]
    assert [c.value[:8] for c in stack.children] == [b"\x89PNG\r\n\x1a\n"] * 3


def test_linked_views_needs_values():
    with pytest.raises(ValueError, match="at least one value"):
        linked_views(lambda v: None, [], "value")


def test_linked_grid_draws_every_pair_and_links_each_slider_to_its_level(jslinks):
    drawn = []
    box = linked_grid(lambda r, c: drawn.append((r, c)) or titled(r, c), [10, 20], ["a", "b", "c"], "row", "col",
                      start=(1, 2), fmt=str)
    (controls, outer) = box.children
    row, col = sliders_of(box)
    assert controls.children == (row, col) and (row.description, col.description) == ("row", "col")
    assert drawn == [(r, c) for r in (10, 20) for c in "abc"]
    assert len(outer.children) == 2 and all(len(inner.children) == 3 for inner in outer.children)
    # the start indices select the default view on both levels
    assert (row.index, col.index) == (1, 2) and outer.selected_index == 1
    assert all(inner.selected_index == 2 for inner in outer.children)
    # row -> the outer Stack; col -> every inner Stack, so the column survives a change of row
    assert ((row, "index"), (outer, "selected_index")) in jslinks
    assert all(((col, "index"), (inner, "selected_index")) in jslinks for inner in outer.children)
    assert len(jslinks) == 3
    # the view at (row i, col j) is the figure of (rows[i], cols[j])
    assert outer.children[1].children[0].value == figure_png(titled(20, "a"))


def test_linked_explorer_nests_three_levels(jslinks):
    box = linked_explorer(lambda a, b, c: titled(a, b, c), {"a": [1, 2], "b": [3], "c": [4, 5, 6]}, "three")
    assert box.children[0].value == "three"
    # the sliders sit in rows of two
    assert [len(hbox.children) for hbox in box.children[1:3]] == [2, 1]
    assert [s.description for s in sliders_of(box)] == ["a", "b", "c"]
    outer = box.children[-1]
    leaves = [leaf for mid in outer.children for inner in mid.children for leaf in inner.children]
    assert len(leaves) == 6
    assert len(jslinks) == 1 + 2 + 2  # one outer Stack, two middle ones, two inner ones


@pytest.mark.parametrize("call,match", [
    (lambda: linked_grid(titled, [1], [2], "same", "same"), "different descriptions"),
    (lambda: linked_grid(titled, [1], [], "row", "col"), "'col' needs at least one value"),
    (lambda: linked_grid(titled, [1, 2], [3], "row", "col", start=(2, 0)), "start"),
    (lambda: linked_explorer(titled, {}), "non-empty dict"),
])
def test_bad_explorers_say_what_is_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()
