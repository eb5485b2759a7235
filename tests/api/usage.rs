//! TODO(issue 3): being written.
