"""Training of one pass (AM or PM) on both targets at once, and its test-period report.

* Splits: the paper's (``ftcloud.study.SPLITS``); normalisation statistics come from the
  training days only.
* Loss: the sum of the two heads' cross-entropies. A target pixel missing on a given day
  (swath gap, no retrieval) is masked out of that head's loss; a pixel missing on (almost)
  every training day (open water, outside the product's domain) is taught as class
  "missing", so the heads keep the paper's three classes.
* Class weights: inverse frequency of thawed/frozen in the training targets (frozen pixels
  are rarer), normalised to mean 1; "missing" gets weight 1.
* Early stopping on the validation loss (patience epochs), best weights kept.
* A fixed seed gives the same weights on a re-run on the same machine and thread count.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ftcloud.errors import ValidationError
from ftcloud.core.metadata import FT_MISSING, ft_valid
from ftcloud.core.timeutil import season_of, split_mask
from ftcloud.model.data import TargetData, read_days
from ftcloud.study import SEASON_MONTHS, SEASONS, SPLITS, TRAINING

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    hidden: tuple[int, ...] = (12,)
    kernel: int = 3
    epochs: int = TRAINING["epochs"]
    patience: int = TRAINING["patience"]
    batch_days: int = 8
    patch: int = 32
    lr: float = 3e-3
    seed: int = 0
    permanent_missing: float = 0.98  # a pixel missing on this share of training days is "missing"
    threads: int | None = None
    splits: dict | None = None  # None = the paper's (ftcloud.study.SPLITS); tests use shorter ones
    device: str = "auto"  # "auto": the first CUDA GPU when torch sees one, else the CPU; or "cpu", "cuda:0"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def channel_stats(X, train: np.ndarray, block_days: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over the training days (NaN-aware); std never below 1e-6.

    Streams over blocks of ``block_days`` training days and tiles of at most
    :data:`EVAL_TILE` cells a side (memory: one block of one tile), with the
    two-pass formula per block merged by Chan et al.'s parallel update (exact to rounding).
    """
    days = np.flatnonzero(train)
    nch = X.shape[2]
    n = np.zeros(nch)
    mean = np.zeros(nch)
    m2 = np.zeros(nch)
    ny, nx = X.shape[-2:]
    parts = [
        (d, rr, cc)
        for k in range(0, len(days), block_days)
        for rr, cc, *_ in tile_windows(ny, nx, 0)
        for d in [days[k : k + block_days]]
    ]
    for d, rr, cc in parts:  # blocks of days x tiles of at most EVAL_TILE cells a side
        xb = read_days(X, d, rr, cc)
        x = np.asarray(xb).transpose(2, 0, 1, 3, 4).reshape(nch, -1).astype("f8")
        ok = np.isfinite(x)
        nb = ok.sum(axis=1).astype("f8")
        sb = np.where(ok, x, 0.0).sum(axis=1)
        mb = np.divide(sb, nb, out=np.zeros(nch), where=nb > 0)
        m2b = np.where(ok, (x - mb[:, None]) ** 2, 0.0).sum(axis=1)
        tot = n + nb
        delta = mb - mean
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(tot > 0, nb / np.where(tot > 0, tot, 1), 0.0)
        mean = mean + delta * frac
        m2 = m2 + m2b + delta**2 * n * frac
        n = tot
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.where(n > 0, m2 / np.where(n > 0, n, 1), np.nan))
        mean = np.where(n > 0, mean, np.nan)
    return mean.astype("f4"), np.maximum(np.nan_to_num(std, nan=0.0), 1e-6).astype("f4")


def head_classes(y: np.ndarray, permanent: np.ndarray) -> np.ndarray:
    """int64 class targets of a batch ``(t, y, x)``: 0 thawed, 1 frozen, 2 permanently missing
    (``permanent``, a (y, x) mask), -100 masked (a daily gap, left out of the loss)."""
    out = y.astype("i8")
    out[y == FT_MISSING] = -100
    out[:, permanent] = 2
    return out


def head_targets(y: np.ndarray, train: np.ndarray, share: float) -> np.ndarray:
    """:func:`head_classes` of a whole (small, in-memory) target, the permanent mask from ``train``."""
    permanent = (y == FT_MISSING)[train].mean(axis=0) >= share
    return head_classes(y, permanent)


