//! Test guest: recorder version 2, the code of `recorder-v1` (see there) stamped with version 2.

const VERSION: u32 = 2;

include!("../../recorder-v1/src/recorder.rs");
