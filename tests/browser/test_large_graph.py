"""A lineage of more than 300 assets (laid out without dagre): each group is a box around its
own assets only, the boxes do not overlap, and their names stay readable zoomed out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, screenshot, serving

GROUPS = 4
PER_GROUP = 100

# Each group a chain with a branch every third asset; the first asset of each group after
# the first reads the last asset of the group before it.
DEFS = f"""
from dagloom import Definitions, asset


def make(group, i):
    deps = []
    if i > 0:
        deps.append(f"{{group}}_{{i - 1 if i % 3 else i // 3}}")
    elif group > "g0":
        deps.append(f"g{{int(group[1:]) - 1}}_{PER_GROUP - 1}")

    @asset(name=f"{{group}}_{{i}}", group_name=group, deps=deps)
    def node():
        return i

    return node


defs = Definitions(
    assets=[make(f"g{{g}}", i) for g in range({GROUPS}) for i in range({PER_GROUP})]
)
"""

BOXES = """() => {
  const box = (e) => { const r = e.getBoundingClientRect();
    return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom}; };
  const groups = {};
  for (const g of document.querySelectorAll('.group-box')) {
    groups[g.dataset.group] = { box: box(g.querySelector('rect')),
      label: g.querySelector('text').getBoundingClientRect().height };
  }
  const nodes = [...document.querySelectorAll('[data-node]')].map(
    (n) => ({ group: n.dataset.group, box: box(n.querySelector('rect')) }));
  return { groups, nodes };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path: Path = tmp_path_factory.mktemp("large") / "large_defs.py"
    path.write_text(DEFS)
    with serving({"large": path}) as running:
        yield running


def _inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x0"] >= outer["x0"] - 0.5
        and inner["y0"] >= outer["y0"] - 0.5
        and inner["x1"] <= outer["x1"] + 0.5
        and inner["y1"] <= outer["y1"] + 0.5
    )


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


def test_groups_are_boxes_around_their_own_assets(page: Any) -> None:
    page.goto("/assets")
    page.wait_for_selector("svg.graph-svg[data-drawn=true]")
    page.wait_for_selector(f"text={GROUPS * PER_GROUP} assets")
    drawn = page.evaluate(BOXES)
    groups = drawn["groups"]
    assert sorted(groups) == [f"g{g}" for g in range(GROUPS)]
    assert len(drawn["nodes"]) > 0
    for node in drawn["nodes"]:
        assert _inside(node["box"], groups[node["group"]]["box"]), node
    names = sorted(groups)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not _overlap(groups[a]["box"], groups[b]["box"]), (a, b)
    # Zoomed out to fit 400 assets, a group's name is still drawn at a readable size.
    assert all(g["label"] >= 10 for g in groups.values()), groups
    screenshot(page, "large-graph")
