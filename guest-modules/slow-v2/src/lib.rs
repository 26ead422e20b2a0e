//! Test guest: slow version 2, the code of `slow` (see there) stamped with version 2.

const VERSION: u32 = 2;

include!("../../slow/src/slow.rs");