def target_summary(targets, train: np.ndarray, share: float, block_days: int = 64):
    """Streamed over the training days: each target's permanently-missing mask (missing on at
    least ``share`` of them) and the thawed/frozen counts off that mask (for the class weights).
    Memory: ``block_days`` days of one target at a time."""
    idx = np.flatnonzero(train)
    out = []
    for t in targets:
        miss = None
        for k in range(0, len(idx), block_days):
            y = read_days(t, idx[k : k + block_days])
            m = (y == FT_MISSING).sum(axis=0, dtype=np.int64)
            miss = m if miss is None else miss + m
        permanent = miss / len(idx) >= share if miss is not None else np.zeros(t.shape[1:], bool)
        counts = np.zeros(2, np.int64)
        for k in range(0, len(idx), block_days):
            y = read_days(t, idx[k : k + block_days])[:, ~permanent]
            counts += [int((y == 0).sum()), int((y == 1).sum())]
        out.append((permanent, counts))
    return out


def class_weights(targets: list[np.ndarray] | None = None, counts: np.ndarray | None = None) -> np.ndarray:
    """Balanced weights of thawed/frozen (and 1 for "missing"), from class targets or from
    (thawed, frozen) ``counts``."""
    if counts is None:
        counts = np.array([sum(int((t == c).sum()) for t in targets) for c in (0, 1)], "f8")
    counts = np.maximum(np.asarray(counts, "f8"), 1)
    w = counts.sum() / (2 * counts)
    return np.array([w[0], w[1], 1.0], "f4")


#: the test-period evaluation and the validation loss run the network on tiles of at most this
#: many cells a side (plus the receptive-field halo, read from the window itself): memory is
#: bounded by the tile and the batch, not by the region; a window that fits one tile (the demo)
#: runs whole, exactly as before
EVAL_TILE = 256


def tile_windows(ny: int, nx: int, halo: int, tile: int | None = None):
    """(read rows, read cols, core rows within the read, core cols within the read, core rows,
    core cols) of tiles covering a (ny, nx) window; the read extends ``halo`` cells into the
    window (not beyond it), so each core's outputs equal those of the whole window."""
    tile = int(tile or EVAL_TILE)
    for r0 in range(0, ny, tile):
        r1 = min(ny, r0 + tile)
        ra, rb = max(0, r0 - halo), min(ny, r1 + halo)
        for c0 in range(0, nx, tile):
            c1 = min(nx, c0 + tile)
            ca, cb = max(0, c0 - halo), min(nx, c1 + halo)
            yield (
                slice(ra, rb),
                slice(ca, cb),
                slice(r0 - ra, r1 - ra),
                slice(c0 - ca, c1 - ca),
                slice(r0, r1),
                slice(c0, c1),
            )


@dataclass
class TrainResult:
    model: object  # FusedFTModel
    config: TrainConfig
    mean: np.ndarray
    std: np.ndarray
    history: list = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


#: month names of the seasons the test-period report scores besides "all days" (SPEC section 5)
SEASON_SPANS = {"frozen": "Dec-Jan", "transition": "Feb-Apr, Oct-Nov", "thawed": "May-Sep"}


