"""Client protocols other than OpenAI chat, translated to and from the internal chat shape."""
