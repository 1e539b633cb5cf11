"""`passthrough_params`: vendor extras reach the provider that lists them, and only it."""

from __future__ import annotations

import pytest

from tests.support import TEAM_KEY


@pytest.fixture
def config_dict(config_dict, fake):
    config_dict["providers"].append(
        {
            "name": "vllm",
            "kind": "openai",
            "base_url": f"{fake.url}/vllm/v1",
            "passthrough_params": ["min_p", "chat_template_kwargs", "guided_json"],
        }
    )
    config_dict["models"] += [
        {"name": "vllm-model", "targets": [{"provider": "vllm", "model": "llama"}]},
        {
            "name": "mixed",  # the plain provider first: extras must skip it
            "targets": [
                {"provider": "fake", "model": "plain", "weight": 1000},
                {"provider": "vllm", "model": "llama", "weight": 0.001},
            ],
        },
    ]
    return config_dict


def post(client, model: str, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return client.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {TEAM_KEY}"}
    )


EXTRAS = {"min_p": 0.05, "chat_template_kwargs": {"enable_thinking": False}, "guided_json": {}}


def test_listed_extras_reach_the_provider_as_sent(client, fake):
    resp = post(client, "vllm-model", **EXTRAS)
    assert resp.status_code == 200, resp.json
    (sent,) = fake.requests()
    assert sent["path"] == "/vllm/v1/chat/completions"
    for name, value in EXTRAS.items():
        assert sent["body"][name] == value


def test_targets_without_the_extra_are_skipped(client, fake):
    resp = post(client, "mixed", min_p=0.1)
    assert resp.status_code == 200, resp.json
    assert [r["path"] for r in fake.requests()] == ["/vllm/v1/chat/completions"]
    resp = post(client, "mixed")  # no extras: the plain target is first again
    assert fake.requests()[-1]["path"] == "/v1/chat/completions"


def test_an_extra_no_target_of_the_model_lists_is_a_400(client, fake):
    resp = post(client, "gpt-test", min_p=0.1)
    assert resp.status_code == 400
    error = resp.json["error"]
    assert error["param"] == "min_p" and "min_p" in error["message"]
    assert fake.requests() == []


def test_unlisted_names_are_still_400s(client, fake):
    for model in ("vllm-model", "gpt-test"):
        resp = post(client, model, min_q=0.1)
        assert resp.status_code == 400
        assert resp.json["error"]["param"] == "min_q"
        assert "Unknown field" in resp.json["error"]["message"]
    resp = client.post(
        "/api/v1/chat/completions",
        json={"model": "vllm-model", "messages": [{"role": "user", "content": "x"}], "top_n": 1},
        headers={"Authorization": f"Bearer {TEAM_KEY}"},
    )
    assert resp.status_code == 400 and resp.json["data"]["error"]["param"] == "top_n"
    assert fake.requests() == []
