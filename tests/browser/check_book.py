"""The built book as a reader sees it: every page of ``_build/html`` in headless Chromium.

Run by ``make test-browser`` (``pytest tests/browser/check_book.py``); the file name keeps it
out of ``pytest tests``. Needs the Debian packages ``chromium`` and ``chromium-driver`` and
``selenium`` from PyPI. ``KD_BOOK_HTML`` points it at another build (default ``_build/html``).

Every page is served from 127.0.0.1 and must: log no console error, request nothing from
another host (the resolver also maps every other host to NOTFOUND), get no HTTP error, load
every image, typeset every math element with MathJax and leave no raw TeX in the visible text,
and link only to local pages and anchors that exist, and never to a placeholder (or, while
``_config.yml`` names no repository, to any repository or Colab page). Notebook pages must show
their sections in the notebook's order, end no section on a paragraph that announces something
with a colon, show no papermill parameter cell, no table wider than its column and no figure
without a caption. The entry page and the results page must
hold the claims table. Screenshots at 1280 px wide go to ``_build/screenshots/``: the results
page (``claims.png``), the entry page (``intro.png``), an experiment chapter
(``chapter.png``) and the closing chapter (``conclusions.png``); look at them.
"""
from __future__ import annotations

import base64
import html
import functools
import http.server
import json
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("KD_BOOK_HTML", REPO / "_build" / "html")).resolve()
SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: Pages of the book: every .html file outside Sphinx's _static, _sources, _images folders.
PAGES = sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
               if not any(part.startswith("_") for part in p.relative_to(HTML).parts))
RESULTS_PAGES = [p for p in PAGES if Path(p).stem.endswith("results")]
#: Notebook pages, with the notebook they were built from.
NOTEBOOK_PAGES = [p for p in PAGES if (REPO / p).with_suffix(".ipynb").is_file()]
#: The pages to photograph: name -> page.
SHOTS = {"intro": "book/intro.html", "chapter": "notebooks/02_teacher_and_students.html",
         "temperature": "notebooks/03_temperature_and_capacity.html",
         "conclusions": "book/conclusions.html", "paper_teacher": "notebooks/06_paper_teacher.html",
         "soft_targets": "notebooks/07_soft_targets_regulariser.html",
         "ensemble": "notebooks/08_ensemble_distillation.html",
         "specialists": "notebooks/09_specialists.html", "provenance": "book/provenance.html",
         "reproduce": "book/reproduce.html", "history": "notebooks/10_history.html",
         "derivations": "notebooks/01_derivations.html",
         "omitted": "notebooks/04_omitted_digits.html"}
#: The one repository URL setting; empty while the project has no public repository.
REPOSITORY_URL = str(((yaml.safe_load((REPO / "_config.yml").read_text()) or {})
                      .get("repository") or {}).get("url") or "").strip().rstrip("/")
#: Links that stand for a repository that is not ours (placeholders, Jupyter Book's default).
PLACEHOLDER = re.compile(r"github\.com/(kd-book/kd-book|executablebooks/jupyter-book|"
                         r"(your|my|some)[-_]?(org|user|name|account))|example\.(com|org|net)|"
                         r"\bTODO\b|\bCHANGEME\b|\bplaceholder\b", re.I)
#: TeX left in the visible text when math was not typeset.
META_REFRESH = re.compile(r"""<meta\s+http-equiv=["']refresh["']\s+content=["']\d+;\s*url=([^"']+)""",
                          re.I)
RAW_TEX = re.compile(r"\$\$|\\[()\[\]]|\\(frac|begin|end|sum|mathrm|mathbf|left|right|partial|"
                     r"sqrt|cdot|log|exp|text)\b|\$[^$\n]*[\\^_][^$\n]*\$")


# ----------------------------------------------------------------------------- fixtures
class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    """The built book on http://127.0.0.1:<free port>, served by a thread of this process."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1024",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    driver.get("about:blank")
    yield driver
    driver.quit()


@functools.lru_cache(maxsize=None)
def anchors_of(path: Path) -> frozenset[str]:
    """Every id and <a name> of a built page."""
    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.found = set()

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.found.update(v for k, v in attrs.items() if k == "id" and v)
            if tag == "a" and attrs.get("name"):
                self.found.add(attrs["name"])

    parser = Collect()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.found)


# ----------------------------------------------------------------------------- one page
WAIT_FOR_MATH_AND_IMAGES = """
const done = arguments[arguments.length - 1];
const math = (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise : Promise.resolve();
const images = Array.from(document.images).map(img => {
    img.loading = 'eager';
    return img.complete ? null : new Promise(r => { img.addEventListener('load', r);
                                                      img.addEventListener('error', r); });
});
Promise.all([math, ...images]).then(() => done('ok'), e => done('error: ' + e));
"""

INSPECT = """
const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'NOSCRIPT', 'TEMPLATE',
                      'MJX-CONTAINER']);
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
        for (let e = node.parentElement; e; e = e.parentElement)
            if (skip.has(e.tagName)) return NodeFilter.FILTER_REJECT;
        const rects = node.parentElement ? node.parentElement.getClientRects().length : 0;
        return rects ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
    }});
