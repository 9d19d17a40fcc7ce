"""A virtual table that follows a watch cache by keyed diffs.

Changes are marked as they arrive and flushed at most every 100 ms, inside
`batch_update()`: rows are added, updated and removed by key; the table is never
cleared and refilled. A hidden table keeps its marks until it is shown.

Only the lines in view are rendered (Textual's Line API): rows live in a dict by
key, with the shown keys in sort order and their positions in an index. A
keypress repaints the two lines the cursor left and entered; an update repaints
its line when it is in view and nothing otherwise. Each row is one line; cells
are plain strings or `Text` with one style, and columns only grow.
"""

from __future__ import annotations

import time
from bisect import insort
from collections.abc import Callable
from operator import itemgetter
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.tui.informer import bulk
from console.tui.views import Cell, Context, ViewSpec
from control.objects.selectors import LabelSelector, SelectorError, parse_label_selector

FLUSH_SECONDS = 0.1
# While the first list is arriving (`listing`), ticks flush at most this often: each flush
# of a page re-lays out and repaints the screen, and the first page and the
# last are flushed at once anyway.
LISTING_FLUSH_SECONDS = 0.5
# More new rows than this in one flush sort the whole table rather than insert.
INSERT_MAX = 64
STRIP_CACHE = 512
PADDING = 1


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


def _looks_like_selector(text: str) -> bool:
    return any(op in text for op in ("=", " in ", " notin ")) or text.startswith("!")


