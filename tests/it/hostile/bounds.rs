//! Hostile inputs that must not abort: allocation bounds, size caps, upper limits on config
//! values, and the checks `check` and `reconstruct` share.
