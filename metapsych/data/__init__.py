"""Trial data: schema, vocabulary, YAML/CSV loading with line numbers, validation, Metapsy import/export."""
