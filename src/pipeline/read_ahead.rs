//! Reading ahead: while frame *k* is computed, a thread of its own reads (decodes) frame
//! *k + 1*'s images, so that a sequence does not wait for its inputs between frames. At most
//! one frame is read ahead; its images are dropped unread if the loop goes elsewhere (the
//! frame turned out to be done by another shard). Reading ahead changes when the images are
//! read, never what is read: the result is the same as a read at the start of the frame.

use std::sync::{Mutex, PoisonError};
use std::thread::{Scope, ScopedJoinHandle};

use crate::frames::{FrameImages, FrameReader, FramesError};

/// What reading one frame gives: every camera's image or its error, or a whole-frame error.
pub(crate) type FrameRead = Result<FrameImages, FramesError>;

/// The frame loop's reads: the frame being started, and the next one ahead.
pub(crate) struct ReadAhead<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    reader: &'env Mutex<FrameReader>,
    /// The frames of this run in order (to know which comes next).
    frames: &'env [usize],
    pending: Option<(usize, ScopedJoinHandle<'scope, FrameRead>)>,
}

impl<'scope, 'env> ReadAhead<'scope, 'env> {
    /// Reads through `reader`, ahead on threads of `scope`, along `frames`.
    pub(crate) fn new(
        scope: &'scope Scope<'scope, 'env>,
        reader: &'env Mutex<FrameReader>,
        frames: &'env [usize],
    ) -> Self {
        Self { scope, reader, frames, pending: None }
    }

    /// The frame after `index` in this run's order, if any.
    pub(crate) fn next_after(&self, index: usize) -> Option<usize> {
        let at = self.frames.iter().position(|&f| f == index)?;
        self.frames.get(at + 1).copied()
    }

    /// Frame `index`'s images: the ones read ahead when they are that frame's, otherwise read
    /// now (cameras in parallel). Then, when `next` is given, starts reading it ahead.
    pub(crate) fn read(&mut self, index: usize, next: Option<usize>) -> FrameRead {
        let ahead = self.pending.take().and_then(|(ahead, handle)| {
            // A panic while reading ahead is not this frame's fault: read again below, where
            // it is caught with the frame.
            let read = handle.join().ok();
            if ahead == index { read } else { None }
        });
        let read = match ahead {
            Some(read) => read,
            None => self.reader.lock().unwrap_or_else(PoisonError::into_inner).read(index),
        };
        if let Some(next) = next {
            let reader = self.reader;
            let handle = self.scope.spawn(move || {
                reader.lock().unwrap_or_else(PoisonError::into_inner).read_serial(next)
            });
            self.pending = Some((next, handle));
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::CameraReader;
    use crate::imgproc::{ImageSize, RgbImage};

    fn reader() -> Mutex<FrameReader> {
        let size = ImageSize::new(4, 3);
        Mutex::new(FrameReader::from_cameras(vec![CameraReader::in_memory(
            "cam0",
            2,
            RgbImage::from_elem(size, 7),
        )]))
    }

    #[test]
    fn reads_ahead_the_next_frame_and_gives_what_a_direct_read_gives() {
        let reader = reader();
        let frames = [0, 2];
        std::thread::scope(|scope| {
            let mut reads = ReadAhead::new(scope, &reader, &frames);
            assert_eq!(reads.next_after(0), Some(2));
            assert_eq!(reads.next_after(2), None);
            assert_eq!(reads.next_after(1), None);
            // Frame 0 is read now (the in-memory camera holds only frame 2: a camera error),
            // frame 2 ahead.
            let first = reads.read(0, reads.next_after(0)).unwrap();
            assert!(first["cam0"].is_err());
            assert_eq!(reads.pending.as_ref().map(|p| p.0), Some(2));
            let second = reads.read(2, None).unwrap();
            let direct = reader.lock().unwrap().read(2).unwrap();
            assert_eq!(second["cam0"].as_ref().unwrap(), direct["cam0"].as_ref().unwrap());
            assert!(reads.pending.is_none());
        });
    }

    #[test]
    fn a_read_ahead_of_another_frame_is_dropped_and_errors_pass_through() {
        let reader = reader();
        let frames = [1, 2, 5];
        std::thread::scope(|scope| {
            let mut reads = ReadAhead::new(scope, &reader, &frames);
            let _ = reads.read(1, Some(2));
            // The loop skipped frame 2: frame 5 is past the end of the inputs, read directly.
            let err = reads.read(5, None).unwrap_err();
            assert!(matches!(err, FramesError::FrameOutOfRange { frame: 5, count: 3 }), "{err}");
            assert!(reads.pending.is_none());
        });
    }
}
