//! Sizes (`256MiB`) and durations (`10s`) as written in the config file.
