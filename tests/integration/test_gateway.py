"""Prediction on a real dask-gateway cluster against a store on S3 (moto), same bytes as locally.

The gateway is ``dask-gateway-server`` with its local backend, started by the test on
127.0.0.1 with the cluster options of deploy/helm/gateway_options.py (the ones the Helm values
deploy); the store and the product live on a moto S3 server on 127.0.0.1. Nothing else on the
network is touched.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

pytest.importorskip("torch")
pytest.importorskip("dask_gateway_server")

from ftcloud import inference  # noqa: E402
from ftcloud.cli import main  # noqa: E402
from ftcloud.cluster import connect  # noqa: E402
from ftcloud.io.stores import get_mapper, store_status  # noqa: E402
from ftcloud.testing import local_gateway  # noqa: E402

pytestmark = [pytest.mark.s3, pytest.mark.slow, pytest.mark.timeout(600)]

PLAN = {"time_chunk": 16, "batch_days": 8}


def _upload(local: str, url: str, so: dict) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**so)
    bucket = url[len("s3://") :].split("/")[0]
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    fs.put(local.rstrip("/") + "/", url[len("s3://") :], recursive=True)


def _ft(url: str, so: dict | None = None) -> np.ndarray:
    return zarr.open_group(get_mapper(url, so), mode="r")["ft"][:]


def test_prediction_on_gateway_workers_matches_local(tiny_store, tiny_model, s3, tmp_path, capsys):
    so = {"client_kwargs": {"endpoint_url": s3["endpoint_url"]}}
    store = "s3://ftcloud-gateway/store"
    _upload(tiny_store, store, so)
    assert store_status(store + "/predictors/era5land", so) == "complete"

    ref = tmp_path / "local.zarr"
    inference.predict(tiny_store, tiny_model, str(ref), plan=inference.InferencePlan(**PLAN), progress=False)
    ref_ft = _ft(str(ref))
    assert ref_ft.size and set(np.unique(ref_ft)) <= {0, 1, 255}

    with local_gateway(tmp_path / "gateway") as address:
        # 1) the library: two GPU workers (the `gpu` option gives them the dask resource GPU=1 and
        #    prediction tasks ask for it, so they can only run there), store and product on S3
        out = "s3://ftcloud-gateway/product_lib.zarr"
        plan = inference.InferencePlan(**PLAN, resources={"GPU": 1})
        with connect(
            "gateway",
            gateway_address=address,
            workers=2,
            gpu=True,
            worker_memory_gib=1,
            threads_per_worker=1,
            printer=lambda *_: None,
        ) as client:
            workers = client.scheduler_info()["workers"]
            assert len(workers) == 2 and all(w["resources"] == {"GPU": 1} for w in workers.values())
            res = inference.predict(
                store,
                tiny_model,
                out,
                plan=plan,
                storage_options=so,
                progress=False,
                client=client,
            )
            loaded = client.run(lambda: len(__import__("ftcloud.inference", fromlist=["x"])._MODEL_CACHE))
        assert res["regions"] > 0
        assert sum(loaded.values()) >= 2  # the models were loaded in the gateway's worker processes
        assert store_status(out, so) == "complete"
        np.testing.assert_array_equal(_ft(out, so), ref_ft)

        # 2) the command line: `ftcloud predict --cluster gateway`, product on S3
        out_cli = "s3://ftcloud-gateway/product_cli.zarr"
        rc = main(
            [
                "--quiet",
                "predict",
                "--store",
                store,
                "--model",
                tiny_model,
                "--out",
                out_cli,
                "--cluster",
                "gateway",
                "--gateway-address",
                address,
                "--workers",
                "1",
                "--time-chunk",
                "16",
                "--batch-days",
                "8",
                "--storage-option",
                f"endpoint_url={s3['endpoint_url']}",
            ]
        )
        assert rc == 0
        printed = capsys.readouterr().out
        assert "[cluster] dask-gateway cluster" in printed and "1 worker(s)" in printed
        np.testing.assert_array_equal(_ft(out_cli, so), ref_ft)
        attrs = zarr.open_group(get_mapper(out_cli, so), mode="r").attrs
        assert json.loads(attrs["inference_plan"])["time_chunk"] == 16


def test_gateway_without_an_address_is_a_clear_error(monkeypatch):
    import dask

    from ftcloud.errors import ValidationError

    with dask.config.set({"gateway.address": None}), pytest.raises(ValidationError, match="no gateway address"):
        with connect("gateway"):
            pass


def test_unknown_cluster_kind_is_refused():
    from ftcloud.errors import ValidationError

    with pytest.raises(ValidationError, match="expected 'local', 'gateway' or a scheduler address"):
        with connect("kubernetes"):
            pass
