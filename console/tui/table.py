"""A DataTable that follows a watch cache by keyed diffs.

Changes are marked as they arrive and flushed at most every 100 ms, inside
`batch_update()`: rows are added, updated cell by cell and removed by key; the
table is never cleared and refilled.

DataTable is built for hundreds of rows: it removes rows one at a time in
O(rows) each, has no insert-at, measures every new cell through Rich, and
rebuilds per-line offset lists whenever anything changes. Every row here is one
line high with no label, so the overrides below add, remove and reorder rows in
one pass over its internal maps and measure plain text lengths (checked against
textual 8.x by tests/tui).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.geometry import Region, Size
from textual.widgets import DataTable
from textual.widgets._data_table import CellKey, Row, RowKey, RowRenderables

from console.tui.views import Cell, Context, Obj, ViewSpec
from control.objects.selectors import LabelSelector, SelectorError, parse_label_selector

FLUSH_SECONDS = 0.1


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _looks_like_selector(text: str) -> bool:
    return any(op in text for op in ("=", " in ", " notin ")) or text.startswith("!")


class ResourceTable(DataTable[Cell]):
    def __init__(self, spec: ViewSpec, ctx: Context, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.spec = spec
        self.ctx = ctx
        self.rows_all: dict[str, list[Cell]] = {}
        self.obj_rows: dict[str, list[str]] = {}
        self.row_obj: dict[str, str] = {}
        self.sort_of: dict[str, tuple[str, str]] = {}
        self.search_of: dict[str, str] = {}
        self.shown: set[str] = set()
        self.filter_text = ""
        self._selector: LabelSelector | None = None
        self._dirty: set[str] = set()
        self._dirty_all = False
        self._refilter = False
        self.flushes = 0
        self.last_flush_s = 0.0
        self._stale: set[str] = set()

    def on_mount(self) -> None:
        for header in self.spec.headers:
            self.add_column(header, key=header)
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
        self.flush()
        return None

    # -- reading -----------------------------------------------------------------

    def selected_key(self) -> str | None:
        """The object key (`ns/name` or `name`) of the row under the cursor."""
        if not self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return self.row_obj.get(str(row_key.value))

    def visible_rows(self) -> list[list[str]]:
        """The rows as shown, in order, as plain text (tests and snapshots)."""
        out = []
        for row in self.ordered_rows:
            out.append([_plain(c) for c in self._data[row.key].values()])
        return out

    # -- flushing ----------------------------------------------------------------

    def _visible(self, row_key: str) -> bool:
        if self._selector is not None:
            obj = self.ctx.of(self.spec.rt).get(self.row_obj.get(row_key, ""))
            labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            return self._selector.matches(labels)
        if self.filter_text:
            text = self.search_of.get(row_key)
            if text is None:
                cells = self.rows_all.get(row_key, [])
                text = self.search_of[row_key] = " ".join(_plain(c) for c in cells).lower()
            return self.filter_text.lower() in text
        return True

    def _render_obj(self, key: str, obj: Obj | None) -> tuple[set[str], set[str]]:
        """Recompute one object's rows; returns (changed row keys, removed row keys)."""
        old = self.obj_rows.pop(key, [])
        changed: set[str] = set()
        new_keys: list[str] = []
        if obj is not None:
            order = self.spec.sort(obj) if self.spec.sort else ""
            for row_key, cells in self.spec.rows(obj, self.ctx):
                new_keys.append(row_key)
                if self.rows_all.get(row_key) != cells:
                    changed.add(row_key)
                    self.rows_all[row_key] = cells
                    self.search_of.pop(row_key, None)
                self.row_obj[row_key] = key
                self.sort_of[row_key] = (order, row_key)
            self.obj_rows[key] = new_keys
        removed = set(old) - set(new_keys)
        for row_key in removed:
            self.rows_all.pop(row_key, None)
            self.row_obj.pop(row_key, None)
            self.sort_of.pop(row_key, None)
            self.search_of.pop(row_key, None)
        return changed, removed

    def flush(self) -> None:
        if not (self._dirty or self._dirty_all or self._refilter):
            return
        big = len(self._dirty) > 1000 or self._dirty_all or self._refilter
        if big:
            # Rendering thousands of rows allocates without making cycles: a
            # full collection over the cached objects each time is pure cost.
            gc.disable()
        try:
            self._flush()
        finally:
            if big:
                gc.enable()
                gc.freeze()

    def _flush(self) -> None:
        t0 = time.perf_counter()
        objects = self.ctx.of(self.spec.rt)
        if self._dirty_all:
            dirty = set(objects) | set(self.obj_rows)
        else:
            dirty = self._dirty
        self._dirty, self._dirty_all = set(), False
        changed: set[str] = set()
        removed: set[str] = set()
        for key in dirty:
            c, r = self._render_obj(key, objects.get(key))
            changed |= c
            removed |= r
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
        if not (to_remove or to_add or to_update):
            return
        cursor_key = self._cursor_row_key()
        with self.app.batch_update():
            if to_remove:
                self._remove_rows(to_remove)
            for row_key in to_update:
                self._update_row(row_key)
            if to_add:
                self._add_rows(to_add)
            if to_add or (self.spec.resort_on_update and to_update) or to_remove:
                self._reorder()
            if cursor_key is not None and cursor_key in self.shown:
                index = self.get_row_index(cursor_key)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False, scroll=False)
        self.flushes += 1
        self.last_flush_s = time.perf_counter() - t0

    def _cursor_row_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return str(key.value)

    def _update_row(self, row_key: str) -> None:
        rk = RowKey(row_key)
        old = self._data.get(rk)
        if old is None:
            return
        index = self._row_locations.get(rk)
        top = int(self.scroll_y)
        offscreen = index is None or not (top - 2 <= index <= top + self.size.height + 2)
        for column in self.ordered_columns:
            header = str(column.key.value)
            cell = self.rows_all[row_key][self.spec.headers.index(header)]
            before = old.get(column.key)
            if before == cell:
                continue
            wider = cell_len(_plain(cell)) > column.content_width
            if offscreen and not wider:
                # DataTable re-renders every visible cell after any update_cell;
                # a row out of view is written silently and repainted on scroll.
                old[column.key] = cell
                self._stale.add(row_key)
            else:
                self.update_cell(rk, column.key, cell, update_width=wider)

    def _add_rows(self, keys: list[str]) -> None:
        """`add_row` for many rows at once, without its per-row bookkeeping."""
        was_empty = self.row_count == 0
        column_keys = [c.key for c in self.ordered_columns]
        locations, data, rows, new = self._row_locations, self._data, self.rows, self._new_rows
        index = self.row_count
        for key in keys:
            row_key = RowKey(key)
            locations[row_key] = index
            data[row_key] = dict(zip(column_keys, self.rows_all[key], strict=False))
            rows[row_key] = Row(row_key, 1, None, False)
            new.add(row_key)
            index += 1
        self.shown.update(keys)
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if was_empty and self.row_count and self.show_cursor:
            self._highlight_cursor()
        self._update_count += 1
        self.check_idle()

    def _remove_rows(self, keys: set[str]) -> None:
        gone = {RowKey(k) for k in keys}
        locations = self._row_locations
        remaining = sorted((locations.get(k), k) for k in locations if k not in gone)
        self._row_locations = TwoWayDict({k: i for i, (_, k) in enumerate(remaining)})
        for k in gone:
            for column_key in self._data.get(k, {}):
                self._updated_cells.discard(CellKey(k, column_key))
            self.rows.pop(k, None)
            self._data.pop(k, None)
            self._new_rows.discard(k)
        self.shown -= keys
        self._stale -= keys
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        self._update_count += 1
        self.check_idle()
        self.refresh(layout=True)

    def _reorder(self) -> None:
        sort_of = self.sort_of
        ordered = sorted(self.shown, key=sort_of.__getitem__, reverse=self.spec.reverse)
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(ordered)})
        self._update_count += 1
        self.refresh()

    def refresh_ages(self) -> None:
        """Re-render the rows in view, so AGE and LAST SEEN keep counting."""
        if not self.row_count:
            return
        top = int(self.scroll_y)
        height = self.size.height or 50
        objects = self.ctx.of(self.spec.rt)
        keys = set()
        for index in range(max(0, top - 1), min(self.row_count, top + height)):
            row_key = self._row_locations.get_key(index)
            if row_key is not None:
                obj_key = self.row_obj.get(str(row_key.value))
                if obj_key in objects:
                    keys.add(obj_key)
        self.mark(keys)

    # -- DataTable internals, for one-line rows ----------------------------------

    def _repaint_stale(self, top: float | None = None) -> None:
        """Repaint when a silently updated row comes into view (its render may be cached)."""
        if not self._stale:
            return
        first = int(self.scroll_y if top is None else top)
        for index in range(max(0, first - 2), min(self.row_count, first + self.size.height + 2)):
            key = self._row_locations.get_key(index)
            if key is not None and str(key.value) in self._stale:
                self._stale.clear()
                self._update_count += 1
                return

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        self._repaint_stale(new_value)
        super().watch_scroll_y(old_value, new_value)

    def on_resize(self) -> None:
        if self._stale:
            self._stale.clear()
            self._update_count += 1

    def _compute_row_renderables(self, row_index: int) -> RowRenderables:
        # API strings are not Rich markup: "[x]" in a message stays as typed.
        if row_index < 0:
            return super()._compute_row_renderables(row_index)
        row_key = self._row_locations.get_key(row_index)
        data = self._data.get(row_key) if row_key is not None else None
        if data is None:
            return RowRenderables(None, [])
        cells: list[Any] = [
            Text(v, no_wrap=True, end="") if isinstance(v, str) else v for v in data.values()
        ]
        return RowRenderables(None, cells)

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        # Columns only grow: DataTable re-measures a whole column when a cell narrows.
        for row_key, column_key in updated_cells:
            column = self.columns.get(column_key)
            row = self._data.get(row_key)
            if column is None or row is None:
                continue
            width = cell_len(_plain(row.get(column_key) or ""))
            column.content_width = max(column.content_width, width)
        self._require_update_dimensions = True

    @property
    def _y_offsets(self) -> _Offsets:  # type: ignore[override]
        return _Offsets(self)

    @property
    def _total_row_height(self) -> int:
        return self.row_count

    def _update_dimensions(self, new_rows: Any) -> None:
        columns = self.ordered_columns
        widths = [c.content_width for c in columns]
        data = self._data
        for row_key in new_rows:
            row = data.get(row_key)
            if row is None:
                continue
            for i, column in enumerate(columns):
                value = row.get(column.key)
                width = cell_len(value.plain if isinstance(value, Text) else str(value or ""))
                if width > widths[i]:
                    widths[i] = width
        for column, width in zip(columns, widths, strict=True):
            column.content_width = width
        total = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(total + self._row_label_column_width, self.row_count + header)

    def _get_row_region(self, row_index: int) -> Region:
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(c.get_render_width(self) for c in self.columns.values())
        width += self._row_label_column_width
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(0, y, max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Any) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        row_index, column_index = coordinate
        columns = self.ordered_columns
        x = sum(c.get_render_width(self) for c in columns[:column_index])
        x += self._row_label_column_width
        y = row_index + (self.header_height if self.show_header else 0)
        return Region(x, y, columns[column_index].get_render_width(self), 1)


class _Offsets:
    """DataTable's per-line (row key, line in row) list, computed on demand."""

    def __init__(self, table: ResourceTable) -> None:
        self.table = table

    def __len__(self) -> int:
        return self.table.row_count

    def __getitem__(self, y: int) -> tuple[RowKey, int]:
        key = self.table._row_locations.get_key(y)
        if key is None:
            raise IndexError(y)
        return key, 0

    def clear(self) -> None:
        pass