const text = [];
while (walker.nextNode()) text.push(walker.currentNode.nodeValue);
const math = Array.from(document.querySelectorAll('.math'));
return {
    text: text.join(' '),
    math: math.length,
    typeset: document.querySelectorAll('mjx-container').length,
    untypeset: math.filter(m => !m.querySelector('mjx-container'))
                   .map(m => m.textContent.trim().slice(0, 80)),
    images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
                                                   ok: i.complete && i.naturalWidth > 0})),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    parameterCells: Array.from(document.querySelectorAll('div.cell')).filter(c =>
        c.getClientRects().length && (c.matches('.tag_injected-parameters, .tag_parameters')
                                      || /^\\s*# Parameters\\b/.test(c.innerText)))
        .map(c => c.innerText.trim().slice(0, 80)),
    wideTables: Array.from(document.querySelectorAll('article table')).filter(t => {
        const column = t.closest('section') || t.closest('article');
        return t.getClientRects().length && column && !t.closest('details:not([open])')
            && t.getBoundingClientRect().width > column.getBoundingClientRect().width + 2;
    }).map(t => t.innerText.trim().slice(0, 80)),
    uncaptionedFigures: Array.from(document.querySelectorAll('article figure')).filter(f =>
        f.getClientRects().length && f.querySelector('img')
        && !(f.querySelector('figcaption') && f.querySelector('figcaption').textContent.trim()))
        .map(f => (f.querySelector('img').getAttribute('src') || '').slice(-60)),
    // a list inside a list item whose own text does not announce it: a wrapped line of a
    // paragraph or formula that began with "-", "+" or "1." and became a nested list
    strayLists: Array.from(document.querySelectorAll('article li > ul, article li > ol')).filter(l => {
        if (!l.getClientRects().length) return false;
        let own = '';
        for (const n of l.parentElement.childNodes) {
            if (n === l) break;
            own += n.textContent;
        }
        return !/[:.]\\s*$/.test(own.trim()) || own.trim() === '';
    }).map(l => (l.parentElement.textContent.trim().slice(0, 60) + ' ... ' +
                 l.textContent.trim().slice(0, 40))),
    // glued numbers and sentences read as the prose around them (MyST-NB sets them bold)
    boldGlue: Array.from(document.querySelectorAll('span.pasted-text')).filter(g =>
        g.getClientRects().length && parseInt(getComputedStyle(g).fontWeight) >= 600
        && !g.closest('strong, b, th, h1, h2, h3, h4, h5, h6, caption, .caption-number'))
        .map(g => g.textContent.trim().slice(0, 60)),
    // code whose lines the page wraps (a wrapped line starts at column 0, breaking the indentation)
    wrappedCode: Array.from(document.querySelectorAll('article div.highlight pre')).filter(p => {
        if (!p.getClientRects().length || p.closest('details:not([open])')) return false;
        if (p.closest('.cell_output, .output')) return false;  // printed text, not code
        const style = getComputedStyle(p);
        const lineHeight = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
        const inner = p.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
        const lines = p.textContent.replace(/\\n$/, '').split('\\n').length;
        return Math.round(inner / lineHeight) > lines;
    }).map(p => p.textContent.split('\\n').reduce((a, b) => b.length > a.length ? b : a, '').slice(0, 80)),
    danglingColons: Array.from(document.querySelectorAll('article p, main p')).filter(p => {
        if (!p.textContent.trim().endsWith(':')) return false;
        let next = p.nextElementSibling;
        return !next || next.tagName === 'SECTION' || /^H[1-6]$/.test(next.tagName);
    }).map(p => p.textContent.trim().slice(-100)),
};
"""


def network_problems(log_entries, origin: str) -> list[str]:
    """Requests to any host but ours, and HTTP errors, from the DevTools performance log."""
    problems, urls = [], {}
    for entry in log_entries:
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            url = urls[params["requestId"]] = params["request"]["url"]
            scheme = url.split(":", 1)[0]
            if scheme in ("http", "https", "ws", "wss", "ftp") and not url.startswith(origin + "/"):
                problems.append(f"request to another host: {url}")
        elif message.get("method") == "Network.responseReceived":
            response = params["response"]
            if response.get("status", 200) >= 400:
                problems.append(f"HTTP {response['status']}: {response['url']}")
        elif message.get("method") == "Network.loadingFailed" and not params.get("canceled"):
            url = urls.get(params["requestId"], params["requestId"])
            problems.append(f"failed to load ({params.get('errorText')}): {url}")
    return problems


def link_problems(links, origin: str) -> list[str]:
    problems = []
    for href in links:
        if PLACEHOLDER.search(href):
            problems.append(f"placeholder link: {href}")
        elif not REPOSITORY_URL and re.match(r"https?://(github\.com|colab\.research\.google\.com|"
                                             r"mybinder\.org)/", href):
            problems.append(f"repository/launch link, but _config.yml names no repository: {href}")
        url = urlsplit(href)
        if f"{url.scheme}://{url.netloc}" != origin:
            continue  # external links are not followed (no network here)
        path = unquote(url.path).lstrip("/")
        target = HTML / (path + "index.html" if path.endswith("/") or not path else path)
        if not target.is_file():
            problems.append(f"broken link: {href}")
        elif url.fragment and target.suffix == ".html" and unquote(url.fragment) not in anchors_of(target):
            problems.append(f"missing anchor: {href}")
    return problems


#: Errors logged after a page was checked (a late favicon request, say), by page.
LATE: dict[str, list[str]] = {}
_previous = {"page": None}


def collect_late(browser, origin: str) -> None:
    """File whatever the previous page logged after its check under that page's name."""
    late = [f"console error: {e['message']}" for e in browser.get_log("browser")
            if e["level"] == "SEVERE"] + network_problems(browser.get_log("performance"), origin)
    if late and _previous["page"]:  # before the first page: the browser's own start-up
        LATE.setdefault(_previous["page"], []).extend(late)


def open_page(browser, origin: str, page: str) -> dict:
    """Load ``page`` (following a meta refresh, as index.html has) and inspect it."""
    collect_late(browser, origin)
    _previous["page"] = page
    url = f"{origin}/{page}"
    browser.get(url)
    refresh = META_REFRESH.search((HTML / page).read_text(encoding="utf-8"))
    if refresh:
        target = urljoin(url, refresh.group(1))
        WebDriverWait(browser, 60).until(lambda d: d.current_url == target)
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.execute_async_script(WAIT_FOR_MATH_AND_IMAGES) == "ok"
    facts = browser.execute_script(INSPECT)
    facts["console"] = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    facts["network"] = network_problems(browser.get_log("performance"), origin)
    return facts


# ----------------------------------------------------------------------------- tests
def test_the_book_is_built():
    assert (HTML / "index.html").is_file(), f"no book at {HTML}; run `make book` first"
    assert len(PAGES) > 1 and len(RESULTS_PAGES) == 1, (PAGES, RESULTS_PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page(browser, origin, page):
    facts = open_page(browser, origin, page)
    problems = [f"console error: {m}" for m in facts["console"]] + facts["network"]
    problems += [f"image not loaded: {i['src']}" for i in facts["images"] if not i["ok"]]
    problems += [f"math not typeset: {m}" for m in facts["untypeset"]]
    if facts["math"] and not facts["typeset"]:
        problems.append("MathJax typeset nothing")
    problems += [f"raw TeX in the text: ...{facts['text'][max(0, m.start() - 40):m.end() + 40]}..."
                 for m in RAW_TEX.finditer(facts["text"])]
    problems += link_problems(facts["links"], origin)
    problems += [f"papermill parameter cell visible: {c}" for c in facts["parameterCells"]]
    problems += [f"a paragraph announces something but its section ends there: ...{c}"
                 for c in facts["danglingColons"]]
    problems += [f"table wider than its column: {t}" for t in facts["wideTables"]]
    problems += [f"figure without a caption: {f}" for f in facts["uncaptionedFigures"]]
    problems += [f"glued text set bold: {g}" for g in facts["boldGlue"]]
    problems += [f"code line wrapped by the page (shorten it): {c}" for c in facts["wrappedCode"]]
    problems += [f"a list inside a list item that its text does not announce (a wrapped line "
                 f"that began with '-', '+' or a number?): {t}" for t in facts["strayLists"]]
    assert problems == [], f"{page}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", RESULTS_PAGES)
def test_results_page_points_to_the_claims_table(browser, origin, page):
    facts = open_page(browser, origin, page)
    screenshot(browser, "claims")
    assert any(link.endswith("intro.html#tab-claims") for link in facts["links"]), page
    assert facts["console"] == [] and facts["network"] == []


REPR = re.compile(r"<(?:IPython|matplotlib)[.\w]* object|<Figure size \d")


def test_no_page_shows_an_objects_repr_instead_of_its_output():
    """A glued Markdown table pasted into another page came out as "<IPython.core.display.
    Markdown object>" (MyST-NB pastes only text, HTML and images across documents)."""
    for page in PAGES:
        text = html.unescape(re.sub(r"<[^>]+>", "", (HTML / page).read_text(encoding="utf-8")))
        found = [text[max(0, m.start() - 60):m.end()] for m in REPR.finditer(text)]
        assert found == [], (page, found)


def test_the_claims_tables_are_shown_in_full_once():
    """The claims tables (Section 3, Sections 4-6) are on the entry page and nowhere else:
    other pages link to them or show the rows they are about."""
    for header in ("Claim (Section 3)", "Claim (Sections 4-6)"):
        pages = [p for p in PAGES if f">{header}<" in (HTML / p).read_text(encoding="utf-8")]
        assert pages == ["book/intro.html"], (header, pages)


# ----------------------------------------------------------------------------- sections
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]", re.S)


