"""Deterministic random building blocks and the twin's static fields.

Everything here is a pure function of (lon, lat) [+ seed], so the 0.1 degree ERA5-Land
points, the 9 km and 25 km EASE2 cells and the station points all see one consistent
world. Randomness comes from two sources only:

* a counter-based hash (:func:`hash_uniform`) keyed by (seed, stream, integer keys), used
  for lattice features (massifs, lakes, micro-climate) and for per-cell / per-day noise
  keyed by *global* grid indices (so a pixel's noise does not depend on the region window);
* ``numpy.random.default_rng([seed, stream])`` for the few global parameter draws
  (Fourier mode wave vectors, AR(1) coefficient series).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

# stream ids (never reuse one for two purposes)
S_MASSIF, S_LAKE, S_LOCAL, S_VALLEY, S_DETAIL, S_PRECIP_MOD = 1, 2, 3, 4, 5, 6
S_WEATHER_L, S_WEATHER_M, S_SLOW, S_PLAT, S_PLAT_S, S_STORM = 10, 11, 12, 13, 14, 15
S_ERA_NOISE, S_ERA_HOUR, S_ERA_MELT, S_IMERG, S_IMERG_DET, S_ERA_FIELD = 20, 21, 22, 23, 24, 25
S_SMAP_ERR, S_SMAP_PIXYEAR, S_SMAP_DAY, S_ESDR_ERR, S_ESDR_DAY = 30, 31, 32, 33, 34
S_STATIONS, S_ST_NOISE, S_ST_GAP, S_CMA, S_CMA_NOISE, S_ST_OUTAGE = 40, 41, 42, 43, 44, 45
S_LANDCOVER = 50
S_ERA_WL, S_ERA_WM, S_ERA_LEAD = 51, 52, 53


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def hash_uint(seed: int, stream: int, *keys) -> np.ndarray:
    """splitmix64 hash of (seed, stream, keys...), broadcast over the key arrays."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray([seed], dtype=np.int64).astype(np.uint64) * _GOLDEN + np.uint64(stream))
        for k in keys:
            k = np.asarray(k, dtype=np.int64).astype(np.uint64)
            h = _mix(h ^ (k + _GOLDEN + (h << np.uint64(6)) + (h >> np.uint64(2))))
    if not keys:
        return h
    shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
    return h.reshape(shape) if h.size == int(np.prod(shape)) else np.broadcast_to(h, shape)


def hash_uniform(seed: int, stream: int, *keys) -> np.ndarray:
    """Uniform(0, 1) (open interval) keyed by integers."""
    h = hash_uint(seed, stream, *keys)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def hash_normal(seed: int, stream: int, *keys) -> np.ndarray:
    """Standard normal keyed by integers."""
    return ndtri(hash_uniform(seed, stream, *keys))


