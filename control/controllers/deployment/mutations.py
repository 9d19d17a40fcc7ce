"""Objects as the controller last wrote them, until its informer catches up
(client-go's MutationCache): decisions never see the controller's own writes undone."""

from __future__ import annotations

from collections.abc import ItemsView

from control.controllers.objectmeta import Obj, meta
from control.objects.kinds import object_key


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


class MutationCache:
    def __init__(self) -> None:
        self._written: dict[str, Obj] = {}

    def wrote(self, obj: Obj) -> Obj:
        """Remember `obj`, as the API server returned it after a write."""
        self._written[object_key(obj)] = obj
        return obj

    def observed(self, key: str, new: Obj | None) -> None:
        """The informer's event for `key`: forget the write once the informer
        holds it (or a later version), or the object is gone."""
        written = self._written.get(key)
        if written is not None and (new is None or _rv(new) >= _rv(written)):
            del self._written[key]

    def newest(self, cached: Obj) -> Obj:
        """`cached`, or the later version of the same object written since."""
        written = self._written.get(object_key(cached))
        if (
            written is not None
            and meta(written).get("uid") == meta(cached).get("uid")
            and _rv(written) > _rv(cached)
        ):
            return written
        return cached

    def items(self) -> ItemsView[str, Obj]:
        return self._written.items()
