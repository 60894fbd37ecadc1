//! The config file: model, loader (the only place that knows serde_yaml) and validation.
