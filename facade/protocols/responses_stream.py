"""Internal chat chunks -> Responses API stream events (pure: dicts in, event dicts out).

`ResponseEvents` holds the state of one stream: which output items are open, their text and
arguments so far, and the sequence number. The first chunk opens the response
(`response.created`, `response.in_progress`); text opens a `message` item and its
`output_text` part; each tool call opens a `function_call` item (after closing the text);
the final chunk (with the pipeline's metrics) closes every item and ends with
`response.completed` (or `response.incomplete` after a length or content-filter finish).
A failure after the first event ends it with `response.failed`.
"""

from __future__ import annotations

from . import responses_answer as answer


class ResponseEvents:
    def __init__(self, body: dict, response_id: str, created_at: int | None = None) -> None:
        self.body = body
        self.response_id = response_id
        self.created_at = created_at
        self.response: dict | None = None  # the skeleton, once the first chunk names the model
        self.items: list[dict] = []  # output items, in output_index order
        self._text: dict | None = None  # the open message item: {"index", "parts": [...]}
        self._calls: dict[int, dict] = {}  # chat tool call index -> its open item state
        self._finish: str | None = None
        self._seq = 0
        self.final: dict | None = None  # the finished response object

    def _event(self, kind: str, **fields) -> dict:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def _text_event(self, kind: str, index: int, **fields) -> dict:
        """An event about the text part of the message item at output `index`."""
        item_id = self.items[index]["id"]
        return self._event(kind, item_id=item_id, output_index=index, content_index=0, **fields)

    def _start(self, model: str | None) -> list[dict]:
        self.response = answer.skeleton(self.body, self.response_id, model, self.created_at)
        return [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]

    def chunk(self, chunk: dict) -> list[dict]:
        """The events for one chat.completion.chunk (the first also opens the response)."""
        events = [] if self.response is not None else self._start(chunk.get("model"))
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or ():
                events += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def _text_delta(self, text: str) -> list[dict]:
        events = []
        if self._text is None or self._text.get("closed"):  # text after a call: a new item
            index = len(self.items)
            item = answer.message_item(self.response_id, "", "in_progress", index)
            self.items.append(item)
            self._text = {"index": index, "text": []}
            events.append(self._event("response.output_item.added", output_index=index, item=item))
            events.append(
                self._text_event("response.content_part.added", index, part=answer.text_part(""))
            )
        self._text["text"].append(text)
        index = self._text["index"]
        events.append(
            self._text_event("response.output_text.delta", index, delta=text, logprobs=[])
        )
        return events

    def _close_text(self) -> list[dict]:
        if self._text is None or self._text.get("closed"):
            return []
        self._text["closed"] = True
        index = self._text["index"]
        text = "".join(self._text["text"])
        item = {**self.items[index], "status": "completed", "content": [answer.text_part(text)]}
        self.items[index] = item
        return [
            self._text_event("response.output_text.done", index, text=text, logprobs=[]),
            self._text_event("response.content_part.done", index, part=item["content"][0]),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _call_delta(self, call: dict) -> list[dict]:
        events: list[dict] = []
        function = call.get("function") or {}
        state = self._calls.get(call.get("index", 0))
        if state is None:
            events += self._close_text()
            n = len(self._calls)
            item = answer.call_item(
                self.response_id,
                n,
                call.get("id") or f"call_{n}",
                function.get("name") or "",
                "",
            )
            item["status"] = "in_progress"
            state = {"index": len(self.items), "arguments": []}
            self._calls[call.get("index", 0)] = state
            self.items.append(item)
            events.append(
                self._event("response.output_item.added", output_index=state["index"], item=item)
            )
        item = self.items[state["index"]]
        if function.get("name") and not item["name"]:
            item["name"] = function["name"]
        if function.get("arguments"):
            state["arguments"].append(function["arguments"])
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=state["index"],
                    delta=function["arguments"],
                )
            )
        return events

    def _close_calls(self) -> list[dict]:
        events = []
        for state in self._calls.values():
            index = state["index"]
            item = {**self.items[index], "arguments": "".join(state["arguments"])}
            item["status"] = "completed"
            self.items[index] = item
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            events.append(self._event("response.output_item.done", output_index=index, item=item))
        return events

    def complete(self, metrics: dict, chat_usage: dict | None = None) -> list[dict]:
        """Close every open item and finish the response with its usage."""
        events = [] if self.response is not None else self._start(None)
        events += self._close_text() + self._close_calls()
        self.final = answer.finished(
            self.response, self.items, self._finish, answer.usage(metrics, chat_usage)
        )
        self.final["metrics"] = metrics
        kind = (
            "response.completed" if self.final["status"] == "completed" else "response.incomplete"
        )
        events.append(self._event(kind, response=self.final))
        return events

    def failed(self, code: str, message: str) -> list[dict]:
        """The response failed after its first event: one `response.failed` ends it."""
        events = [] if self.response is not None else self._start(None)
        failed = {
            **self.response,
            "status": "failed",
            "error": {"code": code, "message": message},
            "output": self.items,
        }
        events.append(self._event("response.failed", response=failed))
        return events
