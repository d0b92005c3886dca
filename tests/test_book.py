"""The rendered book: built with `jupyter-book build . -W` (smoke profile), opened page by page from file:// in
headless Chromium with the network blocked. Every page loads offline, math is typeset, every notebook figure and
widget view appears, every widget control answers without a kernel, the architecture chapters show
their architecture figure and open with the idea, and the console holds no unexpected errors.

Screenshots and the built book are kept under test-artifacts/ (ignored by git).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import build_book

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--headless", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

# Console errors that Jupyter Book 1.x pages raise whatever the book holds (each checked by hand, harmless):
CONSOLE_ALLOWLIST = {
    # sphinx-book-theme includes sphinx-thebe's inline config script twice; the second `const` declaration throws
    r"Identifier 'THEBE_JS_URL' has already been declared": "sphinx-thebe script included twice (JB 1.x)",
    # pydata-sphinx-theme reads the dark/light choice from localStorage, empty on a first visit from file://
    r"Got invalid theme mode: \. Resetting to auto\.": "pydata-sphinx-theme first visit",
    # ipywidgets 8 typesets labels with the MathJax 2 API (MathJax.Hub.Queue); with MathJax 3 the call throws
    # after the label text is set (jupyter-widgets/ipywidgets#3829), so labels show as plain text
    r"Cannot read properties of undefined \(reading 'Queue'\)": "ipywidgets#3829, MathJax 3",
}


# --------------------------------------------------------------------------------------------------------------
# Building and auditing (also used on the one-page CDN book that proves the checks can fail)

ASSET_TAG = re.compile(r"<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)=\"(https?:)?//[^\"]+\"[^>]*>")


def external_assets(html: str) -> list[str]:
    """The <script>, <link>, <img>, <iframe> tags of a page that load from another host (links <a> do not count)."""
    return [m.group(0) for m in ASSET_TAG.finditer(html)
            if not re.search(r"\brel=\"(?:canonical|search|index|next|prev|author)\"", m.group(0))]


@dataclass
class Audit:
    """What one page did in the browser."""
    blocked: list[str] = field(default_factory=list)  # requests to the network (aborted)
    failed: list[str] = field(default_factory=list)  # requests for local files that did not load
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    math: dict = field(default_factory=dict)
    images: list[dict] = field(default_factory=list)

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(re.search(p, e) for p in CONSOLE_ALLOWLIST)]


MATH_STATE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const math = [...document.querySelectorAll('.math')];
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  const text = copy.textContent;
  return {elements: math.length, typeset: math.filter(e => e.querySelector('mjx-container')).length,
          raw: ['\\\\(', '\\\\[', '$$'].filter(t => text.includes(t))};
}"""

IMAGES_JS = """() => [...document.querySelectorAll('article img')].map(img => ({
  src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
  output: !!img.closest('.cell_output') && !img.closest('.widget-subarea')}))"""


