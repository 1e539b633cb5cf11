"""HTTP routes: each module is one resource; the envelope and errors are shared."""
