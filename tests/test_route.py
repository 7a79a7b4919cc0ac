"""journal.route: ordering timed positions and cutting them into drawable parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from journal import route
from journal.errors import InvalidInput
from journal.gpx import read_track
from journal.route import TimedPoint, haversine_km, simplify, simplify_ranks, split_route, thin

GPX_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "gpx"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def at(minutes: float, lat: float = 46.0, lon: float = 14.5) -> TimedPoint:
    """A point `minutes` after T0."""
    return TimedPoint(lat, lon, T0 + timedelta(minutes=minutes))


def sample_points(name: str) -> list[TimedPoint]:
    """The timed points of a GPX sample's recorded segments."""
    track = read_track(GPX_SAMPLES / name)
    return [TimedPoint(p.lat, p.lon, p.time) for s in track.segments for p in s if p.time is not None]


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((0.0, 0.0), (0.0, 1.0), 111.195),
        ((46.0569, 14.5058), (45.8150, 15.9819), 117.0),  # Ljubljana - Zagreb
        ((0.0, 179.5), (0.0, -179.5), 111.195),  # across the antimeridian
        ((10.0, 10.0), (10.0, 10.0), 0.0),
    ],
)
def test_haversine(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert haversine_km(*a, *b) == pytest.approx(km, abs=1.0)


def test_empty_and_single() -> None:
    assert split_route([]) == []
    assert split_route([at(0)]) == [[at(0)]]


def test_orders_by_time() -> None:
    points = [at(20), at(0), at(10)]
    assert split_route(points) == [[at(0), at(10), at(20)]]


def test_splits_at_long_time_gap() -> None:
    points = [at(0), at(60), at(60 + 7 * 60), at(60 + 7 * 60 + 5)]
    assert [len(part) for part in split_route(points)] == [2, 2]


def test_gap_exactly_at_limit_stays_joined() -> None:
    assert len(split_route([at(0), at(360)])) == 1


def test_splits_at_distance_jump_a_flight() -> None:
    ljubljana = [at(0, 46.05, 14.50), at(10, 46.06, 14.52)]
    paris = [at(130, 48.85, 2.35), at(140, 48.86, 2.36)]  # two hours later, about 960 km away
    parts = split_route(paris + ljubljana)
    assert parts == [ljubljana, paris]


def test_thresholds_are_keywords() -> None:
    points = [at(0, 46.0, 14.0), at(1, 46.0, 14.2)]  # about 15 km in one minute
    assert len(split_route(points, max_jump_km=10)) == 2
    assert len(split_route(points, max_gap_s=30)) == 2
    assert len(split_route(points)) == 1


def test_invalid_thresholds() -> None:
    with pytest.raises(InvalidInput):
        split_route([at(0)], max_gap_s=0)
    with pytest.raises(InvalidInput):
        split_route([at(0)], max_jump_km=-1)


def test_mixed_naive_and_aware_times_refused() -> None:
    naive = TimedPoint(46.0, 14.0, datetime(2024, 5, 1, 9, 0))
    with pytest.raises(InvalidInput):
        split_route([at(0), naive])


@pytest.mark.parametrize(("lat", "lon"), [(91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0)])
def test_point_checks_range(lat: float, lon: float) -> None:
    with pytest.raises(InvalidInput):
        TimedPoint(lat, lon, T0)


def test_walk_sample_is_one_part() -> None:
    points = sample_points("cerknicko-jezero.gpx")
    parts = split_route(points)
    assert len(parts) == 1 and len(parts[0]) == 296


def test_walk_sample_splits_at_pauses() -> None:
    # The device paused several times for over five minutes (the seven GPX segments).
    parts = split_route(sample_points("cerknicko-jezero.gpx"), max_gap_s=300)
    assert [len(part) for part in parts] == [173, 52, 2, 44, 25]


def test_two_trips_ten_years_apart() -> None:
    walk = sample_points("cerknicko-jezero.gpx")
    drive = sample_points("around-visnjan-with-car.gpx")
    parts = split_route(drive + walk)
    assert [len(part) for part in parts] == [296, 104]
    assert parts[0][0].time < parts[1][0].time


# --- simplifying and thinning (map pages draw long routes with a vertex budget) -----------------------


def test_simplify_ranks_give_douglas_peucker_at_every_tolerance() -> None:
    points = [(0.0, 0.0), (0.1, 1.0), (-0.05, 2.0), (0.5, 3.0), (0.0, 4.0), (0.02, 5.0), (0.0, 6.0)]
    ranks = simplify_ranks(points)
    assert ranks[0] == ranks[-1] == float("inf")
    for tolerance in (0.0, 0.01, 0.03, 0.06, 0.2, 0.6, 10.0):
        assert simplify(points, tolerance) == [p for p, r in zip(points, ranks, strict=True) if r > tolerance]
    assert simplify(points, 10.0) == [points[0], points[-1]]
    assert simplify(points, 0.0) == points


def test_simplify_keeps_a_curve_at_zero_and_its_ends_at_a_large_tolerance() -> None:
    curve = [(i * 0.001, (i * 0.001) ** 2) for i in range(1500)]
    assert simplify(curve, 0.0) == curve
    assert simplify(curve, 1.0) == [curve[0], curve[-1]]


@pytest.mark.parametrize(
    ("points", "middle"),
    [
        ([(1e-266, 179.9), (1e-266, 180.1), (5e-324, 179.9)], 0.2),  # the span's square underflows to 0
        ([(0.0, 0.0), (1e-160, 1e-160), (2e-160, 0.0)], 1e-160),
        ([(-89.999, -1e-200), (-89.999, 1e-200), (-89.999, 3e-200)], 0.0),
    ],
)
def test_simplify_ranks_of_subnormal_spans(points: list[tuple[float, float]], middle: float) -> None:
    """A span too short to square (the sweep found one in a GPX track) ranks its points: no division by 0."""
    ranks = simplify_ranks(points)
    assert ranks[0] == ranks[-1] == float("inf")
    assert ranks[1] == pytest.approx(middle, rel=1e-6, abs=1e-300)
    assert simplify(points, 1.0) == [points[0], points[-1]]


def test_thin_merges_points_at_one_stop() -> None:
    stop = [at(i, 46.0 + i * 1e-6, 14.5) for i in range(10)]  # within a metre
    moved = [at(20, 46.01, 14.5), at(21, 46.0101, 14.5)]
    kept = thin([*stop, *moved], 100, lambda p: (p.lat, p.lon))
    assert kept == [stop[0], moved[0], moved[1]]
    assert thin(stop[:2], 100, lambda p: (p.lat, p.lon)) == stop[:2]


# --- hostile point orders (issue 10 item 1): cost stays n log n, no recursion ---------------------------


def growing_zigzag(n: int) -> list[tuple[float, float]]:
    """Points across the globe, alternately north and south with a growing amplitude: every plain
    Douglas-Peucker search peels off only the last point (n searches of n points)."""
    return [((-1) ** i * 80 * i / n, -180 + 360 * i / n) for i in range(n)]


def offsets_counted(monkeypatch: pytest.MonkeyPatch, points: list[tuple[float, float]]) -> int:
    """How many point-to-segment distances simplify_ranks computes for these points."""
    calls = 0
    real = route._offset

    def counting(*args: tuple[float, float]) -> float:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(route, "_offset", counting)
    simplify_ranks(points)
    monkeypatch.setattr(route, "_offset", real)
    return calls


def test_simplify_work_grows_n_log_n_on_crafted_input(monkeypatch: pytest.MonkeyPatch) -> None:
    small = offsets_counted(monkeypatch, growing_zigzag(1000))
    large = offsets_counted(monkeypatch, growing_zigzag(4000))
    assert large <= 6 * small  # n log n: about 4.8; plain Douglas-Peucker: 16


@pytest.mark.parametrize(
    "points",
    [
        [(45.0, 14.0)] * 200_000,  # one point, over and over
        [
            (((i * 7919) % 1000) / 20 - 25, ((i * 104729) % 3600) / 10 - 180) for i in range(10_000)
        ],  # scattered
        [(0.0, 179.9 if i % 2 else -179.9) for i in range(20_000)],  # hopping across the antimeridian
    ],
    ids=["same-point", "scattered", "antimeridian-hops"],
)
def test_simplify_copes_with_hostile_orders(
    monkeypatch: pytest.MonkeyPatch, points: list[tuple[float, float]]
) -> None:
    n = len(points)
    assert offsets_counted(monkeypatch, points) <= 3 * n * n.bit_length()
    ranks = simplify_ranks(points)
    assert len(ranks) == n and ranks[0] == ranks[-1] == float("inf")


def test_split_route_in_any_input_order_is_the_time_order() -> None:
    points = [at(i, 46.0 + (i % 7) * 1e-3, 14.5) for i in range(20_000)]
    backwards = split_route(list(reversed(points)))
    shuffled = split_route(sorted(points, key=lambda p: (p.time.minute * 7919) % 60))
    assert [p.time for part in backwards for p in part] == [p.time for p in points]
    assert [p.time for part in shuffled for p in part] == [p.time for p in points]


def test_ferry_hop_across_the_antimeridian_is_not_a_jump() -> None:
    ferry = [at(0, -17.0, 179.9), at(60, -16.9, -179.8)]  # about 35 km
    assert len(split_route(ferry)) == 1


def test_thin_measures_across_the_antimeridian() -> None:
    stop = [at(0, -17.0, 179.99999), at(1, -17.0, -179.99999), at(2, -17.0, -179.9)]
    assert len(thin(stop, 150.0, lambda p: (p.lat, p.lon))) == 2  # the first two are 2 m apart


# --- lines to draw on a map ---------------------------------------------------------------------------


def test_fit_budget_keeps_ends_and_the_budget() -> None:
    line = route.RouteLine("track", tuple((46 + i * 1e-3, 14 + (i % 7) * 1e-3) for i in range(3000)))
    other = route.RouteLine("photos", ((45.0, 13.0), (45.5, 13.5)))
    fitted = route.fit_budget([line, other], budget=500)
    assert sum(len(f.coords) for f in fitted) <= 500
    assert fitted[0].coords[0] == line.coords[0] and fitted[0].coords[-1] == (48.999, 14.003)
    assert fitted[1].coords == other.coords
    assert route.fit_budget([other], budget=10)[0].coords == other.coords


def test_stop_distance_grows_with_the_area() -> None:
    assert route.stop_distance_m(None) == route.ROUTE_STOP_M
    assert route.stop_distance_m(((46.0, 14.0), (46.1, 14.1))) == route.ROUTE_STOP_M
    assert route.stop_distance_m(((-60.0, -170.0), (70.0, 170.0))) == route.ROUTE_STOP_MAX_M
