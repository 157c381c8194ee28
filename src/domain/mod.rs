//! Pure rules of the marketplace: money, task kinds, states, answer formats, trust and
//! geography. Nothing here touches a database or the network.

pub mod consensus;
pub mod geo;
pub mod ids;
pub mod kind;
pub mod money;
pub mod response;
pub mod status;
pub mod trust;
