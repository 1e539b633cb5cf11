from facade.validation import flatten_errors


def test_nested_paths_and_schema_errors():
    messages = {
        "messages": {0: {"role": ["Must be one of: user."]}, 2: {"_schema": ["bad"]}},
        "temperature": ["Too big.", "Really."],
    }
    assert flatten_errors(messages) == [
        ("messages[0].role", "Must be one of: user."),
        ("messages[2]", "bad"),
        ("temperature", "Too big. Really."),
    ]
