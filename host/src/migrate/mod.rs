//! Carrying data over from the systems orderd replaces. `node`: the Node/Express order
//! services' MongoDB database.

pub mod node;
