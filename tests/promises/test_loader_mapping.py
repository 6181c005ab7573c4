"""Promise: the inputs of a time-series loader can be joined back from their opaque ids by the
data's owner (``--mapping``; the predict and probability-maps commands are tested in
``plugins/medical/tests/test_probability_maps.py``), while items carry opaque ids only."""

from __future__ import annotations

import json
from pathlib import Path


def test_time_series_inputs_are_named_by_file_and_series_as_given(tmp_path: Path) -> None:
    from ssl_domains.plugins import get_host

    path = tmp_path / "SMITH_unit_log.csv"
    path.write_text("unit,t,x\n" + "".join(f"{u},{t},{t * 0.5}\n" for u in ("MRN1", "MRN2") for t in range(20)))
    ds = get_host().registry.create("loader", "csv", path=str(path), id_column="unit", time_column="t", window=10)
    assert sorted(ds.inputs_by_id.values()) == [f"{path} [MRN1]", f"{path} [MRN2]"]
    assert set(ds.inputs_by_id) == set(ds.groups)  # keyed by the opaque ids the rows carry
    assert "MRN" not in json.dumps([ds[i]["meta"] for i in range(len(ds))])