class ResourceTable(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First", show=False),
        Binding("end,ctrl+end", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"table--header", "table--cursor"}
    DEFAULT_CSS = """
    ResourceTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        & > .table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    def __init__(self, spec: ViewSpec, ctx: Context, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.ctx = ctx
        self.rows_all: dict[str, list[Cell]] = {}
        self.obj_rows: dict[str, list[str]] = {}
        self.row_obj: dict[str, str] = {}
        self.sort_of: dict[str, tuple[str, str]] = {}
        self.search_of: dict[str, str] = {}
        self.shown: set[str] = set()
        self.order: list[str] = []  # shown row keys, sorted
        self.index: dict[str, int] = {}  # row key -> position in `order`
        self.cursor_row = 0
        self.widths = [_width(h) for h in spec.headers]
        self.filter_text = ""
        self._selector: LabelSelector | None = None
        self._dirty: set[str] = set()
        self._dirty_all = False
        self._refilter = False
        self.flushes = 0
        self.last_flush_s = 0.0
        self.listing = False  # the first list of this view's kind is still arriving
        self._flushed_at = 0.0
        self._strips: dict[str, Strip] = {}  # rendered rows off the cursor, full width
        self._styles: tuple[Style, Style, Style] | None = None
        self._cell_styles: dict[str, Style] = {}

    def on_mount(self) -> None:
        self._resize_virtual()
        self.set_interval(FLUSH_SECONDS, self.flush)

    # -- marking -----------------------------------------------------------------

    def mark(self, keys: set[str]) -> None:
        self._dirty |= keys

    def mark_all(self, _keys: set[str] | None = None) -> None:
        self._dirty_all = True

    def set_filter(self, text: str) -> str | None:
        """Filter by text, or by label selector when it looks like one; returns an error."""
        text = text.strip()
        selector = None
        if text and _looks_like_selector(text):
            try:
                selector = parse_label_selector(text)
            except SelectorError as e:
                return str(e)
        self.filter_text = text
        self._selector = selector
        self._refilter = True
        self.flush(force=True)
        return None

    # -- reading -----------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.order)

    def row_keys(self) -> list[str]:
        return list(self.order)

    def get_row_index(self, row_key: str) -> int:
        return self.index[row_key]

    def get_row(self, row_key: str) -> list[Cell]:
        return list(self.rows_all[row_key])

    def get_row_at(self, index: int) -> list[Cell]:
        return list(self.rows_all[self.order[index]])

    def selected_key(self) -> str | None:
        """The object key (`ns/name` or `name`; see ViewSpec.target) of the row
        under the cursor."""
        row = self.selected_row()
        return None if row is None else self.row_obj.get(row)

    def selected_row(self) -> str | None:
        """The key of the row under the cursor."""
        return self.order[self.cursor_row] if self.order else None

    def visible_rows(self) -> list[list[str]]:
        """The rows as shown, in order, as plain text (tests and snapshots)."""
        rows_all = self.rows_all
        return [[_plain(c) for c in rows_all[k]] for k in self.order]

    # -- the cursor --------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.size.height - 1)

    def move_cursor(self, *, row: int, scroll: bool = True, **_: Any) -> None:
        old = self.cursor_row
        self.cursor_row = max(0, min(row, len(self.order) - 1))
        if self.cursor_row != old:
            self._refresh_row(old)
            self._refresh_row(self.cursor_row)
        if scroll:
            self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + self._page:
            self.scroll_to(y=self.cursor_row - self._page + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - self._page)

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + self._page)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self.order) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self.move_cursor(row=round(self.scroll_y) + offset.y - 1, scroll=False)

    # -- flushing ----------------------------------------------------------------

    def _visible(self, row_key: str) -> bool:
        if self._selector is not None:
            obj = self.spec.objects(self.ctx).get(self.row_obj.get(row_key, ""))
            labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            return self._selector.matches(labels)
        if self.filter_text:
            text = self.search_of.get(row_key)
            if text is None:
                cells = self.rows_all.get(row_key, [])
                text = self.search_of[row_key] = " ".join(_plain(c) for c in cells).lower()
            return self.filter_text.lower() in text
        return True

    def _render_objs(self, keys: set[str]) -> tuple[set[str], set[str]]:
        """Recompute these objects' rows; returns (changed row keys, removed row keys).

        The hot path of opening a view (20,000 pods in one flush): locals only,
        and a row's sort key is kept only when the view sorts by more than it.
        """
        objects = self.spec.objects(self.ctx)
        rows, ctx, sort = self.spec.rows, self.ctx, self.spec.sort
        obj_rows, rows_all, row_obj = self.obj_rows, self.rows_all, self.row_obj
        sort_of, search_of = self.sort_of, self.search_of
        changed: set[str] = set()
        removed: set[str] = set()
        for key in keys:
            old = obj_rows.pop(key, None)
            obj = objects.get(key)
            new_keys: list[str] = []
            if obj is not None:
                order = sort(obj) if sort is not None else None
                for row_key, cells in rows(obj, ctx):
                    new_keys.append(row_key)
                    if rows_all.get(row_key) != cells:
                        changed.add(row_key)
                        rows_all[row_key] = cells
                        search_of.pop(row_key, None)
                    row_obj[row_key] = key
                    if order is not None:
                        sort_of[row_key] = (order, row_key)
                obj_rows[key] = new_keys
            if old:
                for row_key in old:
                    if row_key not in new_keys:
                        removed.add(row_key)
                        rows_all.pop(row_key, None)
                        row_obj.pop(row_key, None)
                        sort_of.pop(row_key, None)
                        search_of.pop(row_key, None)
        return changed, removed

    def flush(self, force: bool = False) -> None:
        if not (self._dirty or self._dirty_all or self._refilter):
            return
        if not (force or self.display):
            return  # hidden: keep the marks until shown
        if self.listing and self.order and not force:
            if time.monotonic() - self._flushed_at < LISTING_FLUSH_SECONDS:
                return
        if len(self._dirty) > 1000 or self._dirty_all or self._refilter:
            with bulk():
                self._flush()
        else:
            self._flush()

    def _flush(self) -> None:
        t0 = time.perf_counter()
        self._flushed_at = time.monotonic()
        objects = self.spec.objects(self.ctx)
        dirty = set(objects) | set(self.obj_rows) if self._dirty_all else self._dirty
        self._dirty, self._dirty_all = set(), False
        changed, removed = self._render_objs(dirty)
        candidates = set(self.rows_all) if self._refilter else changed
        self._refilter = False
        to_remove = {k for k in removed if k in self.shown}
        to_add: list[str] = []
        to_update: list[str] = []
        for row_key in candidates:
            visible = self._visible(row_key)
            if row_key in self.shown:
                if not visible:
                    to_remove.add(row_key)
                elif row_key in changed:
                    to_update.append(row_key)
            elif visible:
                to_add.append(row_key)
        for row_key in removed | set(to_update):
            self._strips.pop(row_key, None)
        if not (to_remove or to_add or to_update):
            return
        wider = self._measure(to_add or to_update)
        if to_add and to_update:
            wider |= self._measure(to_update)
        cursor_key = self.order[self.cursor_row] if self.order else None
        with self.app.batch_update():
            if to_add or to_remove or (self.spec.resort_on_update and to_update):
                self._reorder(to_add, to_remove)
                if cursor_key is not None and cursor_key in self.index:
                    self.cursor_row = self.index[cursor_key]
                else:
                    self.cursor_row = max(0, min(self.cursor_row, len(self.order) - 1))
                self._resize_virtual()
                self.refresh()
            elif wider:
                self._resize_virtual()
                self.refresh()
            else:
                for row_key in to_update:
                    self._refresh_row(self.index[row_key])
        self.flushes += 1
        self.last_flush_s = time.perf_counter() - t0

    def _measure(self, keys: list[str]) -> bool:
        """Grow the columns to fit these rows; True if any grew."""
        rows = list(map(self.rows_all.__getitem__, keys))
        grew = False
        for i, width in enumerate(self.widths):
            # A column at a time, so the lengths are taken in C.
            texts = [c if c.__class__ is str else _plain(c) for c in map(itemgetter(i), rows)]
            if not texts:
                continue
            measure = len if "".join(texts).isascii() else cell_len
            widest = max(map(measure, texts))
            if widest > width:
                self.widths[i] = widest
                grew = True
        if grew:
            self._strips.clear()
        return grew

    def _reorder(self, added: list[str], removed: set[str]) -> None:
        self.shown.difference_update(removed)
        self.shown.update(added)
        # Rows sort by (sort(obj), row key), or by row key alone.
        key = self.sort_of.__getitem__ if self.spec.sort is not None else None
        reverse, resort = self.spec.reverse, self.spec.resort_on_update
        if removed:
            self.order = [k for k in self.order if k not in removed]
        if reverse or resort or len(added) > INSERT_MAX:
            new = sorted(added, key=key, reverse=reverse)
            order = self.order
            if new and order and not (removed or resort) and self._before(order[-1], new[0], key):
                # They all go after the last row (a list arrives in key order): append.
                self.index.update((k, i) for i, k in enumerate(new, len(order)))
                order.extend(new)
                return
            self.order = new if not order else sorted(self.shown, key=key, reverse=reverse)
        else:
            for k in added:
                insort(self.order, k, key=key)
        self.index = {k: i for i, k in enumerate(self.order)}

    def _before(self, a: str, b: str, key: Callable[[str], Any] | None) -> bool:
        """Whether row `a` is shown before row `b`."""
        ka, kb = (a, b) if key is None else (key(a), key(b))
        return bool(ka > kb) if self.spec.reverse else bool(ka < kb)

    def refresh_ages(self) -> None:
        """Re-render the rows in view, so AGE and LAST SEEN keep counting."""
        top = round(self.scroll_y)
        objects = self.spec.objects(self.ctx)
        keys = {self.row_obj.get(k, "") for k in self.order[top : top + self._page]}
        self.mark({k for k in keys if k in objects})

    # -- rendering ---------------------------------------------------------------

    def _resize_virtual(self) -> None:
        width = sum(w + 2 * PADDING for w in self.widths)
        self.virtual_size = Size(width, len(self.order) + 1)

    def _refresh_row(self, index: int) -> None:
        top = round(self.scroll_y)
        if top <= index < top + self._page:
            self.refresh_line(index + 1)  # line 0 is the header, which does not scroll

    def render_lines(self, crop: Any) -> list[Strip]:
        styles = (
            self.rich_style,
            self.get_component_rich_style("table--header"),
            self.get_component_rich_style("table--cursor"),
        )
        if styles != self._styles:
            self._styles = styles
            self._strips.clear()
        return super().render_lines(crop)

    def _cell_style(self, style: str | Style) -> Style:
        if isinstance(style, Style):
            return style
        parsed = self._cell_styles.get(style)
        if parsed is None:
            parsed = self._cell_styles[style] = Style.parse(style) if style else Style()
        return parsed

    def _strip(self, cells: list[Cell] | list[str], base: Style, over: Style | None) -> Strip:
        segments = []
        pad = " " * PADDING
        for cell, width in zip(cells, self.widths, strict=False):
            if isinstance(cell, Text):
                text, style = cell.plain, base + self._cell_style(cell.style)
            else:
                text, style = cell, base
            if over is not None:
                style += over
            segments.append(Segment(f"{pad}{text}{' ' * (width - _width(text))}{pad}", style))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        base, header, cursor = self._styles or (Style(), Style(), Style())
        scroll_x, width = round(self.scroll_x), self.size.width
        if y == 0:
            strip = self._strip(self.spec.headers, base + header, None)
            line_style = base + header
        else:
            index = round(self.scroll_y) + y - 1
            if not 0 <= index < len(self.order):
                return Strip.blank(width, base)
            key = self.order[index]
            line_style = base
            if index == self.cursor_row:
                strip = self._strip(self.rows_all[key], base, cursor)
                line_style = base + cursor
            else:
                cached = self._strips.get(key)
                if cached is None:
                    if len(self._strips) >= STRIP_CACHE:
                        self._strips.clear()
                    cached = self._strips[key] = self._strip(self.rows_all[key], base, None)
                strip = cached
        return strip.crop_extend(scroll_x, scroll_x + width, line_style)