def normalised(heading: str) -> str:
    """Heading text without its math, markup and punctuation, for comparing MD with HTML."""
    text = MATH.sub(" ", heading)
    text = re.sub(r"\{[a-z:]+\}`([^`<]*)(<[^>]*>)?`", r"\1", text)   # MyST roles
    return re.sub(r"[^0-9a-z]+", " ", text.lower().replace("¶", "").replace("#", "")).strip()


def notebook_headings(notebook: Path) -> list[str]:
    """The headings of a notebook's markdown cells, in cell order (none inside code fences)."""
    headings = []
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "markdown" or "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        fenced = False
        for line in "".join(cell["source"]).splitlines():
            if line.lstrip().startswith(("```", ":::")):
                fenced = not fenced
            elif not fenced and re.match(r"#{1,6} ", line):
                headings.append(normalised(line.lstrip("#")))
    return headings


def html_headings(page: Path) -> list[str]:
    """The h1-h6 headings of a built page's article, in document order."""
    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.headings, self.current, self.depth = [], None, 0

        def handle_starttag(self, tag, attrs):
            if tag == "article":
                self.depth += 1
            if self.depth and re.fullmatch(r"h[1-6]", tag):
                self.current = []

        def handle_endtag(self, tag):
            if tag == "article":
                self.depth -= 1
            if self.current is not None and re.fullmatch(r"h[1-6]", tag):
                self.headings.append(normalised("".join(self.current)))
                self.current = None

        def handle_data(self, data):
            if self.current is not None:
                self.current.append(data)

    parser = Collect()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.headings


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_sections_follow_the_notebook(page):
    """Every heading of the notebook is on its page, in the notebook's order, and no other."""
    expected = notebook_headings((REPO / page).with_suffix(".ipynb"))
    assert expected, page
    assert html_headings(HTML / page) == expected