def sig(x):
    """Logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype="f8")))


_COSLAT = np.cos(np.deg2rad(35.0))


class FourierModes:
    """``n`` random plane waves sqrt(2) cos(k . (lon cos35, lat) + phase), wavelengths log-uniform."""

    def __init__(self, seed: int, stream: int, n: int, wl_min: float, wl_max: float):
        rng = np.random.default_rng([seed, stream, 7])
        self.n = n
        wl = np.exp(rng.uniform(np.log(wl_min), np.log(wl_max), n))
        ang = rng.uniform(0, 2 * np.pi, n)
        self.kx = 2 * np.pi * np.cos(ang) / wl
        self.ky = 2 * np.pi * np.sin(ang) / wl
        self.phase = rng.uniform(0, 2 * np.pi, n)

    def basis(self, lon, lat) -> np.ndarray:
        """(npts, n) basis values."""
        lon = np.asarray(lon, "f8").reshape(-1, 1) * _COSLAT
        lat = np.asarray(lat, "f8").reshape(-1, 1)
        return np.sqrt(2.0) * np.cos(lon * self.kx + lat * self.ky + self.phase)

    def field(self, lon, lat) -> np.ndarray:
        """Unit-variance random field (sum of the modes / sqrt(n))."""
        shape = np.shape(lon)
        return (self.basis(lon, lat).sum(axis=1) / np.sqrt(self.n)).reshape(shape)


def ar1_series(seed: int, stream: int, ndays: int, ncomp: int, phi: float) -> np.ndarray:
    """(ndays, ncomp) stationary unit-variance AR(1) series; prefix-stable in ``ndays``.

    x[0] = e[0]; x[n] = phi x[n-1] + sqrt(1 - phi^2) e[n], computed in blocks of 64 days
    with a lower-triangular matrix of powers of phi.
    """
    rng = np.random.default_rng([seed, stream, 11])
    eps = rng.standard_normal((ndays, ncomp))
    out = np.empty_like(eps)
    out[0] = eps[0]
    B = 64
    k = np.arange(B)
    L = np.where(k[:, None] >= k[None, :], phi ** np.maximum(k[:, None] - k[None, :], 0), 0.0) * np.sqrt(1 - phi * phi)
    pw = phi ** (k + 1)
    x = out[0]
    for i0 in range(1, ndays, B):
        e = eps[i0 : i0 + B]
        nb = e.shape[0]
        blk = pw[:nb, None] * x[None, :] + L[:nb, :nb] @ e
        out[i0 : i0 + nb] = blk
        x = blk[-1]
    return out


def value_noise(seed: int, stream: int, lon, lat, spacing: float) -> np.ndarray:
    """Smooth unit-ish variance noise: hashed normals on a lattice, smoothstep-interpolated."""
    lon = np.asarray(lon, "f8")
    lat = np.asarray(lat, "f8")
    fx = lon / spacing
    fy = lat / spacing
    ix = np.floor(fx).astype(np.int64)
    iy = np.floor(fy).astype(np.int64)
    tx = fx - ix
    ty = fy - iy
    tx = tx * tx * (3 - 2 * tx)
    ty = ty * ty * (3 - 2 * ty)
    n00 = hash_normal(seed, stream, ix, iy)
    n10 = hash_normal(seed, stream, ix + 1, iy)
    n01 = hash_normal(seed, stream, ix, iy + 1)
    n11 = hash_normal(seed, stream, ix + 1, iy + 1)
    v = (n00 * (1 - tx) + n10 * tx) * (1 - ty) + (n01 * (1 - tx) + n11 * tx) * ty
    return v / 0.75  # smoothstep bilinear shrinks the variance; rescale to ~1


def lattice_bumps(seed: int, stream: int, lon, lat, cell: float, prob: float, kind: str):
    """Gaussian features on a jittered lattice; returns (amplitude-weighted sum, nearest distance/radius).

    Each lattice cell holds a feature with probability ``prob``; its centre, radius and
    amplitude come from the hash of (seed, stream, i, j). ``kind`` picks the radius/amplitude law.
    """
    lon = np.asarray(lon, "f8")
    lat = np.asarray(lat, "f8")
    X = lon * _COSLAT
    ci = np.floor(X / cell).astype(np.int64)
    cj = np.floor(lat / cell).astype(np.int64)
    total = np.zeros(lon.shape)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            i = ci + di
            j = cj + dj
            u = [hash_uniform(seed, stream, i, j, k) for k in range(5)]
            present = u[0] < prob
            cx = (i + u[1]) * cell
            cy = (j + u[2]) * cell
            if kind == "massif":
                r = 0.12 + 0.2 * u[3]
                a = u[4] ** 2
            else:  # lake
                r = 0.03 + 0.09 * u[3] ** 2
                a = 0.4 + 1.2 * u[4]
            d2 = ((X - cx) ** 2 + (lat - cy) ** 2) / (r * r)
            total += np.where(present, a * np.exp(-d2), 0.0)
    return total


# --------------------------------------------------------------------------------------
# Geography (seed enters only through the random detail)


def plateau(lon, lat) -> np.ndarray:
    """Qinghai-Tibet Plateau membership (0..1)."""
    lon = np.asarray(lon, "f8")
    lat = np.asarray(lat, "f8")
    lat_n = 36.2 + 2.3 * np.exp(-(((lon - 95.0) / 8.0) ** 2))
    lat_s = 27.3 + 0.02 * (lon - 90.0)
    lon_e = 104.3 - 0.25 * np.maximum(lat - 34.0, 0) - 0.4 * np.maximum(30.0 - lat, 0)
    return sig((lat - lat_s) / 0.25) * sig((lat_n - lat) / 0.3) * sig((lon_e - lon) / 0.2) * sig((lon - 75.0) / 0.5)


_COAST = np.array(
    [
        (18.0, 109.0),
        (20.0, 110.5),
        (21.5, 111.5),
        (22.5, 114.5),
        (23.5, 117.0),
        (25.0, 119.3),
        (27.0, 120.6),
        (29.0, 122.0),
        (31.0, 121.9),
        (32.5, 121.0),
        (34.5, 119.8),
        (36.0, 120.5),
        (37.5, 122.6),
        (39.0, 121.6),
        (40.0, 122.5),
        (41.0, 124.5),
        (42.5, 130.5),
        (45.0, 134.5),
        (54.0, 141.0),
    ]
)


def is_sea(lon, lat) -> np.ndarray:
    """A crude East-Asian coastline (the sea east of China, the Bohai, the South China Sea)."""
    lon = np.asarray(lon, "f8")
    lat = np.asarray(lat, "f8")
    coast = np.interp(lat, _COAST[:, 0], _COAST[:, 1])
    sea = lon > coast
    bohai = ((lon - 119.8) / 1.7) ** 2 + ((lat - 38.9) / 1.0) ** 2 < 1.0
    south = (lat < 21.0) & (lon > 108.5) & ~(((lon - 109.7) / 1.0) ** 2 + ((lat - 19.2) / 0.9) ** 2 < 1.0)
    korea = (lon > 124.5) & (lon < 129.5) & (lat > 34.5) & (lat < 42.5)  # land (ERA5-Land covers it)
    japan_sea = (lon > 129.5) & (lat > 34.0) & (lat < 42.5)
    return ((sea | bohai | south) & ~korea) | japan_sea


class World:
    """The twin's static geography for one seed; evaluate at any lon/lat."""

    def __init__(self, seed: int, params):
        self.seed = int(seed)
        self.p = params
        self.valley_modes = FourierModes(seed, S_VALLEY, 6, 3.0, 8.0)
        self.detail_modes = FourierModes(seed, S_DETAIL, 10, 0.3, 1.0)
        self.precip_mod_modes = FourierModes(seed, S_PRECIP_MOD, 6, 3.0, 12.0)

    # --- terrain -----------------------------------------------------------------------
    def elevation(self, lon, lat) -> np.ndarray:
        lon = np.asarray(lon, "f8")
        lat = np.asarray(lat, "f8")
        P = plateau(lon, lat)
        base = 150.0 + 1100.0 * sig((112.0 - lon) / 1.5)
        base += 900.0 * np.exp(-(((lon - 104.0) / 4.0) ** 2) - ((lat - 25.5) / 2.5) ** 2)
        base += 2500.0 * np.exp(-(((lat - 42.5) / 0.8) ** 2)) * sig((lon - 75.0) / 0.5) * sig((95.0 - lon) / 0.75)
        h_plat = 4600.0 - 130.0 * np.clip(lon - 94.0, 0.0, 12.0)
        massifs = lattice_bumps(self.seed, S_MASSIF, lon, lat, 0.6, 0.85, "massif")
        valleys = -450.0 * np.exp(-((self.valley_modes.field(lon, lat) / 0.25) ** 2)) * P
        detail = 60.0 * self.detail_modes.field(lon, lat)
        amne = 1300.0 * np.exp(-(((lon - 99.5) / 0.25) ** 2) - ((lat - 34.8) / 0.18) ** 2)
        z = (1 - P) * base + P * h_plat + massifs * (500.0 + 500.0 * P) + valleys + detail + amne * P
        return np.where(is_sea(lon, lat), 0.0, np.maximum(z, 0.0))

    def tci(self, lon, lat) -> np.ndarray:
        """Terrain complexity index (m): sub-cell elevation std from the local relief."""
        lon = np.asarray(lon, "f8")
        lat = np.asarray(lat, "f8")
        d = 0.02
        dx = d * 111320.0 * np.cos(np.deg2rad(lat))
        dy = d * 110570.0
        gx = (self.elevation(lon + d, lat) - self.elevation(lon - d, lat)) / (2 * dx)
        gy = (self.elevation(lon, lat + d) - self.elevation(lon, lat - d)) / (2 * dy)
        grad = np.hypot(gx, gy)
        rough = np.abs(self.detail_modes.field(lon * 3.1, lat * 3.1))
        t = 2.2 * grad * 9008.0 / np.sqrt(12.0) + 8.0 + 35.0 * plateau(lon, lat) + 25.0 * rough
        return np.where(is_sea(lon, lat), 0.0, t)

    def open_water(self, lon, lat) -> np.ndarray:
        lon = np.asarray(lon, "f8")
        lat = np.asarray(lat, "f8")
        lakes = lattice_bumps(self.seed, S_LAKE, lon, lat, 0.5, 0.15, "lake")
        owf = np.clip(lakes - 0.03, 0.0, 1.0)
        return np.where(is_sea(lon, lat), 1.0, owf)

    def annual_precip(self, lon, lat) -> np.ndarray:
        """Climatological annual precipitation (mm)."""
        lon = np.asarray(lon, "f8")
        lat = np.asarray(lat, "f8")
        p = 80.0 + 1700.0 * sig((lon - 95.0) / 6.0) * sig((38.0 - lat) / 3.5)
        p += 450.0 * np.exp(-(((lon - 124.0) / 7.0) ** 2) - ((lat - 47.0) / 6.0) ** 2)
        p *= 1.0 - 0.55 * plateau(lon, lat)
        p *= 1.0 + 0.15 * self.precip_mod_modes.field(lon, lat)
        return np.maximum(p, 30.0)

    def continentality(self, lon, lat) -> np.ndarray:
        return np.clip((115.0 - np.asarray(lon, "f8")) / 25.0, 0.0, 1.0)

    def region(self, lon, lat) -> np.ndarray:
        lon = np.asarray(lon, "f8")
        lat = np.asarray(lat, "f8")
        P = plateau(lon, lat)
        nw = ((lon < 107.0) & (lat >= 34.5)) | ((lat >= 40.0) & (lon < 111.0))
        r = np.where(P > 0.5, 1, np.where(nw, 2, np.where(lat >= 33.5, 3, 4)))
        return np.where(is_sea(lon, lat), 0, r).astype("u1")

    def land_cover(self, lon, lat, elev, tci, owf, p_ann) -> np.ndarray:
        lon = np.asarray(lon, "f8")
        lat = np.asarray(lat, "f8")
        u = hash_uniform(
            self.seed, S_LANDCOVER, np.round(lon * 20).astype(np.int64), np.round(lat * 20).astype(np.int64)
        )
        lc = np.full(lon.shape, 4, dtype="u1")  # grassland
        lc = np.where((p_ann > 250) & (p_ann < 450) & (elev < 3000), 3, lc)  # shrub
        forest = ((p_ann > 600) & (elev < 3900) & ((tci > 70) | (p_ann > 900))) | ((p_ann > 1000) & (elev < 2500))
        lc = np.where(forest, 2, lc)
        crop = (elev < 1600) & (tci < 70) & (p_ann > 380) & (u < 0.8)
        lc = np.where(crop, 1, lc)
        lc = np.where(crop & (u < 0.04), 8, lc)
        lc = np.where((p_ann < 180) | (elev > 4900), 7, lc)  # barren
        lc = np.where(elev > 5600, 6, lc)
        lc = np.where((owf >= 0.15) & (owf < 0.5), 9, lc)
        lc = np.where(owf >= 0.5, 5, lc)
        return lc.astype("u1")