def open_page(browser, url: str, audit: Audit):
    """Open url with every non-file request aborted and recorded; return the page once loaded and settled."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            audit.blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda r: r.url in audit.blocked or audit.failed.append(f"{r.url} ({r.failure})"))
    page.on("console", lambda m: m.type == "error" and audit.errors.append(m.text))
    page.on("pageerror", lambda e: audit.errors.append(str(e)))
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return page


def audit_page(browser, path: Path, screenshot: Path | None = None) -> tuple[Audit, object]:
    """Open a built page offline and collect what it requested, logged, typeset and showed."""
    audit = Audit()
    page = open_page(browser, path.as_uri(), audit)
    audit.math = page.evaluate(MATH_STATE_JS)
    page.wait_for_timeout(300)  # widget views render after the manager's promise chain
    audit.images = page.evaluate(IMAGES_JS)
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    return audit, page


# --------------------------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright; never a downloaded browser."""
    binary = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium binary on this CI machine: .ci/run installs Debian's chromium")
        pytest.skip("no chromium binary (install Debian's chromium: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def built_pages(html: Path) -> list[Path]:
    """Every content page of a built book (index.html is only a redirect)."""
    pages = sorted(html.glob("book/**/*.html")) + sorted(html.glob("notebooks/*.html"))
    return pages + [html / name for name in ("genindex.html", "search.html") if (html / name).exists()]


def page_ids() -> list[str]:
    """Page names for parametrization, from the sources the toc lists (the book is built later, in the fixture)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc.get("parts", []) for ch in part["chapters"]]
    files += [sec["file"] for part in toc.get("parts", []) for ch in part["chapters"] for sec in ch.get("sections", [])]
    return files


PAGES = page_ids()
CHAPTERS = [name for name in PAGES if name.startswith("notebooks/")]


def test_every_chapter_notebook_is_in_the_toc():
    missing = [p.name for p in NOTEBOOKS if f"notebooks/{p.stem}" not in PAGES]
    assert not missing, f"notebooks not in _toc.yml (so not in the book): {missing}"


@pytest.fixture(scope="session")
def audits(book, browser) -> dict:
    """Each toc page audited once (network blocked), with a screenshot in test-artifacts/screens/."""
    result = {}
    for name in PAGES + ["genindex", "search"]:
        path = book / f"{name}.html"
        assert path.exists(), f"{name}.html was not built (is {name} in _toc.yml?)"
        audit, page = audit_page(browser, path, ARTIFACTS / "screens" / f"{name.replace('/', '__')}.png")
        result[name] = (audit, page)
    yield result
    for _, page in result.values():
        page.close()


# --------------------------------------------------------------------------------------------------------------
# The rendered book, page by page

@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES + ["genindex", "search"])
def test_page_loads_offline_without_failed_requests(audits, name):
    audit, _ = audits[name]
    assert not audit.blocked, f"{name}: requests to the network: {audit.blocked}"
    assert not audit.failed, f"{name}: local files that did not load: {audit.failed}"


@pytest.mark.browser
def test_built_pages_name_no_external_script_stylesheet_or_image(book):
    offenders = {str(p.relative_to(book)): external_assets(p.read_text()) for p in built_pages(book)}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"pages loading assets from the network: {json.dumps(offenders, indent=1)[:3000]}"


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES + ["genindex", "search"])
def test_console_holds_no_unexpected_errors(audits, name):
    audit, _ = audits[name]
    assert not audit.unexpected_errors(), f"{name}: console errors {audit.unexpected_errors()}"


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_math_is_typeset_and_no_raw_tex_is_left(audits, name):
    math = audits[name][0].math
    assert math["typeset"] == math["elements"], f"{name}: {math['typeset']} of {math['elements']} formulas typeset"
    assert not math["raw"], f"{name}: raw TeX delimiters {math['raw']} left in the text"


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_every_image_loads(audits, name):
    broken = [img["src"] for img in audits[name][0].images if not img["loaded"]]
    assert not broken, f"{name}: images that did not load: {broken}"


def executed_notebook(book: Path, name: str):
    """The notebook as the build executed it (jupyter_execute/ beside html/)."""
    return nbformat.read(book.parent / "jupyter_execute" / f"{name}.ipynb", as_version=4)


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_every_notebook_figure_appears_on_its_page(book, audits, name):
    nb = executed_notebook(book, name)
    pngs = sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.outputs)
    shown = [img for img in audits[name][0].images if img["output"] and img["loaded"]]
    assert len(shown) == pngs, f"{name}: the executed notebook has {pngs} PNG outputs, the page shows {len(shown)}"


WIDGETS_JS = """() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
  .map(s => { const view = s.previousElementSibling;
              const ok = !!view && view.classList.contains('widget-subarea') && view.children.length > 0;
              return ok ? view.getBoundingClientRect().height : 0; })"""


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_widget_views_render_from_saved_state(audits, name):
    audit, page = audits[name]
    heights = page.evaluate(WIDGETS_JS)
    assert heights, f"{name}: no widget view in the page (was widget state saved when the build executed it?)"
    assert all(h > 0 for h in heights), f"{name}: empty widget views (heights {heights})"


# The controls a reader can move: sliders (noUiSlider handles), dropdowns, buttons, toggle-button groups, checkboxes
CONTROLS = {
    "slider": ".widget-subarea .noUi-handle",
    "dropdown": ".widget-subarea .widget-dropdown select, .widget-subarea .widget-select select",
    "button": ".widget-subarea button.jupyter-button:not(.widget-toggle-buttons button)",
    "toggle group": ".widget-subarea .widget-toggle-buttons",
    "checkbox": ".widget-subarea .widget-checkbox input[type=checkbox]",
}
# the elements that hold a control (and its own readout): left out of what the page "shows"
CONTROL_BOXES = (".widget-slider, .widget-dropdown, .widget-select, .widget-button, .widget-toggle-button, "
                 ".widget-toggle-buttons, .widget-checkbox, .jupyter-button")

VIEW_STATE_JS = """(boxes) => [...document.querySelectorAll('.widget-subarea')].map(area => {
  const shown = [...area.querySelectorAll('img')].filter(e => e.getClientRects().length && !e.closest(boxes))
    .map(e => e.src);
  const copy = area.cloneNode(true);
  copy.querySelectorAll(boxes).forEach(e => e.remove());
  return shown.join(' ') + ' ' + copy.textContent; }).join('\\n')"""


def page_view(page) -> str:
    """What the widget views of a page show: their visible images and their text, controls left out."""
    return page.evaluate(VIEW_STATE_JS, CONTROL_BOXES)


def move(page, kind: str, control) -> bool:
    """Move one control as a reader would (keyboard, choice, click); True if the page's widget views changed."""
    before = page_view(page)

    def changed() -> bool:
        page.wait_for_timeout(200)
        return page_view(page) != before

    if kind == "slider":  # one step right; at the right end, one step left instead
        control.focus()
        page.keyboard.press("ArrowRight")
        if changed():
            return True
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        return changed()
    if kind == "dropdown":
        options = control.locator("option")
        if options.count() < 2:
            return False
        current = control.evaluate("s => s.selectedIndex")
        control.select_option(index=1 if current == 0 else 0)
        return changed()
    if kind == "toggle group":
        idle = control.locator("button:not(.mod-active)")
        if idle.count() == 0:
            return False
        idle.first.click()
        return changed()
    control.click()  # a button or a checkbox
    return changed()


def dead_controls(page) -> list[str]:
    """Every control of the page whose move leaves its widget views unchanged (it would need a kernel)."""
    dead = []
    for kind, selector in CONTROLS.items():
        for i, control in enumerate(page.locator(selector).all()):
            if not control.is_visible():  # a control inside a Stack view that is not shown
                continue
            if not move(page, kind, control):
                label = control.evaluate("e => (e.closest('.widget-inline-hbox, .widget-hbox, .widget-vbox') || e)"
                                         ".textContent.trim().slice(0, 60)")
                dead.append(f"{kind} #{i} ({label!r})")
    return dead


def linked_views_respond(page) -> list[int]:
    """Indices of the page's sliders that change what its widget views show when moved one step."""
    return [i for i, handle in enumerate(page.locator(CONTROLS["slider"]).all())
            if handle.is_visible() and move(page, "slider", handle)]


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_linked_widget_answers_its_slider_without_a_kernel(audits, name):
    _, page = audits[name]
    assert linked_views_respond(page), (
        f"{name}: no widget view changed when its slider moved; link a slider to a Stack's selected_index "
        "with ipywidgets.jslink so the page answers without a kernel (posebook.widgets.linked_views)")


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_every_control_answers_without_a_kernel(audits, name):
    _, page = audits[name]
    dead = dead_controls(page)
    assert not dead, (
        f"{name}: controls that change nothing in the built book (they need a kernel): {dead}; draw the views in "
        "advance and link the controls in the browser (posebook.widgets.linked_views / linked_grid), or leave the "
        "kernel-only widget out of the book")


# --------------------------------------------------------------------------------------------------------------
# Architecture chapters: a drawn architecture, and the idea first

def architecture_chapters() -> list[str]:
    """The notebooks of the toc's architecture part (the part whose caption names architectures)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ch["file"] for part in toc.get("parts", []) if "architecture" in part.get("caption", "").lower()
            for ch in part["chapters"] if ch["file"].startswith("notebooks/")]


ARCHITECTURES = architecture_chapters()
DIAGRAM_TAG = "architecture-diagram"


def test_the_toc_has_architecture_chapters():
    assert ARCHITECTURES, "_toc.yml has no part captioned 'Architectures' with notebook chapters"
    assert set(ARCHITECTURES) <= set(CHAPTERS)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_chapter_tags_a_diagram_cell(name):
    nb = nbformat.read(ROOT / f"{name}.ipynb", as_version=4)
    tagged = [c for c in nb.cells if DIAGRAM_TAG in c.get("metadata", {}).get("tags", [])]
    assert tagged, f"{name}: no cell tagged {DIAGRAM_TAG!r} (the code cell that draws the architecture)"
    assert all(c.cell_type == "code" for c in tagged), f"{name}: {DIAGRAM_TAG!r} must tag a code cell"


DIAGRAMS_JS = """(tag) => [...document.querySelectorAll('.tag_' + tag)].map(cell =>
  [...cell.querySelectorAll('img')].filter(img => img.complete && img.naturalWidth > 0).length)"""


@pytest.mark.browser
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_chapter_shows_its_architecture_figure(audits, name):
    _, page = audits[name]
    loaded = page.evaluate(DIAGRAMS_JS, DIAGRAM_TAG)
    assert loaded, f"{name}: no cell tagged {DIAGRAM_TAG!r} on the page (myst-nb class tag_{DIAGRAM_TAG})"
    assert any(loaded), f"{name}: the {DIAGRAM_TAG!r} cells show no loaded image (images per cell: {loaded})"


# What a reader sees before scrolling, at 1280 x 900: the first H2, the first diagram, visible tables and paragraphs
FIRST_SCREEN_JS = """(tag) => {
  const article = document.querySelector('article') || document.querySelector('main') || document.body;
  const fold = window.innerHeight;
  const top = e => e.getBoundingClientRect().top + window.scrollY;
  const visible = e => e.getClientRects().length > 0 && e.getBoundingClientRect().height > 0;
  const h2 = [...article.querySelectorAll('h2')].filter(visible);
  const diagram = [...article.querySelectorAll('.tag_' + tag)].filter(visible);
  return {fold: fold,
          first_h2: h2.length ? {text: h2[0].textContent.replace(/[#¶]/g, '').trim(), top: top(h2[0])} : null,
          diagram_top: diagram.length ? top(diagram[0]) : null,
          tables: [...article.querySelectorAll('table')].filter(t => visible(t) && top(t) < fold)
                    .map(t => t.textContent.replace(/\\s+/g, ' ').trim().slice(0, 80)),
          text: [...article.querySelectorAll('p, li')].filter(e => visible(e) && top(e) < fold)
                  .map(e => e.textContent).join(' ')};
}"""
# a first section or first-screen text about the run rather than the idea
NOT_THE_IDEA = re.compile(r"\b(cost|costs|timings?|provenance|records?|commits?|machine|budget|profiles?|setup)\b",
                          re.I)
PROVENANCE = re.compile(r"\bcommit\b|earlier builds?|machine load|trial runs?|wall time|measured on", re.I)


def first_screen_problems(page) -> list[str]:
    """Why a page does not open with the idea: its first section is about costs or provenance, neither the idea's
    heading nor the diagram is within the first screen, or a table or provenance text is."""
    screen = page.evaluate(FIRST_SCREEN_JS, DIAGRAM_TAG)
    first = screen["first_h2"]
    if not first:
        return ["the page has no section heading"]
    problems = []
    if NOT_THE_IDEA.search(first["text"]):
        problems.append(f"the first section is {first['text']!r}: open with the idea, and move costs and provenance "
                        "after it or into a collapsed note")
    if not any(t is not None and t < screen["fold"] for t in (first["top"], screen["diagram_top"])):
        problems.append(f"neither the idea's heading ({first['text']!r} at {first['top']:.0f} px) nor the "
                        f"architecture diagram is within the first screen ({screen['fold']} px)")
    if screen["tables"]:
        problems.append(f"a table within the first screen (a cost table?): {screen['tables']}")
    provenance = PROVENANCE.findall(screen["text"])
    if provenance:
        problems.append(f"provenance within the first screen ({provenance}); it belongs further down")
    return problems


@pytest.mark.browser
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_architecture_chapter_opens_with_the_idea(audits, name):
    _, page = audits[name]
    problems = first_screen_problems(page)
    assert not problems, f"{name}: " + "; ".join(problems)


# --------------------------------------------------------------------------------------------------------------
# The checks can fail: a one-page book with MathJax from the CDN (the Jupyter Book default)

@pytest.mark.browser
def test_offline_checks_catch_a_book_that_loads_mathjax_from_the_cdn(browser, tmp_path):
    (tmp_path / "_config.yml").write_text(
        "title: cdn\nexecute:\n  execute_notebooks: 'off'\n"
        "sphinx:\n  config:\n    mathjax_path: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\n")
    (tmp_path / "index.md").write_text("# One page\n\nThe energy is $E = mc^2$ and\n\n$$\\sum_k x_k$$\n")
    html = build_book(tmp_path, tmp_path / "out")
    audit, page = audit_page(browser, html / "index.html")
    page.close()
    assert any("cdn.jsdelivr.net/npm/mathjax" in url for url in audit.blocked), audit.blocked
    assert audit.math["elements"] == 2 and audit.math["typeset"] == 0, audit.math
    assert any("mathjax" in tag for tag in external_assets((html / "index.html").read_text()))



# --------------------------------------------------------------------------------------------------------------
# The checks can fail: a small book with a dead control, a live one, a drawn diagram and a page that opens with costs

TINY_NOTEBOOK = [
    ("markdown", [], "# Tiny\n\n## The idea\n\nOne figure, drawn in advance, and two sliders."),
    ("code", ["architecture-diagram", "hide-input"],
     "import matplotlib.pyplot as plt\nplt.figure(figsize=(2, 1)); plt.plot([0, 1]); plt.show()"),
    ("code", [], "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nfrom IPython.display import display\n"
                 "from posebook.widgets import linked_views\n\n\ndef draw(v):\n"
                 "    fig, ax = plt.subplots(figsize=(1, 1))\n    ax.set_title(str(v))\n    return fig\n\n\n"
                 "display(linked_views(draw, [1, 2, 3], 'linked'))\n"
                 "display(widgets.IntSlider(value=1, min=0, max=5, description='dead'))"),
]
TINY_COSTS_FIRST = ("# Costs first\n\n## What this chapter costs\n\n| profile | minutes |\n|---|---|\n| cpu | 3 |\n\n"
                    "Measured on commit abc123 while the machine load was high.\n\n## The idea\n\nIt comes too late.\n")


@pytest.mark.browser
def test_widget_diagram_and_first_screen_checks_catch_a_bad_page(browser, tmp_path):
    vendor = os.path.relpath(ROOT / "book" / "vendor", tmp_path)
    (tmp_path / "_config.yml").write_text(
        "title: tiny\nexecute:\n  execute_notebooks: force\n"
        "sphinx:\n  config:\n"
        f"    html_extra_path: [{json.dumps(vendor)}]\n    mathjax_path: ../mathjax/tex-mml-chtml.js\n"
        "    nb_ipywidgets_js:\n      ../requirejs/require.js: {}\n      ../jupyter-widgets/widgets-paths.js: {}\n"
        "      ../jupyter-widgets/embed-amd.js: {}\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: costs\nchapters:\n  - file: tiny\n")
    (tmp_path / "costs.md").write_text(TINY_COSTS_FIRST)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    for kind, tags, source in TINY_NOTEBOOK:
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    html = build_book(tmp_path, tmp_path / "out")

    audit, page = audit_page(browser, html / "tiny.html")
    try:
        assert not audit.blocked, audit.blocked
        dead = dead_controls(page)
        assert len(dead) == 1 and "dead" in dead[0], dead  # the unlinked slider, not the linked one
        assert linked_views_respond(page) == [0]
        assert any(page.evaluate(DIAGRAMS_JS, DIAGRAM_TAG))
        assert first_screen_problems(page) == []
    finally:
        page.close()
    _, page = audit_page(browser, html / "costs.html")
    try:
        problems = first_screen_problems(page)
    finally:
        page.close()
    assert any("first section is 'What this chapter costs'" in p for p in problems), problems
    assert any("a table within the first screen" in p for p in problems), problems
    assert any("provenance" in p for p in problems), problems
    assert not page_has_diagram(html / "costs.html")


def page_has_diagram(path: Path) -> bool:
    """Whether a built page holds a cell tagged as the architecture diagram (from its HTML, no browser)."""
    return f"tag_{DIAGRAM_TAG}" in path.read_text()

# --------------------------------------------------------------------------------------------------------------
# Launch buttons and badge rows agree with _config.yml (no build needed)

def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_repository_settings_point_at_the_public_repository():
    repo = config()["repository"]
    assert repo["url"] == "https://github.com/posebook/posebook"
    assert repo["branch"] == "main"
    assert repo.get("path_to_book", "") == "", "the book's _config.yml sits at the repository root"
    launch = config()["launch_buttons"]
    assert launch["colab_url"] == "https://colab.research.google.com" and launch["binderhub_url"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_badge_row_agrees_with_config(path):
    repo = config()["repository"]
    owner_name = repo["url"].removeprefix("https://github.com/")
    in_repo = "/".join(p for p in (repo.get("path_to_book", "").strip("/"), "notebooks", path.name) if p)
    expected = f"https://colab.research.google.com/github/{owner_name}/blob/{repo['branch']}/{in_repo}"
    first_md = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    assert expected in first_md.source, f"{path.name}: the badge must link {expected}"


@pytest.mark.browser
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_page_has_colab_and_binder_launch_buttons(book, name):
    html = (book / f"{name}.html").read_text()
    repo = config()["repository"]
    owner_name = repo["url"].removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_name}/blob/{repo['branch']}/{name}.ipynb"
    binder = f"https://mybinder.org/v2/gh/{owner_name}/{repo['branch']}?urlpath=tree/{name}.ipynb"
    assert colab in html, f"{name}: no Colab launch button to {colab}"
    assert binder in html, f"{name}: no Binder launch button to {binder}"


# --------------------------------------------------------------------------------------------------------------
# The API reference (book/api.md, Sphinx autodoc) and the docstrings it shows (no build needed)

def public_modules() -> list[str]:
    """Every importable module of posebook whose dotted name has no part starting with '_'."""
    import pkgutil

    import posebook

    names = ["posebook"] + [m.name for m in pkgutil.walk_packages(posebook.__path__, "posebook.")]
    return [n for n in names if not any(part.startswith("_") for part in n.split("."))]


def test_api_page_documents_every_public_module():
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", (ROOT / "book" / "api.md").read_text(), re.M))
    missing = [m for m in public_modules() if m not in documented]
    assert not missing, f"book/api.md has no `.. automodule::` line for {missing}"


def public_objects() -> list[tuple[str, object]]:
    """Every public block, model constructor, codec, loss and metric, from the packages' own export lists."""
    import importlib
    import inspect

    import posebook.models as models

    found = []
    for package in ("posebook.blocks", "posebook.codecs"):
        module = importlib.import_module(package)
        found += [(f"{package}.{name}", getattr(module, name)) for name in module.__all__]
    found += [(f"posebook.models.create({name!r})", models.MODELS[name]) for name in models.available()]
    for name in ("posebook.losses", "posebook.metrics"):
        module = importlib.import_module(name)
        found += [(f"{name}.{n}", obj) for n, obj in vars(module).items()
                  if not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                  and obj.__module__ == name]
    return found


PUBLIC = public_objects()
# a paper: its authors, a venue/year, a section of it, the name of its method, or PAPERS.md (facts from the papers)
PAPER = re.compile(r"et al\.|§|\bSec\.|PAPERS(\.md)?\b|\b(CVPR|ICCV|ECCV|TPAMI|NeurIPS|BMVC)\b|\b(19|20)\d\d\b|"
                   r"\b(HRNet|SimpleBaseline|Hourglass|CPN|MSPN|OpenPose|DARK|ResNet|pycocotools|COCO|MPII)\b")
CHAPTER = re.compile(r"\b(chapter|ch\.)\s*\d\d\b", re.I)


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_docstring_names_its_paper_and_chapter(name, obj):
    doc = obj.__doc__ or ""
    assert doc.strip(), f"{name} ({obj.__module__}) has no docstring"
    assert PAPER.search(doc), f"{name} ({obj.__module__}): the docstring names no paper (authors, venue, section)"
    assert CHAPTER.search(doc), f"{name} ({obj.__module__}): the docstring names no chapter ('chapter NN')"
