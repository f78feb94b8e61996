"""`ftcloud run` end to end on a small twin: every stage, the report, resume by content hash.

The packaged default (demo region, 41 years) takes ~8 minutes on two cores and is measured by
the newcomer check and the closing notes; here the same command runs on the ``tiny`` region,
2014-2020, with a small model (about a minute and a half).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import zarr

pytest.importorskip("torch")

from ftcloud.cli import main  # noqa: E402
from ftcloud.io.stores import mark_incomplete  # noqa: E402

from conftest import RUN_CONFIG as CONFIG  # noqa: E402  (first_run: the session fixture in conftest.py)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

STAGES = ("synth", "ingest", "train", "predict", "validate", "trends")


def _summary(out):
    return json.loads((out / "run-summary.json").read_text())


def test_every_stage_runs_and_prints_what_it_does(first_run):
    assert first_run["rc"] == 0
    s = _summary(first_run["out"])
    assert [k for k in s["stages"]] == [*STAGES, "report"]
    assert not any(v["skipped"] for v in s["stages"].values())
    text = first_run["stdout"]
    for name in STAGES:
        assert f"[{name}] running ..." in text and re.search(rf"\[{name}\] done in \d+\.\d s", text)
    # the LocalCluster started for prediction, with its dashboard link
    assert re.search(r"\[cluster\] LocalCluster: 1 worker\(s\) x \d+ thread\(s\); dashboard: http://\S+/status", text)
    # the final summary: where things are and the headline numbers
    assert "ftcloud run finished:" in text and "report" in text and "fused" in text and "SMAP_E_FT" in text
    assert (
        zarr.open_group(str(first_run["out"] / "product" / "ft_convlstm.zarr"), mode="r")["ft"].shape[1] == 7 * 365 + 2
    )


def test_report_is_self_contained_with_the_papers_findings(first_run):
    rep = first_run["out"] / "report"
    page = (rep / "report.html").read_text()
    # offline: every image is a data URI, nothing is fetched from elsewhere
    imgs = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(imgs) >= 9 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert not re.search(r"(src|href)=['\"]https?://", page)
    for heading in (
        "Findings beside the paper",
        "Fusion vs SMAP_E_FT by season",
        "Categorical triple collocation",
        "Table 2",
        "Provenance",
    ):
        assert heading in page
    find = pd.read_csv(rep / "findings.csv")
    gains = find[find["finding"].str.startswith("fused - SMAP_E_FT overall")]
    assert list(gains["paper"]) == [2.44, 2.44] and gains.iloc[:, 3].notna().all()
    # the report's numbers are the model cards' numbers (fused minus SMAP_E_FT, against the truth,
    # on the card's common mask), recomputed here from the card's confusion-free table rows
    fus = pd.read_csv(rep / "fusion_by_season.csv")
    for p in ("AM", "PM"):
        card = json.loads((first_run["out"] / "models" / f"ft_convlstm_{p}.json").read_text())
        tab = {r["product"]: r for r in card["metrics"]["common_vs_truth"]["frozen"]["table"]}
        assert tab["fused"]["n"] == tab["SMAP_E_FT"]["n"]  # one mask
        want = 100 * (tab["fused"]["CA_O"] - tab["SMAP_E_FT"]["CA_O"])
        got = fus[(fus["pass"] == p) & (fus["season"] == "frozen") & (fus["product"] == "ConvLSTM_FT (fused)")][
            "gain_vs_SMAP_E_FT"
        ]
        assert float(got.iloc[0]) == pytest.approx(want, abs=1e-9)
    # the report opens with the gains over every baseline, each with an interval and a sentence
    gob = pd.read_csv(rep / "gains_over_baselines.csv")
    assert {"ERA5_FT (stl1 < 273.15 K)", "SMAP head alone", "ESDR head alone"} <= set(gob["baseline"])
    assert gob["in words"].str.contains("more accurate|LESS accurate|not distinguishable|no verdict").all()
    assert page.index("What the fused product gains over each baseline") < page.index("Findings beside the paper")
    prov = json.loads((rep / "provenance.json").read_text())
    card = json.loads((first_run["out"] / "models" / "ft_convlstm_AM.json").read_text())
    assert prov["models_sha256"]["AM"]["export"] == card["files"]["export"]["sha256"]
    assert prov["config"]["region"] == "tiny" and "torch" in prov["software"]
    md = (rep / "report.md").read_text()
    assert "## Table 2" in md and "| group | name |" in md


def test_rerun_skips_every_stage_and_an_interrupted_prediction_finishes(first_run, tmp_path, capsys):
    # on a copy: this test changes the product, and the clean run is shared (test_kill compares with it)
    import shutil

    root = tmp_path / "run"
    shutil.copytree(first_run["root"], root, symlinks=True)
    out, cfg = root / "out", str(root / "cfg.yaml")
    product = out / "product" / "ft_convlstm.zarr"
    before = zarr.open_group(str(product), mode="r")["ft"][:]
    assert main(["--quiet", "run", "--config", cfg, "--out", str(out)]) == 0
    s = _summary(out)
    assert all(s["stages"][k]["skipped"] for k in STAGES)
    # a run killed during prediction leaves the product incomplete: the next run redoes
    # prediction only (its inputs are unchanged) and ends with the same bytes
    mark_incomplete(str(product))
    assert main(["--quiet", "run", "--config", cfg, "--out", str(out)]) == 0
    s = _summary(out)
    assert [k for k in STAGES if not s["stages"][k]["skipped"]] == ["predict"]
    assert (zarr.open_group(str(product), mode="r")["ft"][:] == before).all()
    # a changed setting re-runs what depends on it, and nothing upstream
    (root / "cfg2.yaml").write_text(CONFIG + "predict: {batch_days: 8, time_chunk: 16}\n")
    assert main(["--quiet", "run", "--config", str(root / "cfg2.yaml"), "--out", str(out)]) == 0
    s = _summary(out)
    assert [k for k in STAGES if not s["stages"][k]["skipped"]] == ["predict", "validate", "trends"]
    assert (zarr.open_group(str(product), mode="r")["ft"][:] == before).all()  # chunking never changes the answer


@pytest.mark.s3
def test_run_with_the_store_on_s3_gives_the_local_results(first_run, s3, tmp_path):
    """`ftcloud run --store s3://...`: store and product on (moto) S3, credentials from the
    environment only; the product and the findings equal the local run's."""
    import s3fs

    so = {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}}
    s3fs.S3FileSystem(**so).mkdir("ftcloud-run")
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    out = tmp_path / "out"
    rc = main(
        [
            "--quiet",
            "run",
            "--config",
            str(tmp_path / "cfg.yaml"),
            "--out",
            str(out),
            "--store",
            "s3://ftcloud-run/store",
            "--storage-option",
            f"endpoint_url={s3['endpoint_url']}",
        ]
    )
    assert rc == 0
    s = _summary(out)
    assert s["store"] == "s3://ftcloud-run/store" and s["product"] == "s3://ftcloud-run/store/products/ft_convlstm.zarr"
    from ftcloud.io.stores import get_mapper, store_status

    assert store_status(s["product"], so) == "complete"
    assert not (out / "store").exists() and not (out / "product").exists()  # nothing landed locally
    remote = zarr.open_group(get_mapper(s["product"], so), mode="r")["ft"][:]
    local = zarr.open_group(str(first_run["out"] / "product" / "ft_convlstm.zarr"), mode="r")["ft"][:]
    assert (remote == local).all()
    a = pd.read_csv(out / "report" / "findings.csv")
    b = pd.read_csv(first_run["out"] / "report" / "findings.csv")
    pd.testing.assert_frame_equal(a, b)
    # nothing credential-like was written into the run's records
    for f in ("run-summary.json", "ftcloud-stages.json", "report/provenance.json"):
        text = (out / f).read_text().lower()
        assert "testing" not in text and "secret" not in text