def check_splits(times, splits: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The train, val and test day masks of ``times``, checked before any training.

    A split with no day in the store's target period is refused (one line). A test split that
    lacks a season the report scores (frozen Dec-Jan, transition, thawed) is still meaningful
    to train on: one warning line names the split, its days in the store and the season, and
    the report prints that season as n/a.
    """
    times = pd.DatetimeIndex(times)
    masks = tuple(split_mask(times, name, splits) for name in ("train", "val", "test"))
    if not all(m.any() for m in masks):
        raise ValidationError(
            f"the store's target period {times[0]:%Y-%m-%d}..{times[-1]:%Y-%m-%d} does not cover the "
            f"training, validation and test splits {splits or 'of the paper (2015-04-01 .. 2020-12-31)'}"
            " (own periods: ftcloud train --splits)"
        )
    test = times[masks[2]]
    present = set(season_of(test))
    missing = [s for s in SEASON_MONTHS if s not in present]
    if missing:
        spans = ", ".join(f"{a}..{b}" for a, b in (splits or SPLITS)["test"])
        what = ", ".join(f"{s} ({SEASON_SPANS.get(s, s)})" for s in missing)
        log.warning(
            "test split %s holds %d days of the store (%s..%s) and no %s day: scored n/a in the report",
            spans,
            len(test),
            f"{test[0]:%Y-%m-%d}",
            f"{test[-1]:%Y-%m-%d}",
            what,
        )
    return masks


def train_pass(data: TargetData, config: TrainConfig | None = None, progress: bool = True) -> TrainResult:
    """Train the dual-head ConvLSTM for one pass on ``data`` (from ``load_target_period``)."""
    config = config or TrainConfig()
    import torch
    from torch import nn
    from tqdm.auto import tqdm

    from ftcloud.model.convlstm import DualHeadConvLSTM, FusedFTModel, ModelConfig

    t0 = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train, val, _ = check_splits(data.times, config.splits)
    mean, std = channel_stats(data.X, train)
    (perm_s, cnt_s), (perm_e, cnt_e) = target_summary([data.smap, data.esdr], train, config.permanent_missing)
    w = torch.tensor(class_weights(counts=cnt_s + cnt_e))
    mcfg = ModelConfig(hidden=tuple(config.hidden), kernel=config.kernel)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
    )
    net = DualHeadConvLSTM(mcfg).to(device)
    mean_t, std_t = torch.tensor(mean), torch.tensor(std)
    w = w.to(device)
    mean_d, std_d = mean_t.to(device), std_t.to(device)
    loss_fn = nn.CrossEntropyLoss(weight=w, ignore_index=-100)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)

    def batch(idx, rows=slice(None), cols=slice(None)):
        x = torch.from_numpy(np.ascontiguousarray(read_days(data.X, idx, rows, cols))).to(device)
        x = torch.nan_to_num((x - mean_d.reshape(1, 1, -1, 1, 1)) / std_d.reshape(1, 1, -1, 1, 1))
        a = head_classes(read_days(data.smap, idx, rows, cols), perm_s[rows, cols])
        b = head_classes(read_days(data.esdr, idx, rows, cols), perm_e[rows, cols])
        return x, torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)

    ny, nx = data.X.shape[-2:]
    tiles = list(tile_windows(ny, nx, mcfg.halo))
    sum_fn = nn.CrossEntropyLoss(weight=w, ignore_index=-100, reduction="sum")

    def _weight_sum(t):
        ok = t != -100
        return float(w[t[ok]].sum())

    def val_loss():
        net.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            idx_all = np.flatnonzero(val)
            for k in range(0, len(idx_all), config.batch_days):
                days = idx_all[k : k + config.batch_days]
                if len(tiles) == 1:
                    x, a, b = batch(days)
                    la, lb = net(x)
                    total += float(loss_fn(la, a) + loss_fn(lb, b)) * len(x)
                else:  # the weighted mean of each head over the tiles' cores (= the whole window's)
                    sa = sb = wa = wb = 0.0
                    for rr, cc, ry, cx, _, _ in tiles:
                        x, a, b = batch(days, rr, cc)
                        la, lb = net(x)
                        la, lb, a, b = la[..., ry, cx], lb[..., ry, cx], a[..., ry, cx], b[..., ry, cx]
                        sa += float(sum_fn(la, a))
                        sb += float(sum_fn(lb, b))
                        wa += _weight_sum(a)
                        wb += _weight_sum(b)
                    # an empty head is NaN, as the whole-window mean over no pixel is
                    total += ((sa / wa if wa > 0 else float("nan")) + (sb / wb if wb > 0 else float("nan"))) * len(days)
                n += len(days)
        net.train()
        return total / max(n, 1)

    ph, pw = min(config.patch, ny), min(config.patch, nx)
    train_idx = np.flatnonzero(train)
    best, best_state, best_epoch, bad = np.inf, None, 0, 0
    history = []
    bar = tqdm(range(1, config.epochs + 1), desc="train", unit="epoch", disable=not progress)
    for epoch in bar:
        order = rng.permutation(train_idx)
        run = 0.0
        for k in range(0, len(order), config.batch_days):
            r0 = int(rng.integers(0, ny - ph + 1))
            c0 = int(rng.integers(0, nx - pw + 1))
            x, a, b = batch(np.sort(order[k : k + config.batch_days]), slice(r0, r0 + ph), slice(c0, c0 + pw))
            la, lb = net(x)
            loss = loss_fn(la, a) + loss_fn(lb, b)
            opt.zero_grad()
            loss.backward()
            opt.step()
            run += float(loss.detach()) * len(x)
        tl = run / len(order)
        vl = val_loss()
        history.append({"epoch": epoch, "train_loss": round(tl, 5), "val_loss": round(vl, 5)})
        bar.set_postfix(train_loss=f"{tl:.4f}", val_loss=f"{vl:.4f}")
        log.info("epoch %d train_loss %.4f val_loss %.4f", epoch, tl, vl)
        if vl < best - 1e-5:
            best, best_state, best_epoch, bad = vl, copy.deepcopy(net.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= config.patience:
                break
    if best_state is None:
        raise ValidationError(
            "training: the validation loss was undefined in every epoch (no valid target pixel on the "
            "validation days); choose validation periods with retrievals (--splits)"
        )
    net.load_state_dict(best_state)
    net = net.to("cpu")  # exported and evaluated on the CPU (inference picks its own device)
    net.eval()
    model = FusedFTModel(net, mean_t, std_t).eval()
    return TrainResult(model, config, mean, std, history, best_epoch, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------
# Evaluation


def predict_heads(model, X: np.ndarray, batch_days: int = TRAINING["predict_batch_days"]) -> dict[str, np.ndarray]:
    """Per-head classes and the fused FT codes for every day of X (uint8, 0/1/255)."""
    import torch

    from ftcloud.model.convlstm import CLASS_MISSING

    out = {"smap_head": [], "esdr_head": [], "fused": []}
    with torch.no_grad():
        for k in range(0, len(X), batch_days):
            x = torch.from_numpy(np.ascontiguousarray(X[k : k + batch_days]))
            ft, _ = model(x)
            z = torch.nan_to_num((x - model.mean) / model.std)
            la, lb = model.net(z)
            for name, logits in (("smap_head", la), ("esdr_head", lb)):
                c = logits.argmax(dim=1)
                c = torch.where(c == CLASS_MISSING, torch.full_like(c, 255), c).to(torch.uint8)
                out[name].append(c.numpy())
            out["fused"].append(ft.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def accuracy(product: np.ndarray, reference: np.ndarray) -> dict:
    """CA_F, CA_T, CA_O (SPEC section 5) and the counts, over pixels valid in both."""
    return _accuracy_from_counts(_confusion(product, reference))


#: the products scored side by side in a model card (SPEC section 10 / issue 9): the fused
#: output, each head alone, and the naive baselines on the same pixel-days
CARD_PRODUCTS = ("fused", "smap_head", "esdr_head", "ERA5_FT", "SMAP_E_FT", "ESDR_FT")
KELVIN_0C = np.float32(273.15)


def era5_ft_from_inputs(X: np.ndarray) -> np.ndarray:
    """ERA5_FT from the model inputs: ``stl1`` at the last step (05 h AM / 17 h PM local solar)
    strictly below 273.15 K in the inputs' own float32 precision (1 frozen, 0 thawed, 255 missing)."""
    stl1 = X[:, -1, 0]
    return np.where(np.isfinite(stl1), (stl1 < KELVIN_0C).astype("u1"), FT_MISSING).astype("u1")


def evaluate_test_period(model, data: TargetData, splits: dict | None = None, n_boot: int = 1000) -> dict:
    """Test-period accuracy of each head, the fusion and the baselines, against each target
    and (on the twin) the truth, overall and per season.

    ``vs_<ref>``: each product on the pixel-days where it and the reference are valid.
    ``common_vs_<ref>``: every product of :data:`CARD_PRODUCTS` (the reference itself left out)
    on ONE common mask per season, with 95 % block-bootstrap intervals (10-day blocks of the whole
    window, :func:`ftcloud.science.compare.time_blocks`) and the
    fused product's gain over each baseline (:func:`ftcloud.science.compare.compare`).
    """
    from ftcloud.science.compare import CommonCounts, time_blocks

    test = split_mask(data.times, "test", splits)
    tdays = np.flatnonzero(test)
    times = data.times[test]
    seasons = season_of(times)
    shape_yx = tuple(data.X.shape[-2:])
    halo = int(model.net.config.halo)
    _, nb = time_blocks(times)
    day_block = time_blocks(times)[0]  # (t,) block id of each test day
    report = {"test_days": int(test.sum()), "period": [str(times[0].date()), str(times[-1].date())]}
    ref_names = ["SMAP_E_FT", "ESDR_FT"] + (["truth"] if data.truth is not None else [])
    season_names = [s for s in SEASONS if s == "all" or (seasons == s).any()]
    order = ("smap_head", "esdr_head", "fused", "ERA5_FT", "SMAP_E_FT", "ESDR_FT")  # the cards' row order
    own = {r: {p: {s: np.zeros(4, np.int64) for s in season_names} for p in order if p != r} for r in ref_names}
    common = {
        r: {
            s: CommonCounts([p for p in order if p != r], nb, target="fused", reference_name=r, n_boot=n_boot, seed=0)
            for s in season_names
        }
        for r in ref_names
    }
    # streamed over the test period, 32 days at a time: memory is one batch of inputs and the
    # per-block confusion counts, whatever the period or the region
    for k in range(0, len(tdays), 32):
        pos = np.arange(k, min(k + 32, len(tdays)))
        days = tdays[pos]
        products = {
            name: np.empty((len(days), *shape_yx), "u1") for name in ("smap_head", "esdr_head", "fused", "ERA5_FT")
        }
        for rr, cc, ry, cx, core_r, core_c in tile_windows(*shape_yx, halo):
            Xb = read_days(data.X, days, rr, cc)
            heads = {**predict_heads(model, Xb), "ERA5_FT": era5_ft_from_inputs(Xb)}
            for name, v in heads.items():
                products[name][:, core_r, core_c] = v[:, ry, cx]
            del Xb
        products["SMAP_E_FT"] = read_days(data.smap, days)
        products["ESDR_FT"] = read_days(data.esdr, days)
        refs = {"SMAP_E_FT": products["SMAP_E_FT"], "ESDR_FT": products["ESDR_FT"]}
        if data.truth is not None:
            refs["truth"] = read_days(data.truth, days)
        blocks = np.broadcast_to(day_block[pos].reshape(-1, 1, 1), (len(pos), *shape_yx))
        for r, ref in refs.items():
            for s in season_names:
                m = np.ones(len(pos), bool) if s == "all" else seasons[pos] == s
                if not m.any():
                    continue
                mm = np.broadcast_to(m[:, None, None], blocks.shape)
                prods = {p: products[p] for p in order if p != r}
                common[r][s].add(prods, ref, blocks, mm)
                for p, v in prods.items():
                    own[r][p][s] += _confusion(v[m], ref[m])
    for r in ref_names:
        report[f"vs_{r}"] = {
            p: {s: _accuracy_from_counts(c) for s, c in by_season.items()} for p, by_season in own[r].items()
        }
        report[f"common_vs_{r}"] = {s: common[r][s].result().to_dict() for s in season_names}
    return report


def _confusion(product: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """N[F/F], N[T/F], N[T/T], N[F/T] over the pixel-days valid in both."""
    ok = ft_valid(product) & ft_valid(reference)
    p, r = product[ok], reference[ok]
    return np.array(
        [
            int(((p == 1) & (r == 1)).sum()),
            int(((p == 0) & (r == 1)).sum()),
            int(((p == 0) & (r == 0)).sum()),
            int(((p == 1) & (r == 0)).sum()),
        ],
        np.int64,
    )


def _accuracy_from_counts(c: np.ndarray) -> dict:
    ff, tf, tt, ft = (int(v) for v in c)
    n = ff + tf + tt + ft
    return {
        "CA_F": ff / (ff + tf) if ff + tf else None,
        "CA_T": tt / (tt + ft) if tt + ft else None,
        "CA_O": (ff + tt) / n if n else None,
        "n": n,
        "N_FF": ff,
        "N_TF": tf,
        "N_TT": tt,
        "N_FT": ft,
    }
