"""The config file: env expansion, defaults, and errors that name the bad key."""

from __future__ import annotations

import pytest

from facade.config import AZURE_DEFAULT_API_VERSION, ConfigError, load_config, parse_config
from facade.settings import Settings


def minimal(**extra) -> dict:
    return {
        "providers": [{"name": "up", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "m", "targets": [{"provider": "up", "model": "x"}]}],
        **extra,
    }


def error_of(raw, environ=None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, environ=environ or {})
    return str(info.value)


def test_design_md_example_loads():
    raw = minimal(
        auto={"candidates": ["m"]},
        keys=[
            {
                "name": "team-a",
                "key": "${TEAM_A_KEY}",
                "models": ["*"],
                "rpm": 600,
                "tpm": 200000,
                "budget_usd": 100,
                "budget_period": "monthly",
            }
        ],
        limits={"max_body_bytes": 1048576},
    )
    raw["providers"][0]["api_key"] = "${UPSTREAM_API_KEY}"
    raw["providers"][0]["timeout_s"] = {"connect": 5, "read": 120}
    config = parse_config(raw, environ={"TEAM_A_KEY": "sk-a-123456", "UPSTREAM_API_KEY": "up"})
    assert config.keys[0].key == "sk-a-123456"
    assert config.providers["up"].api_key == "up"
    assert config.providers["up"].read_timeout_s == 120
    assert config.max_body_bytes == 1048576


def test_env_default_syntax():
    raw = minimal()
    raw["providers"][0]["api_key"] = "${NOT_SET:-fallback}"
    assert parse_config(raw, environ={}).providers["up"].api_key == "fallback"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda r: r["providers"][0].update(kind="openia"), "providers[0].kind"),
        (lambda r: r["providers"][0].update(bogus=1), "providers[0].bogus"),
        (lambda r: r["providers"][0].pop("base_url"), "providers[0].base_url"),
        (lambda r: r["providers"][0].update(api_key="${MISSING}"), "providers[0].api_key"),
        (
            lambda r: r["models"][0]["targets"][0].update(provider="nope"),
            "models[0].targets[0].provider",
        ),
        (lambda r: r["models"][0].update(input_cost_per_1m=-1), "models[0].input_cost_per_1m"),
        (lambda r: r.update(auto={"candidates": ["ghost"]}), "auto.candidates[0]"),
        (
            lambda r: r.update(keys=[{"name": "k", "key": "sk-123456", "budget_period": "hourly"}]),
            "keys[0].budget_period",
        ),
        (
            lambda r: r.update(keys=[{"name": "k", "key": "sk-123456", "models": ["ghost"]}]),
            "keys[0].models[0]",
        ),
        (lambda r: r.update(limits={"max_body_bytes": "big"}), "limits.max_body_bytes"),
        (lambda r: r.update(extra_section={}), "extra_section"),
    ],
)
def test_bad_keys_are_named(mutate, where):
    raw = minimal()
    mutate(raw)
    assert error_of(raw).startswith(where + ":")


def test_azure_api_version_defaults_to_a_ga_version():
    # DESIGN.md (issue 12) made api_version optional: a current GA version by default.
    raw = minimal()
    raw["providers"][0]["kind"] = "azure"
    assert (
        parse_config(raw).providers["up"].api_version == AZURE_DEFAULT_API_VERSION == "2024-10-21"
    )
    raw["providers"][0]["api_version"] = "2025-04-01-preview"
    assert parse_config(raw).providers["up"].api_version == "2025-04-01-preview"


def test_passthrough_params_are_vendor_extras_only():
    raw = minimal()
    raw["providers"][0]["passthrough_params"] = ["min_p", "chat_template_kwargs"]
    assert parse_config(raw).providers["up"].passthrough_params == {"min_p", "chat_template_kwargs"}
    raw["providers"][0]["passthrough_params"] = ["temperature"]
    assert error_of(raw).startswith("providers[0].passthrough_params")
    raw["providers"][0]["passthrough_params"] = ["bad name"]
    assert error_of(raw).startswith("providers[0].passthrough_params")


def test_unreadable_and_non_mapping_files(tmp_path):
    with pytest.raises(ConfigError, match="FACADE_CONFIG"):
        load_config(Settings.from_env({}, config_path=str(tmp_path / "none.yaml")))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Settings.from_env({}, config_path=str(bad)))
    broken = tmp_path / "broken.yaml"
    broken.write_text("providers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Settings.from_env({}, config_path=str(broken)))


def test_demo_config_is_the_default():
    config = load_config(Settings.from_env({}))
    assert config.is_demo
    assert {"gpt-3.5-turbo", "demo"} <= set(config.models)
    assert config.keys[0].key == "sk-demo"


def test_settings_name_the_bad_variable():
    with pytest.raises(ValueError, match="FACADE_WORKER_CONNECTIONS"):
        Settings.from_env({"FACADE_WORKER_CONNECTIONS": "many"})
    assert Settings.from_env({"FACADE_LOG_PROMPTS": "yes"}).log_prompts is True