# ----------------------------------------------------------------------------- screenshots
def screenshot(browser, name: str) -> Path:
    """The whole page (at most 16,000 px of it) as a 1280 px wide window that tall shows it.

    The window is made as tall as the page for the capture (capturing beyond a 1024 px
    viewport instead squeezes the theme's sticky sidebars)."""
    width = browser.execute_script("return window.innerWidth")
    height = min(browser.execute_script("return document.documentElement.scrollHeight"), 16000)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        browser.execute_async_script(WAIT_FOR_MATH_AND_IMAGES)
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@pytest.mark.parametrize("name", sorted(SHOTS))
def test_screenshot(browser, origin, name):
    page = SHOTS[name]
    assert page in PAGES, f"{page} is not in the book"
    facts = open_page(browser, origin, page)
    width = browser.execute_script("return window.innerWidth")
    assert width == 1280, width
    # Nothing of the reader's code is cut off to the right: no code block scrolls sideways.
    scrolling = browser.execute_script("""
        return Array.from(document.querySelectorAll('pre')).filter(p =>
            p.getClientRects().length && p.scrollWidth > p.clientWidth + 1)
            .map(p => p.textContent.trim().slice(0, 60));""")
    assert scrolling == [], f"{page}: code that scrolls sideways: {scrolling}"
    assert screenshot(browser, name).stat().st_size > 10_000
    assert facts["console"] == [] and facts["network"] == []


def test_the_entry_page_opens_with_the_claims_table(browser, origin):
    open_page(browser, origin, SHOTS["intro"])
    first = browser.execute_script("""
        const main = document.querySelector('article') || document.body;
        const table = main.querySelector('table');
        if (!table) return null;
        return {head: Array.from(table.querySelectorAll('th, caption')).map(h => h.textContent),
                rows: table.querySelectorAll('tbody tr').length,
                top: table.getBoundingClientRect().top + window.scrollY};""")
    assert first and first["rows"] >= 1, first
    assert any(re.search(r"\bclaims?\b", h, re.I) for h in first["head"]), first
    assert first["top"] < 1600, f"the claims table starts {first['top']:.0f} px down the entry page"


def test_nothing_failed_after_its_page_was_checked(browser, origin):
    browser.get("about:blank")
    collect_late(browser, origin)
    assert LATE == {}
