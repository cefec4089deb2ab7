//! Attachments: what an uploaded file is, and the picture work on the four inline image
//! kinds (bounded decoding, metadata removal, orientation, previews). Pure functions over
//! bytes and paths: no HTTP, no hub, no database.

pub mod picture;
pub mod sniff;