def test_a_test_window_without_a_frozen_season_runs_and_reports_n_a(tmp_path):
    """2015-04-01..2018-06-30 with the default splits: the test split holds no Dec-Jan day. The
    run warns up front in one line and finishes; undefined scores and intervals read n/a (it
    used to train, export, then crash writing the report with a TypeError)."""
    import subprocess
    import sys

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        'region: tiny\nstart: "2015-04-01"\nend: "2018-06-30"\ntargets_start: "2015-04-01"\n'
        "train: {hidden: [4], epochs: 1, patience: 1}\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "ftcloud.cli", "-q", "run", "--config", str(cfg), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "no frozen (Dec-Jan) day: scored n/a in the report" in p.stderr
    gains = pd.read_csv(tmp_path / "out" / "report" / "gains_over_baselines.csv", keep_default_na=False)
    assert (gains["95 % interval"] == "n/a").any() and not gains["95 % interval"].str.contains("nan").any()
    assert "n/a" in (tmp_path / "out" / "models" / "report_AM.md").read_text()


def test_report_of_a_run_folder_uses_the_config_the_run_recorded(first_run, tmp_path):
    """`ftcloud report --out DIR` without --config heads the report with the run's own region and
    period (OUT/run-config.json), not the packaged defaults (it said "demo, 1980-2020" before)."""
    import json
    import shutil

    from ftcloud.cli import main

    out = tmp_path / "copy"
    shutil.copytree(first_run["out"], out)  # the shared clean run stays as it is
    cfg = json.loads((out / "run-config.json").read_text())
    assert cfg["region"] == "tiny" and cfg["start"] != "1980-01-01"
    shutil.rmtree(out / "report")
    assert main(["-q", "report", "--out", str(out)]) == 0
    page = (out / "report" / "report.html").read_text()
    assert f"region <b>{cfg['region']}</b>, {cfg['start']} .. {cfg['end']}" in page
    assert "1980" not in page.split("Findings beside the paper")[1].split("</p>")[0]


