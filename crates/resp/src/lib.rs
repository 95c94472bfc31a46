//! RESP2/RESP3 frames and a bounded codec (codec being written).

mod frame;

pub use frame::Frame;
