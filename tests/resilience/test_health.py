import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from turnout.resilience.clock import FakeClock
from turnout.resilience.health import DeploymentHealth, HealthSettings, HealthSnapshot


def make(**overrides: object) -> tuple[DeploymentHealth, FakeClock]:
    clock = FakeClock()
    settings = HealthSettings(**overrides)  # type: ignore[arg-type]
    return DeploymentHealth("openai/gpt-4o", clock, settings), clock


def test_in_flight_counts_and_never_goes_negative() -> None:
    health, _ = make()
    health.start()
    health.start()
    assert health.in_flight == 2
    health.finish()
    health.finish()
    health.finish()
    assert health.in_flight == 0


def test_ewma_latency() -> None:
    health, _ = make(ewma_alpha=0.5)
    assert health.ewma_latency_s is None
    health.observe_latency(1.0)
    assert health.ewma_latency_s == 1.0  # the first sample seeds the average
    health.observe_latency(3.0)
    assert health.ewma_latency_s == pytest.approx(2.0)  # 1 + 0.5 * (3 - 1)
    health.observe_latency(4.0)
    assert health.ewma_latency_s == pytest.approx(3.0)


def test_ewma_ttft_follows_a_shift() -> None:
    health, _ = make(ewma_alpha=0.3)
    for _ in range(5):
        health.observe_ttft(0.2)
    for _ in range(30):
        health.observe_ttft(2.0)
    assert health.ewma_ttft_s == pytest.approx(2.0, abs=0.01)  # 1.8 * 0.7**30 ~ 4e-5


def test_ttft_quantile_by_nearest_rank() -> None:
    health, _ = make(min_ttft_samples=10, ttft_samples=128)
    for i in range(9):
        health.observe_ttft(float(i))
    assert health.ttft_quantile() is None  # too few samples
    health, _ = make(min_ttft_samples=10, ttft_samples=128)
    for value in range(100, 0, -1):  # 100 .. 1, unsorted arrival
        health.observe_ttft(float(value))
    assert health.ttft_quantile() == 95.0
    assert health.ttft_quantile(0.5) == 50.0
    assert health.ttft_quantile(1.0) == 100.0


def test_ttft_ring_keeps_only_recent_samples() -> None:
    health, _ = make(ttft_samples=16, min_ttft_samples=1)
    for _ in range(100):
        health.observe_ttft(10.0)
    for _ in range(16):
        health.observe_ttft(0.5)
    assert health.ttft_quantile() == 0.5
    health.observe_ttft(7.0)  # one fresh outlier among 16: p95 rank 16 is the max
    assert health.ttft_quantile() == 7.0


def test_openai_rate_limit_headers() -> None:
    health, _ = make()
    assert health.headroom is None
    health.update_rate_limits({
        "x-ratelimit-limit-requests": "5000",
        "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-limit-tokens": "160000",
        "x-ratelimit-remaining-tokens": "40000",
        "x-ratelimit-reset-requests": "12ms",
        "x-ratelimit-reset-tokens": "45s",
    })
    assert health.headroom == pytest.approx(0.25)  # the tighter of 0.9998 and 0.25


def test_openai_reset_shortens_how_long_headroom_is_believed() -> None:
    health, clock = make(rate_limit_ttl_s=60.0)
    health.update_rate_limits({
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",  # longer than the TTL: the TTL wins
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "50",
        "x-ratelimit-reset-requests": "1s",
    })
    assert health.headroom == 0.0
    clock.advance(1.0)
    assert health.headroom == 0.0  # the request limit reset, tokens still exhausted
    clock.advance(59.0)
    assert health.headroom is None  # everything refilled or stale


def test_anthropic_rate_limit_headers_case_insensitive() -> None:
    health, _ = make()
    headers = CIMultiDictProxy(CIMultiDict({
        "Anthropic-Ratelimit-Requests-Limit": "1000",
        "Anthropic-Ratelimit-Requests-Remaining": "999",
        "Anthropic-Ratelimit-Tokens-Limit": "96000",
        "Anthropic-Ratelimit-Tokens-Remaining": "96000",
        "Anthropic-Ratelimit-Input-Tokens-Limit": "80000",
        "Anthropic-Ratelimit-Input-Tokens-Remaining": "20000",
        "Anthropic-Ratelimit-Output-Tokens-Limit": "16000",
        "Anthropic-Ratelimit-Output-Tokens-Remaining": "16000",
        "Anthropic-Ratelimit-Requests-Reset": "2025-08-21T12:40:59Z",
    }))
    health.update_rate_limits(headers)
    assert health.headroom == pytest.approx(0.25)  # input tokens are the tightest


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-tokens": "-1"},  # Azure
        {"x-ratelimit-limit-tokens": "0", "x-ratelimit-remaining-tokens": "0"},
        {"x-ratelimit-limit-tokens": "many", "x-ratelimit-remaining-tokens": "5"},
        {"x-ratelimit-remaining-tokens": "5"},  # no limit: no share
        {},
    ],
)
def test_unknown_or_malformed_limits_leave_headroom_unknown(headers: dict[str, str]) -> None:
    health, _ = make()
    health.update_rate_limits(headers)
    assert health.headroom is None


def test_rate_limited_marks_zero_headroom_until_retry_after() -> None:
    health, clock = make()
    health.note_rate_limited(5.0)
    assert health.headroom == 0.0
    clock.advance(5.0)
    assert health.headroom is None


def test_remaining_above_limit_is_clamped() -> None:
    health, _ = make()
    health.update_rate_limits(
        {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "12"})
    assert health.headroom == 1.0


def test_snapshot() -> None:
    health, _ = make(min_ttft_samples=1)
    health.start()
    health.observe_latency(2.0)
    health.observe_ttft(0.5)
    health.update_rate_limits(
        {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "5"})
    assert health.snapshot(weight=3.0) == HealthSnapshot(
        id="openai/gpt-4o", weight=3.0, in_flight=1, ewma_latency_s=2.0, ewma_ttft_s=0.5,
        ttft_quantile_s=0.5, headroom=0.5,
    )
    assert health.candidate("other", 2.0).id == "other"


@pytest.mark.parametrize(
    "overrides",
    [{"ewma_alpha": 0.0}, {"ewma_alpha": 1.5}, {"ttft_samples": 0}, {"ttft_quantile": 0.0},
     {"rate_limit_ttl_s": 0.0}],
)
def test_invalid_settings_are_rejected(overrides: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HealthSettings(**overrides)  # type: ignore[arg-type]