def test_the_runs_product_follows_the_cf_and_acdd_rules(first_run):
    import xarray as xr

    from ftcloud.testing import cf_problems

    ds = xr.open_zarr(first_run["out"] / "product" / "ft_convlstm.zarr")
    assert not cf_problems(ds, "product"), cf_problems(ds, "product")
    assert "10.3390/rs16060950" in ds.attrs["references"] and ds["pass"].attrs["long_name"].startswith("satellite")
    assert ds["ft"].attrs["flag_meanings"].split() == ["thawed", "frozen"]
    import zarr

    raw = zarr.open_group(str(first_run["out"] / "product" / "ft_convlstm.zarr"), mode="r")["ft"][:]
    assert (raw == 255).any()  # the sea and the days before the first predictor
    assert ds["ft"].encoding["_FillValue"] == 255
    assert float(ds["ft"].mean()) == pytest.approx(raw[raw != 255].mean(), rel=1e-6)  # 255 masked, not averaged


FAMILIES_CONFIG = """\
region: tiny
start: "2016-01-01"
end: "2017-06-30"
targets_start: "2016-01-01"
synth: {tb: true}
train:
  hidden: [4]
  epochs: 1
  patience: 1
  splits:
    train: [["2016-01-01", "2016-09-30"]]
    val: [["2016-10-01", "2016-12-31"]]
    test: [["2017-01-01", "2017-06-30"]]
"""


def test_a_run_with_brightness_temperatures_scores_every_family_side_by_side(tmp_path):
    """synth.tb on: the twin writes TB, the ingest takes them, `ftcloud run` fits every family (retrieve:
    auto), validates them beside the ConvLSTM on the run's own test split and puts them in the report; a
    rerun skips them."""
    import contextlib
    import io

    import pandas as pd

    from ftcloud.cli import main

    (tmp_path / "cfg.yaml").write_text(FAMILIES_CONFIG)
    out = tmp_path / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["-q", "run", "--config", str(tmp_path / "cfg.yaml"), "--out", str(out)])
    text = buf.getvalue()
    assert rc == 0, text
    for m in ("npr", "msta", "dia", "dfa", "ert", "autoencoder"):
        assert f"[retrieve {m}] done" in text
        assert (out / "product" / f"ft_{m}.zarr" / ".zmetadata").exists()
    fam = pd.read_csv(out / "report" / "families.csv")
    assert {"ConvLSTM_FT", "NPR_FT", "MSTA_FT", "DIA_FT", "DFA_FT", "ERT_FT", "AE_FT"} <= set(fam["product"])
    ctc = pd.read_csv(
        out / "validation" / "ctc_summary.csv"
    )  # each family in a triplet with ERA5_FT and Meteorology_FT
    assert {"NPR_FT", "DIA_FT", "ERT_FT", "AE_FT"} <= set(ctc["product"])
    assert (fam.groupby(["reference", "pass", "season"])["n"].nunique() == 1).all()  # one common mask
    page = (out / "report" / "report.html").read_text()
    assert "The retrieval families side by side" in page and "Where each product errs against the truth" in page
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["-q", "run", "--config", str(tmp_path / "cfg.yaml"), "--out", str(out)]) == 0
    assert "[retrieve ert] unchanged since last run, skipped" in buf.getvalue()


def test_the_readme_picture_is_drawn_legibly_from_a_run(first_run, tmp_path):
    """docs/make_readme_figure.py on a finished run: 1,200 px wide (a README column shows it unscaled) and taller
    than 900 px (the three figures at that width, none shrunk to a thumbnail)."""
    import subprocess
    import sys

    from matplotlib import image

    out = tmp_path / "readme.png"
    script = Path(__file__).resolve().parents[2] / "docs" / "make_readme_figure.py"
    subprocess.run([sys.executable, str(script), str(first_run["out"]), str(out)], check=True, capture_output=True)
    img = image.imread(out)
    assert img.shape[1] == 1200 and img.shape[0] > 900
