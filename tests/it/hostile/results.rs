//! Hostile inputs that must not give a silently wrong result: lost cameras, duplicate
//! cameras, empty clouds, corrupted outputs on resume.
