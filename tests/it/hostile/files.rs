//! Hostile inputs against the user's files: nothing written outside the output folder, no
//! user file changed or removed, one writer per output folder.
