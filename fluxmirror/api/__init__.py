"""Wire types: the Config and Report documents, and the Go duration format they use. No I/O."""
