"""One module per report type; each ``build(ctx)`` returns the report body as a plain dict."""
